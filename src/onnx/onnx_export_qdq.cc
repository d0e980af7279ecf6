// lowbit quantized model (.lbq, a chain of integer Linear layers) -> ONNX QDQ graph (opset 17):
// raw uint8 pixels normalized and quantized (or through the pixel table), then per layer
// DequantizeLinear -> Gemm (int32 bias through DequantizeLinear) -> QuantizeLinear -> Max/Min on the
// codes, ending in float logits. CNN graphs: onnx_export_qdq_graph.cc.
#include <onnx/onnx_pb.h>

#include "kernels/qlinear.h"
#include "lowbit/error.h"
#include "lowbit/onnx.h"
#include "lowbit/quantized_model.h"
#include "onnx/onnx_writer.h"
#include "onnx/qdq_builder.h"
#include "quant/integer_linear.h"

namespace lowbit {

onnx::ModelProto qdq_graph_model(const QuantizedModel& model);  // onnx_export_qdq_graph.cc

namespace {

class QdqChainExporter : QdqBuilder {
 public:
  QdqChainExporter(const QuantizedModel& model, onnx::ModelProto& proto) : QdqBuilder(model, proto.mutable_graph()) {}

  void run() {
    add_value(graph_->add_input(), "input", onnx::TensorProto::UINT8, model_.input_shape());
    std::string x = "input";
    if (model_.input_shape().size() > 1) {
      integer(add_node("Flatten", "input/flatten", {x}, "input/flat"), "axis", 1);
      x = "input/flat";
    }
    const IntegerLinear& first = model_.layer(0);
    std::string codes = layer_name(0) + "/input_codes";
    input_codes(x, codes, first.input_scale, first.input_zero_point, first.act_bits, false);
    for (size_t l = 0; l < model_.layer_count(); ++l) codes = linear(l, codes);
    add_value(graph_->add_output(), codes, onnx::TensorProto::FLOAT, {model_.num_classes()});
  }

 private:
  static std::string layer_name(size_t l) { return "fc" + std::to_string(l + 1); }

  // One integer Linear layer on the codes `x` ([batch, K] uint8): returns the next layer's codes,
  // or the float logits for the last layer.
  std::string linear(size_t index, const std::string& x) {
    const IntegerLinear& l = model_.layer(index);
    const std::string name = layer_name(index);
    const bool last = index + 1 == model_.layer_count();
    const std::string input = dequantize(name, "input", x, l.input_scale, l.input_zero_point);
    // Weights as the kernels see them (sign-binary codes q are 2q with zero point 1, so
    // (2q - 1) * scale exactly), [N, K] as Gemm's transposed B.
    std::vector<uint8_t> codes(static_cast<size_t>(l.out_features * l.in_features));
    kernels::unpack_weights(l.kernel_weights(), codes.data());
    const Weights w = weights(name, l, std::move(codes), {l.out_features, l.in_features});
    const std::string sum = last ? "logits" : name + "/gemm";
    integer(add_node("Gemm", name + "/gemm", {input, w.weight, w.bias}, sum), "transB", 1);
    if (last) return sum;
    const std::string out = layer_name(index + 1) + "/input_codes";
    quantize_clamp(name, sum, out, l.output_scale, l.output_zero_point, l.output_min, l.output_max);
    return out;
  }
};

}  // namespace

void export_onnx(const QuantizedModel& model, const std::string& path) {
  onnx::ModelProto proto;
  if (model.is_graph()) {
    try {
      proto = qdq_graph_model(model);
    } catch (const Error& e) {  // a graph node the export cannot write: name the file too
      throw Error(path + ": " + e.what());
    }
  } else {
    proto = onnx_writer::new_model("lowbit_qdq");
    QdqChainExporter(model, proto).run();
  }
  onnx_writer::put_preprocessing(proto, model.metadata, model.input_shape());
  onnx_writer::put(proto, "lowbit.input", "raw uint8 pixels; the pixel table applies the normalization");
  if (model.metadata.contains("quantization"))
    onnx_writer::put(proto, "lowbit.quantization", model.metadata["quantization"].dump());
  onnx_writer::check_and_write(proto, path, "QDQ graph");
}

}  // namespace lowbit
