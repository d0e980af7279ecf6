// lowbit quantized model (.lbq, a chain of integer Linear layers) -> ONNX QDQ graph (opset 17):
// raw uint8 pixels through the pixel table (Gather), then per layer DequantizeLinear -> Gemm (int32
// bias through DequantizeLinear) -> Relu/Clip -> QuantizeLinear, ending in float logits.
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "kernels/qlinear.h"
#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/onnx.h"
#include "lowbit/quantized_model.h"
#include "lowbit/version.h"
#include "quant/integer_linear.h"

namespace lowbit {
namespace {

using Json = nlohmann::json;
constexpr int kOpset = 17;

class QdqExporter {
 public:
  explicit QdqExporter(const QuantizedModel& model) : model_(model) {}

  onnx::ModelProto run() {
    onnx::ModelProto proto;
    proto.set_ir_version(8);
    proto.set_producer_name("lowbit");
    proto.set_producer_version(LOWBIT_VERSION_STRING);
    proto.add_opset_import()->set_version(kOpset);
    graph_ = proto.mutable_graph();
    graph_->set_name("lowbit_qdq");
    add_value(graph_->add_input(), "input", onnx::TensorProto::UINT8, model_.input_shape());
    std::string codes = input_codes();
    std::string logits;
    for (size_t l = 0; l < model_.layer_count(); ++l) {
      const bool last = l + 1 == model_.layer_count();
      const std::string out = linear(l, codes);
      if (last) logits = out;
      else codes = out;
    }
    add_value(graph_->add_output(), logits, onnx::TensorProto::FLOAT, {model_.num_classes()});
    metadata(proto);
    return proto;
  }

 private:
  void add_value(onnx::ValueInfoProto* v, const std::string& name, int type_code, const Shape& per_sample) {
    v->set_name(name);
    auto* type = v->mutable_type()->mutable_tensor_type();
    type->set_elem_type(type_code);
    type->mutable_shape()->add_dim()->set_dim_param("batch");
    for (int64_t d : per_sample) type->mutable_shape()->add_dim()->set_dim_value(d);
  }

  // A constant; dims {} is a scalar.
  template <typename T>
  std::string constant(const std::string& name, int type_code, const Shape& dims, const std::vector<T>& values) {
    onnx::TensorProto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(type_code);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
    return name;
  }
  std::string scalar_float(const std::string& name, float v) {
    return constant(name, onnx::TensorProto::FLOAT, {}, std::vector<float>{v});
  }
  std::string scalar_u8(const std::string& name, int32_t v) {
    return constant(name, onnx::TensorProto::UINT8, {}, std::vector<uint8_t>{static_cast<uint8_t>(v)});
  }

