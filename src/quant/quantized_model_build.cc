// Building the integer model from a quantization plan, and measuring it on labelled images: the
// parts of QuantizedModel that need the float model and training types (lowbit::lowbit, not the engine).
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/requantize.h"
#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/quantized_model.h"
#include "quant/integer_linear.h"
#include "train/batching.h"

namespace lowbit {
namespace {

// The largest accumulator shift build() uses: 2^-16 of a product of codes is finer than any bias
// needs, and it leaves the 1-3 bit layers of FC_NN far inside the int32 bound.
constexpr int kMaxBuildAccShift = 16;
// build() keeps |acc| <= 2^30, half the int32 range, as margin against the bound's assumptions.
constexpr double kAccLimit = 1073741824.0;

int32_t saturate_int32(double v) {
  v = std::nearbyint(v);
  return static_cast<int32_t>(std::clamp(v, -2147483648.0, 2147483647.0));
}

std::vector<float> channel_values(const nlohmann::json& metadata, const char* key) {
  if (!metadata.contains(key) || !metadata[key].is_array() || metadata[key].empty())
    throw Error(std::string("model metadata has no normalization \"") + key + "\"");
  return metadata[key].get<std::vector<float>>();
}

// The largest s <= kMaxBuildAccShift for which every acc of the layer provably fits in kAccLimit,
//   2^s * K * (2^b - 1) * (2^a - 1) + max_n |round(bias[n] * 2^s / accumulator_scale[n])| <= 2^30,
// and every requantization multiplier M[n] / 2^s stays representable (exponent >= -31; past that
// quantize_multiplier flushes it to 0). |w - z_w| <= 2^b - 1 and |x - z_x| <= 2^a - 1 because codes
// and zero points lie in [0, 2^bits - 1], so the bound holds for any input. 0 when even s = 0
// breaks it (then the bias saturates as it always did).
int choose_acc_shift(int64_t in_features, int weight_bits, int act_bits, const std::vector<float>& bias,
                     const std::vector<double>& accumulator_scale, const std::vector<double>& multiplier) {
  const double sum_bound = static_cast<double>(in_features) * ((1 << weight_bits) - 1) * ((1 << act_bits) - 1);
  for (int s = kMaxBuildAccShift; s > 0; --s) {
    double bias_bound = 0;
    bool representable = true;
    for (size_t n = 0; n < bias.size(); ++n) {
      bias_bound = std::max(bias_bound, std::fabs(std::nearbyint(std::ldexp(double{bias[n]}, s) /
                                                                 accumulator_scale[n])));
      representable = representable && (multiplier[n] == 0 || std::ldexp(multiplier[n], -s) >= 0x1p-31);
    }
    if (representable && std::ldexp(sum_bound, s) + bias_bound <= kAccLimit) return s;
  }
  return 0;
}

}  // namespace

QuantizedModel QuantizedModel::build(const Model& model, const QuantPlan& plan) {
  QuantizedModel q;
  q.input_shape_ = model.input_shape();
  q.metadata = model.metadata;
  const std::vector<float> mean = channel_values(model.metadata, "mean");
  const std::vector<float> std = channel_values(model.metadata, "std");
  if (mean.size() != std.size()) throw Error("model metadata: mean and std differ in length");
  q.channels_ = static_cast<int64_t>(mean.size());
  if (q.input_size() % q.channels_ != 0)
    throw Error("model input " + shape_string(q.input_shape_) + " does not split into " +
                std::to_string(q.channels_) + " channels");

  // Pixel -> input code, through the very normalization the float path uses.
  const QuantParams& input = plan.layers.front().input;
  ImageSet ramp;
  ramp.count = 1;
  ramp.channels = q.channels_;
  ramp.height = 1;
  ramp.width = 256;
  for (int64_t c = 0; c < q.channels_; ++c)
    for (int p = 0; p < 256; ++p) ramp.pixels.push_back(static_cast<uint8_t>(p));
  const Tensor normalized = normalized_images(ramp, mean, std, 0, 1);
  for (float v : normalized.values()) q.input_table_.push_back(static_cast<uint8_t>(input.quantize(v)));

  for (size_t l = 0; l < plan.layers.size(); ++l) {
    const QuantizedLinearPlan& p = plan.layers[l];
    const bool last = l + 1 == plan.layers.size();
    auto layer = std::make_unique<IntegerLinear>();
    layer->in_features = p.in_features;
    layer->out_features = p.out_features;
    layer->act_bits = p.input.bits;
    layer->input_zero_point = p.input.zero_point;
    layer->input_scale = p.input.scale;
    // One storage form per layer: the packed weights have one width, sign-binary or affine.
    const bool sign = p.weight.front().sign;
    const int weight_bits = p.weight.front().bits;
    for (int64_t n = 0; n < p.out_features; ++n)
      if (p.weight_params(n).sign != sign || p.weight_params(n).bits != weight_bits)
        throw Error("layer " + std::to_string(l) + ": weight channels differ in bits or coding");
    if (sign && weight_bits != 1) throw Error("sign-binary weights must have 1-bit codes");
    layer->sign_weights = sign;
    layer->weights = kernels::pack_weights(p.weight_codes.data(), p.out_features, p.in_features,
                                           weight_bits);
    float max_weight_scale = 0;
    for (int64_t n = 0; n < p.out_features; ++n) {
      layer->weight_scale.push_back(p.weight_params(n).scale);
      // Sign-binary: the zero point of the expanded codes {0, 2} (IntegerLinear::prepare_kernel).
      layer->weight_zero_point.push_back(sign ? 1 : p.weight_params(n).zero_point);
      max_weight_scale = std::max(max_weight_scale, p.weight_params(n).scale);
    }
    if (last) {
      // int32 logits on one scale for every class, so that argmax compares like with like.
      layer->out_bits = 0;
      layer->output_scale = p.input.scale * max_weight_scale;
      layer->output_zero_point = 0;
      layer->output_min = std::numeric_limits<int32_t>::min();
      layer->output_max = std::numeric_limits<int32_t>::max();
    } else {
      const QuantParams& next = plan.layers[l + 1].input;
      layer->out_bits = next.bits;
      layer->output_scale = next.scale;
      layer->output_zero_point = next.zero_point;
      layer->output_min = p.relu ? next.zero_point : 0;  // ReLU folded into the clamp
      layer->output_max = next.qmax();
    }
    // One unit of the unshifted sum is s_w[n] * s_x; the accumulator counts 2^-acc_shift of it.
    std::vector<double> accumulator_scale(p.out_features), real_multiplier(p.out_features);
    for (int64_t n = 0; n < p.out_features; ++n) {
      accumulator_scale[n] = double{layer->weight_scale[n]} * double{p.input.scale};
      real_multiplier[n] = accumulator_scale[n] / double{layer->output_scale};
    }
    const int s = choose_acc_shift(p.in_features, layer->kernel_weight_bits(), layer->act_bits, p.bias,
                                   accumulator_scale, real_multiplier);
    layer->acc_shift = s;
    // The logits keep the finer grid too: otherwise the last requantization would round the
    // precise bias away again. Scaling by 2^-s is exact in float and double, so M0 stays as it was
    // and s = 0 reproduces the unshifted engine bit for bit.
    if (last) layer->output_scale = std::ldexp(layer->output_scale, -s);
    for (int64_t n = 0; n < p.out_features; ++n) {
      layer->bias.push_back(saturate_int32(std::ldexp(double{p.bias[n]}, s) / accumulator_scale[n]));
      int32_t m0 = 0, e = 0;
      kernels::quantize_multiplier(std::ldexp(accumulator_scale[n] / double{layer->output_scale}, -s),
                                   &m0, &e);
      layer->multiplier.push_back(m0);
      layer->shift.push_back(e);
    }
    q.max_width_ = std::max({q.max_width_, p.in_features, p.out_features});
    layer->prepare_kernel();
    q.layers_.push_back(std::move(layer));
  }
  q.logit_scale_ = q.layers_.back()->output_scale;
  q.prepare_input_layer();
  nlohmann::json layer_bits = nlohmann::json::array();
  for (const QuantizedLinearPlan& p : plan.layers)
    layer_bits.push_back({{"weight_bits", p.weight.front().bits},
                          {"act_bits", p.input.bits},
                          {"weight_coding", p.weight.front().sign ? "sign" : "affine"}});
  q.metadata["quantization"] = {{"method", plan.options.method},
                                {"weight_bits", plan.options.weight_bits},
                                {"act_bits", plan.options.act_bits},
                                {"layers", layer_bits}};
  return q;
}

Tensor QuantizedModel::log_probabilities(const int32_t* logits, int64_t batch) const {
  const int64_t classes = num_classes();
  Tensor real({batch, classes}), out;
  for (int64_t i = 0; i < batch * classes; ++i) real[i] = logit_scale_ * static_cast<float>(logits[i]);
  LogSoftmax().forward(real, out);
  return out;
}

Evaluation QuantizedModel::evaluate(const ImageSet& images) const {
  if (images.image_size() != input_size())
    throw Error("model expects " + std::to_string(input_size()) + " pixels per image, data has " +
                std::to_string(images.image_size()));
  if (images.labels.size() != static_cast<size_t>(images.count))
    throw Error("image set has " + std::to_string(images.count) + " images but " +
                std::to_string(images.labels.size()) + " labels");
  check_labels(num_classes(), images.labels);
  const int64_t classes = num_classes();
  std::vector<int32_t> out(images.count * classes);
  logits(images.pixels.data(), images.count, out.data());
  Evaluation result;
  result.count = images.count;
  result.predictions.resize(images.count);
  const Tensor log_probs = log_probabilities(out.data(), images.count);
  int64_t correct = 0;
  double loss = 0;
  for (int64_t i = 0; i < images.count; ++i) {
    const int32_t* row = out.data() + i * classes;
    result.predictions[i] = static_cast<uint8_t>(std::max_element(row, row + classes) - row);
    correct += result.predictions[i] == images.labels[i];
    loss -= log_probs[i * classes + images.labels[i]];
  }
  result.accuracy = images.count ? static_cast<double>(correct) / images.count : 0;
  result.loss = images.count ? loss / images.count : 0;
  return result;
}

}  // namespace lowbit
