// The shared pieces of the QDQ exporters: constants, nodes, the pixel input stage, weights and
// bias of a weighted layer, and the requantize-and-clamp on codes.
#include "onnx/qdq_builder.h"

#include <algorithm>
#include <cmath>

#include "kernels/qlinear.h"
#include "lowbit/onnx.h"
#include "quant/integer_linear.h"

namespace lowbit {

using Json = nlohmann::json;

void QdqBuilder::add_value(onnx::ValueInfoProto* v, const std::string& name, int type_code, const Shape& per_sample) {
  v->set_name(name);
  auto* type = v->mutable_type()->mutable_tensor_type();
  type->set_elem_type(type_code);
  type->mutable_shape()->add_dim()->set_dim_param("batch");
  for (int64_t d : per_sample) type->mutable_shape()->add_dim()->set_dim_value(d);
}

std::string QdqBuilder::scalar_float(const std::string& name, float v) {
  return constant(name, onnx::TensorProto::FLOAT, {}, std::vector<float>{v});
}

std::string QdqBuilder::scalar_u8(const std::string& name, int32_t v) {
  return constant(name, onnx::TensorProto::UINT8, {}, std::vector<uint8_t>{static_cast<uint8_t>(v)});
}

onnx::NodeProto* QdqBuilder::add_node(const std::string& op, const std::string& name,
                                      const std::vector<std::string>& inputs, const std::string& output) {
  return onnx_writer::add_node(graph_, op, name, inputs, output);
}

void QdqBuilder::input_codes(const std::string& x, const std::string& codes, float scale, int32_t zero_point, int bits,
                             bool image) {
  if (!arithmetic_input_codes(x, codes, scale, zero_point, bits, image)) table_input_codes(x, codes, image);
}

// The normalization of metadata `key`, one value per channel; empty if absent or malformed.
std::vector<float> QdqBuilder::channel_values(const char* key) const {
  const Json& m = model_.metadata;
  if (!m.contains(key) || !m[key].is_array() || static_cast<int64_t>(m[key].size()) != model_.input_channels())
    return {};
  for (const Json& v : m[key])
    if (!v.is_number()) return {};
  return m[key].get<std::vector<float>>();
}

bool QdqBuilder::arithmetic_input_codes(const std::string& x, const std::string& codes, float scale,
                                        int32_t zero_point, int bits, bool image) {
  const std::vector<float> mean = channel_values("mean"), std = channel_values("std");
  if (mean.empty() || std.empty()) return false;
  const int32_t qmax = (1 << bits) - 1;
  const std::vector<uint8_t>& table = model_.input_table();
  for (size_t c = 0; c < mean.size(); ++c)
    for (int p = 0; p < 256; ++p) {
      // ONNX's QuantizeLinear: saturate(round_half_even(x / scale) + zero_point) to [0, 255].
      const float v = (static_cast<float>(p) / 255.0f - mean[c]) / std[c];
      const float q = std::clamp(std::nearbyint(v / scale) + static_cast<float>(zero_point), 0.0f, 255.0f);
      if (std::min(static_cast<int32_t>(q), qmax) != table[c * 256 + p]) return false;
    }
  // One value per channel: [C, 1, 1] broadcast over [batch, C, H, W] images, or per feature of
  // flattened [C, H, W] pixels; a scalar for one channel.
  const int64_t features = model_.input_size(), channels = model_.input_channels();
  auto layout = [&](const std::vector<float>& v) {
    if (channels == 1 || image) return v;
    std::vector<float> out(static_cast<size_t>(features));
    for (int64_t i = 0; i < features; ++i) out[i] = v[i / (features / channels)];
    return out;
  };
  const Shape dims = channels == 1 ? Shape{} : image ? Shape{channels, 1, 1} : Shape{features};
  integer(add_node("Cast", "input/float", {x}, "input/float"), "to", onnx::TensorProto::FLOAT);
  add_node("Div", "input/unit", {"input/float", scalar_float("input/255", 255.0f)}, "input/unit");
  add_node("Sub", "input/centred",
           {"input/unit", constant("input/mean", onnx::TensorProto::FLOAT, dims, layout(mean))}, "input/centred");
  add_node("Div", "input/normalized",
           {"input/centred", constant("input/std", onnx::TensorProto::FLOAT, dims, layout(std))}, "input/normalized");
  const std::string q = qmax < 255 ? "input/q" : codes;
  add_node("QuantizeLinear", "input/q",
           {"input/normalized", scalar_float("input/scale", scale), scalar_u8("input/zero_point", zero_point)}, q);
  if (qmax < 255) add_node("Min", "input/clamp", {q, scalar_u8("input/qmax", qmax)}, codes);
  return true;
}

void QdqBuilder::table_input_codes(const std::string& pixels, const std::string& codes, bool image) {
  const int64_t features = model_.input_size(), channels = model_.input_channels();
  integer(add_node("Cast", "input/index", {pixels}, "input/index"), "to", onnx::TensorProto::INT32);
  std::string x = "input/index";
  if (channels > 1) {  // channel c's table starts at c * 256
    std::vector<int32_t> offset;
    if (image) {
      for (int64_t c = 0; c < channels; ++c) offset.push_back(static_cast<int32_t>(c * 256));
    } else {  // pixels [C, H, W] flattened
      for (int64_t i = 0; i < features; ++i) offset.push_back(static_cast<int32_t>(i / (features / channels) * 256));
    }
    add_node("Add", "input/channel_index",
             {x, constant("input/channel_offset", onnx::TensorProto::INT32,
                          image ? Shape{channels, 1, 1} : Shape{features}, offset)},
             "input/channel_index");
    x = "input/channel_index";
  }
  const std::vector<uint8_t>& table = model_.input_table();
  integer(add_node("Gather", codes,
                   {constant("pixel_table", onnx::TensorProto::UINT8, {static_cast<int64_t>(table.size())}, table), x},
                   codes),
          "axis", 0);
}


size_t onnx_rounded_bias_layers(const QuantizedModel& model) {
  size_t rounded = 0;
  for (size_t i = 0; i < model.layer_count(); ++i) {
    const IntegerLinear& l = model.layer(i);
    const int shift = l.onnx_bias_shift();
    rounded += std::any_of(l.bias.begin(), l.bias.end(), [&](int32_t b) { return b % (int32_t{1} << shift) != 0; });
  }
  return rounded;
}

QdqBuilder::Weights QdqBuilder::weights(const std::string& name, const IntegerLinear& l, std::vector<uint8_t> codes,
                                        const Shape& dims) {
  const int64_t N = l.out_features;
  // ONNX Runtime fuses DQ -> Gemm/Conv -> Q into QGemm/QLinearConv, which adds the int32 bias to
  // the sum of code products as it is: it takes the bias's scale to be s_x * s_w, whatever its
  // DequantizeLinear says. lowbit's bias is on a grid 2^acc_shift finer, so the weight codes
  // and zero points are stored times 2^shift (shift = acc_shift where the codes still fit in
  // uint8) with the scale divided by 2^shift: the same real weights, and an integer sum equal
  // to the engine's 2^acc_shift * sum. The bias then needs no rounding; where
  // acc_shift > shift it is rounded to the grid 2^(acc_shift - shift) coarser (docs/onnx.md).
  const int bias_shift = l.onnx_bias_shift(), shift = l.acc_shift - bias_shift;
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
                        {constant(name + "/weight_codes", onnx::TensorProto::UINT8, dims, codes),
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
  return {name + "/weight", name + "/bias"};
}

std::string QdqBuilder::dequantize(const std::string& name, const std::string& what, const std::string& x,
                                   float scale, int32_t zero_point) {
  add_node("DequantizeLinear", name + "/" + what + "_dq",
           {x, scalar_float(name + "/" + what + "_scale", scale),
            scalar_u8(name + "/" + what + "_zero_point", zero_point)},
           name + "/" + what);
  return name + "/" + what;
}

void QdqBuilder::quantize_clamp(const std::string& name, const std::string& x, const std::string& out, float scale,
                                int32_t zero_point, int32_t lower, int32_t upper) {
  const bool max = lower > 0, min = upper < 255;
  std::string y = !max && !min ? out : name + "/q";
  add_node("QuantizeLinear", name + "/output_q",
           {x, scalar_float(name + "/output_scale", scale), scalar_u8(name + "/output_zero_point", zero_point)}, y);
  if (max) {
    const std::string o = min ? name + "/relu" : out;
    add_node("Max", name + "/relu", {y, scalar_u8(name + "/output_min", lower)}, o);
    y = o;
  }
  if (min) add_node("Min", name + "/clamp", {y, scalar_u8(name + "/output_max", upper)}, out);
}

}  // namespace lowbit