  onnx::NodeProto* add_node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                            const std::string& output) {
    onnx::NodeProto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const std::string& i : inputs) n->add_input(i);
    n->add_output(output);
    return n;
  }
  static void integer(onnx::NodeProto* n, const char* name, int64_t value) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }

  // Raw pixels -> the first layer's input codes, [batch, features] uint8: lowbit's own table
  // (normalization folded with input quantization), looked up with Gather, so every one of the
  // 256 values per channel maps exactly as in the engine.
  std::string input_codes() {
    const int64_t features = model_.input_size(), channels = model_.input_channels();
    std::string x = "input";
    if (model_.input_shape().size() > 1) {
      integer(add_node("Flatten", "input/flatten", {x}, "input/flat"), "axis", 1);
      x = "input/flat";
    }
    auto* cast = add_node("Cast", "input/index", {x}, "input/index");
    integer(cast, "to", onnx::TensorProto::INT32);
    x = "input/index";
    if (channels > 1) {  // channel c's table starts at c * 256; pixels are [C, H, W]
      std::vector<int32_t> offset(static_cast<size_t>(features));
      for (int64_t i = 0; i < features; ++i) offset[i] = static_cast<int32_t>(i / (features / channels) * 256);
      add_node("Add", "input/channel_index", {x, constant("input/channel_offset", onnx::TensorProto::INT32,
                                                            {features}, offset)},
               "input/channel_index");
      x = "input/channel_index";
    }
    const std::vector<uint8_t>& table = model_.input_table();
    const std::string codes = layer_name(0) + "/input_codes";
    integer(add_node("Gather", codes, {constant("pixel_table", onnx::TensorProto::UINT8,
                                                {static_cast<int64_t>(table.size())}, table), x},
                     codes),
            "axis", 0);
    return codes;
  }

  static std::string layer_name(size_t l) { return "fc" + std::to_string(l + 1); }

  // One integer Linear layer on the codes `x` ([batch, K] uint8): returns the next layer's codes,
  // or the float logits for the last layer.
  std::string linear(size_t index, const std::string& x) {
    const IntegerLinear& l = model_.layer(index);
    const std::string name = layer_name(index);
    const bool last = index + 1 == model_.layer_count();
    const int64_t K = l.in_features, N = l.out_features;

    add_node("DequantizeLinear", name + "/input_dq",
             {x, scalar_float(name + "/input_scale", l.input_scale),
              scalar_u8(name + "/input_zero_point", l.input_zero_point)},
             name + "/input");

    // ONNX Runtime fuses DQ -> Gemm -> Q into QGemm, which adds the int32 bias to the sum of
    // code products as it is: it takes the bias's scale to be s_x * s_w, whatever its
    // DequantizeLinear says. lowbit's bias is on a grid 2^acc_shift finer, so the weight codes
    // and zero points are stored times 2^shift (shift = acc_shift where the codes still fit in
    // uint8) with the scale divided by 2^shift: the same real weights, and an integer sum equal
    // to the engine's 2^acc_shift * sum. The bias then needs no rounding; where
    // acc_shift > shift it is rounded to the grid 2^(acc_shift - shift) coarser (docs/onnx.md).
    const int shift = std::min(l.acc_shift, 8 - l.kernel_weight_bits());
    const int bias_shift = l.acc_shift - shift;
    // Weights as the kernels see them (sign-binary codes q are 2q with zero point 1, so
    // (2q - 1) * scale exactly), [N, K] as Gemm's transposed B; channel n is axis 0.
    const kernels::PackedWeights packed = l.kernel_weights();
    std::vector<uint8_t> codes(static_cast<size_t>(N * K));
    kernels::unpack_weights(packed, codes.data());
    for (uint8_t& c : codes) c = static_cast<uint8_t>(c << shift);
    const bool per_channel =
        std::any_of(l.weight_scale.begin(), l.weight_scale.end(), [&](float s) { return s != l.weight_scale[0]; }) ||
        std::any_of(l.weight_zero_point.begin(), l.weight_zero_point.end(),
                    [&](int32_t z) { return z != l.weight_zero_point[0]; });
    const int64_t channels = per_channel ? N : 1;
    const Shape channel_dims = per_channel ? Shape{N} : Shape{};
    std::vector<float> w_scale, b_scale;
    std::vector<uint8_t> w_zero;
    for (int64_t n = 0; n < channels; ++n) {
      w_scale.push_back(std::ldexp(l.weight_scale[n], -shift));
      w_zero.push_back(static_cast<uint8_t>(l.weight_zero_point[n] << shift));
      b_scale.push_back(static_cast<float>(double{w_scale.back()} * double{l.input_scale}));
    }
    auto* w_dq = add_node("DequantizeLinear", name + "/weight_dq",
                          {constant(name + "/weight_codes", onnx::TensorProto::UINT8, {N, K}, codes),
                           constant(name + "/weight_scale", onnx::TensorProto::FLOAT, channel_dims, w_scale),
                           constant(name + "/weight_zero_point", onnx::TensorProto::UINT8, channel_dims, w_zero)},
                          name + "/weight");
    if (per_channel) integer(w_dq, "axis", 0);

    // The int32 bias at s_x * s_w (of the stored codes), as ONNX Runtime's quantizer writes it;
    // rounded half up when bias_shift > 0.
    std::vector<int32_t> bias;
    for (int32_t b : l.bias)
      bias.push_back(bias_shift == 0 ? b
                                     : static_cast<int32_t>((int64_t{b} + (int64_t{1} << (bias_shift - 1))) >> bias_shift));
    auto* b_dq = add_node("DequantizeLinear", name + "/bias_dq",
                          {constant(name + "/bias_codes", onnx::TensorProto::INT32, {N}, bias),
                           constant(name + "/bias_scale", onnx::TensorProto::FLOAT, channel_dims, b_scale)},
                          name + "/bias");
    if (per_channel) integer(b_dq, "axis", 0);
    const std::string sum = last ? "logits" : name + "/gemm";
    integer(add_node("Gemm", name + "/gemm", {name + "/input", name + "/weight", name + "/bias"}, sum), "transB", 1);
    if (last) return sum;

    // lowbit clamps the output code to [output_min, output_max] (ReLU folded in as
    // output_min = zero point); QuantizeLinear saturates to [0, 255] only, so the rest is a
    // Relu or a Clip on the real values those codes stand for.
    std::string y = sum;
    const int32_t zp = l.output_zero_point;
    if (l.output_max == 255 && l.output_min == zp && zp > 0) {
      add_node("Relu", name + "/relu", {y}, name + "/relu");
      y = name + "/relu";
    } else if (!(l.output_max == 255 && l.output_min == 0)) {
      const float lo = l.output_min == zp ? 0.0f : l.output_scale * static_cast<float>(l.output_min - zp);
      const float hi = l.output_scale * static_cast<float>(l.output_max - zp);
      add_node("Clip", name + "/clip",
               {y, scalar_float(name + "/clip_min", lo), scalar_float(name + "/clip_max", hi)}, name + "/clip");
      y = name + "/clip";
    }
    const std::string out = layer_name(index + 1) + "/input_codes";
    add_node("QuantizeLinear", name + "/output_q",
             {y, scalar_float(name + "/output_scale", l.output_scale),
              scalar_u8(name + "/output_zero_point", zp)},
             out);
    return out;
  }

  void metadata(onnx::ModelProto& proto) const {
    auto put = [&](const std::string& key, const std::string& value) {
      auto* p = proto.add_metadata_props();
      p->set_key(key);
      p->set_value(value);
    };
    auto join = [](const Json& values) {
      std::ostringstream s;
      s.precision(9);
      for (size_t i = 0; i < values.size(); ++i) s << (i ? "," : "") << values[i].get<double>();
      return s.str();
    };
    const Json& m = model_.metadata;
    if (m.contains("dataset") && m["dataset"].is_string()) put("lowbit.dataset", m["dataset"].get<std::string>());
    if (m.contains("mean") && m["mean"].is_array()) put("lowbit.mean", join(m["mean"]));
    if (m.contains("std") && m["std"].is_array()) put("lowbit.std", join(m["std"]));
    put("lowbit.input_shape", join(Json(model_.input_shape())));
    put("lowbit.input", "raw uint8 pixels; the pixel table applies the normalization");
    if (m.contains("quantization")) put("lowbit.quantization", m["quantization"].dump());
  }

  const QuantizedModel& model_;
  onnx::GraphProto* graph_ = nullptr;
};

}  // namespace

void export_onnx(const QuantizedModel& model, const std::string& path) {
  onnx::ModelProto proto = QdqExporter(model).run();
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    throw Error(path + ": the exported QDQ graph fails ONNX's checker (a lowbit bug): " +
                std::string(e.what()).substr(0, 300));
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) throw Error(path + ": the model is too large for one ONNX file");
  write_file_atomic(path, bytes);
}

}  // namespace lowbit
