// lowbit quantized model (.lbq, a chain of integer Linear layers) -> ONNX QDQ graph (opset 17):
// raw uint8 pixels normalized and quantized (or through the pixel table), then per layer
// DequantizeLinear -> Gemm (int32 bias through DequantizeLinear) -> QuantizeLinear -> Max/Min on the
// codes, ending in float logits.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>

#include "kernels/qlinear.h"
#include "lowbit/error.h"
#include "lowbit/onnx.h"
#include "lowbit/quantized_model.h"
#include "onnx/onnx_writer.h"
#include "quant/integer_linear.h"

namespace lowbit {
namespace {

using Json = nlohmann::json;

class QdqExporter {
 public:
  explicit QdqExporter(const QuantizedModel& model) : model_(model) {}

  onnx::ModelProto run() {
    onnx::ModelProto proto = onnx_writer::new_model("lowbit_qdq");
    graph_ = proto.mutable_graph();
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

  // Raw pixels -> the first layer's input codes, [batch, features] uint8. Preferably the
  // engine's own arithmetic as ONNX ops, Cast -> Div 255 -> Sub mean -> Div std -> QuantizeLinear
  // (-> Min for codes under 8 bits): IEEE float ops that give lowbit's pixel table when each
  // of the 256 values of every channel, computed so here, gives the table's code. Otherwise
  // (metadata without the normalization, or any value off) the table itself, by Gather.
  std::string input_codes() {
    std::string x = "input";
    if (model_.input_shape().size() > 1) {
      integer(add_node("Flatten", "input/flatten", {x}, "input/flat"), "axis", 1);
      x = "input/flat";
    }
    const std::string codes = layer_name(0) + "/input_codes";
    if (arithmetic_input_codes(x, codes)) return codes;
    table_input_codes(x, codes);
    return codes;
  }

  // The normalization of metadata `key`, one value per channel; empty if absent or malformed.
  std::vector<float> channel_values(const char* key) const {
    const Json& m = model_.metadata;
    if (!m.contains(key) || !m[key].is_array() || static_cast<int64_t>(m[key].size()) != model_.input_channels())
      return {};
    for (const Json& v : m[key])
      if (!v.is_number()) return {};
    return m[key].get<std::vector<float>>();
  }

  bool arithmetic_input_codes(const std::string& x, const std::string& codes) {
    const std::vector<float> mean = channel_values("mean"), std = channel_values("std");
    if (mean.empty() || std.empty()) return false;
    const IntegerLinear& first = model_.layer(0);
    const float scale = first.input_scale;
    const int32_t zero_point = first.input_zero_point, qmax = (1 << first.act_bits) - 1;
    const std::vector<uint8_t>& table = model_.input_table();
    for (size_t c = 0; c < mean.size(); ++c)
      for (int p = 0; p < 256; ++p) {
        // ONNX's QuantizeLinear: saturate(round_half_even(x / scale) + zero_point) to [0, 255].
        const float v = (static_cast<float>(p) / 255.0f - mean[c]) / std[c];
        const float q = std::clamp(std::nearbyint(v / scale) + static_cast<float>(zero_point), 0.0f, 255.0f);
        if (std::min(static_cast<int32_t>(q), qmax) != table[c * 256 + p]) return false;
      }
    // Per feature when channels differ, pixels being [C, H, W].
    const int64_t features = model_.input_size(), channels = model_.input_channels();
    auto per_feature = [&](const std::vector<float>& v) {
      if (channels == 1) return v;
      std::vector<float> out(static_cast<size_t>(features));
      for (int64_t i = 0; i < features; ++i) out[i] = v[i / (features / channels)];
      return out;
    };
    const Shape dims = channels == 1 ? Shape{} : Shape{features};
    integer(add_node("Cast", "input/float", {x}, "input/float"), "to", onnx::TensorProto::FLOAT);
    add_node("Div", "input/unit", {"input/float", scalar_float("input/255", 255.0f)}, "input/unit");
    add_node("Sub", "input/centred", {"input/unit", constant("input/mean", onnx::TensorProto::FLOAT, dims,
                                                              per_feature(mean))},
             "input/centred");
    add_node("Div", "input/normalized", {"input/centred", constant("input/std", onnx::TensorProto::FLOAT, dims,
                                                                    per_feature(std))},
             "input/normalized");
    const std::string q = qmax < 255 ? "input/q" : codes;
    add_node("QuantizeLinear", "input/q", {"input/normalized", scalar_float("input/scale", scale),
                                           scalar_u8("input/zero_point", zero_point)},
             q);
    if (qmax < 255) add_node("Min", "input/clamp", {q, scalar_u8("input/qmax", qmax)}, codes);
    return true;
  }

  void table_input_codes(const std::string& pixels, const std::string& codes) {
    const int64_t features = model_.input_size(), channels = model_.input_channels();
    integer(add_node("Cast", "input/index", {pixels}, "input/index"), "to", onnx::TensorProto::INT32);
    std::string x = "input/index";
    if (channels > 1) {  // channel c's table starts at c * 256; pixels are [C, H, W]
      std::vector<int32_t> offset(static_cast<size_t>(features));
      for (int64_t i = 0; i < features; ++i) offset[i] = static_cast<int32_t>(i / (features / channels) * 256);
      add_node("Add", "input/channel_index", {x, constant("input/channel_offset", onnx::TensorProto::INT32,
                                                            {features}, offset)},
               "input/channel_index");
      x = "input/channel_index";
    }
    const std::vector<uint8_t>& table = model_.input_table();
    integer(add_node("Gather", codes, {constant("pixel_table", onnx::TensorProto::UINT8,
                                                {static_cast<int64_t>(table.size())}, table), x},
                     codes),
            "axis", 0);
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
    // output_min = zero point). QuantizeLinear saturates to [0, 255]; the rest is Max and Min
    // on the uint8 codes, the engine's integer clamp exactly, after the QuantizeLinear so that
    // ONNX Runtime still fuses DQ -> Gemm -> Q.
    const std::string out = layer_name(index + 1) + "/input_codes";
    const bool lower = l.output_min > 0, upper = l.output_max < 255;
    std::string y = !lower && !upper ? out : name + "/q";
    add_node("QuantizeLinear", name + "/output_q",
             {sum, scalar_float(name + "/output_scale", l.output_scale),
              scalar_u8(name + "/output_zero_point", l.output_zero_point)},
             y);
    if (lower) {
      const std::string o = upper ? name + "/relu" : out;
      add_node("Max", name + "/relu", {y, scalar_u8(name + "/output_min", l.output_min)}, o);
      y = o;
    }
    if (upper) add_node("Min", name + "/clamp", {y, scalar_u8(name + "/output_max", l.output_max)}, out);
    return out;
  }

  void metadata(onnx::ModelProto& proto) const {
    onnx_writer::put_preprocessing(proto, model_.metadata, model_.input_shape());
    onnx_writer::put(proto, "lowbit.input", "raw uint8 pixels; the pixel table applies the normalization");
    if (model_.metadata.contains("quantization"))
      onnx_writer::put(proto, "lowbit.quantization", model_.metadata["quantization"].dump());
  }

  const QuantizedModel& model_;
  onnx::GraphProto* graph_ = nullptr;
};

}  // namespace

void export_onnx(const QuantizedModel& model, const std::string& path) {
  if (model.is_graph())
    throw Error(path + ": QDQ export handles chains of Linear layers (FC_NN) so far, not CNN graphs");
  onnx::ModelProto proto = QdqExporter(model).run();
  onnx_writer::check_and_write(proto, path, "QDQ graph");
}

}  // namespace lowbit
