// Building the integer model from a quantization plan, and measuring it on labelled images: the
// parts of QuantizedModel that need the float model and training types (lowbit::lowbit, not the engine).
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "kernels/requantize.h"
#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/quantized_model.h"
#include "quant/inference_graph.h"
#include "quant/integer_graph.h"
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

// The integer form of planned layer `index`: `codes` are its weights [out, in] in the engine's
// column order; `next` the grid of its output codes, or null for int32 logits; `relu` folds a
// ReLU into the clamp.
std::unique_ptr<IntegerLinear> integer_layer(const QuantizedLinearPlan& p, const std::vector<uint8_t>& codes,
                                             const QuantParams* next, bool relu, size_t index, bool onnx_bias_grid) {
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
      throw Error("layer " + std::to_string(index) + ": weight channels differ in bits or coding");
  if (sign && weight_bits != 1) throw Error("sign-binary weights must have 1-bit codes");
  layer->sign_weights = sign;
  layer->weights = kernels::pack_weights(codes.data(), p.out_features, p.in_features, weight_bits);
  float max_weight_scale = 0;
  for (int64_t n = 0; n < p.out_features; ++n) {
    layer->weight_scale.push_back(p.weight_params(n).scale);
    // Sign-binary: the zero point of the expanded codes {0, 2} (IntegerLinear::prepare_kernel).
    layer->weight_zero_point.push_back(sign ? 1 : p.weight_params(n).zero_point);
    max_weight_scale = std::max(max_weight_scale, p.weight_params(n).scale);
  }
  const bool last = next == nullptr;
  if (last) {
    // int32 logits on one scale for every class, so that argmax compares like with like.
    layer->out_bits = 0;
    layer->output_scale = p.input.scale * max_weight_scale;
    layer->output_zero_point = 0;
    layer->output_min = std::numeric_limits<int32_t>::min();
    layer->output_max = std::numeric_limits<int32_t>::max();
  } else {
    layer->out_bits = next->bits;
    layer->output_scale = next->scale;
    layer->output_zero_point = next->zero_point;
    layer->output_min = relu ? next->zero_point : 0;  // ReLU folded into the clamp
    layer->output_max = next->qmax();
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
  // --bias-grid onnx: the bias on the grid an ONNX export carries exactly (onnx_bias_shift). The
  // accumulator stays 2^s finer: with s = 0 the requantization's two roundings would tip more
  // codes away from ONNX Runtime's single one.
  const int coarse = onnx_bias_grid ? layer->onnx_bias_shift() : 0;
  // The logits keep the finer grid too: otherwise the last requantization would round the
  // precise bias away again. Scaling by 2^-s is exact in float and double, so M0 stays as it was
  // and s = 0 reproduces the unshifted engine bit for bit.
  if (last) layer->output_scale = std::ldexp(layer->output_scale, -s);
  for (int64_t n = 0; n < p.out_features; ++n) {
    const double bias = std::ldexp(double{p.bias[n]}, s) / accumulator_scale[n];
    layer->bias.push_back(saturate_int32(coarse ? std::ldexp(std::nearbyint(std::ldexp(bias, -coarse)), coarse) : bias));
    int32_t m0 = 0, e = 0;
    kernels::quantize_multiplier(std::ldexp(accumulator_scale[n] / double{layer->output_scale}, -s),
                                 &m0, &e);
    layer->multiplier.push_back(m0);
    layer->shift.push_back(e);
  }
  return layer;
}

// The weight codes [out, in] of a planned layer in the engine's column order: a conv's (c, ky, kx)
// becomes (ky, kx, c), and a linear reading a [C, H, W] tensor has its (c, y, x) columns moved to
// (y, x, c), as the NHWC codes it reads lie.
std::vector<uint8_t> engine_order(const QuantizedLinearPlan& p, const Shape& input) {
  int64_t c = 0, area = 0;
  if (p.conv) c = p.conv_input[0], area = p.window.kernel_h * p.window.kernel_w;
  else if (input.size() == 3) c = input[0], area = input[1] * input[2];
  if (area <= 1) return p.weight_codes;
  std::vector<uint8_t> codes(p.weight_codes.size());
  for (int64_t o = 0; o < p.out_features; ++o)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t a = 0; a < area; ++a)
        codes[o * p.in_features + a * c + ch] = p.weight_codes[o * p.in_features + ch * area + a];
  return codes;
}

kernels::ImageShape nhwc(const Shape& chw) {
  if (chw.size() == 3) return {chw[1], chw[2], chw[0]};
  return {1, 1, shape_numel(chw)};
}

kernels::Window engine_window(const Window2d& w) {
  return {w.kernel_h, w.kernel_w, w.stride_h, w.stride_w, w.pad_h, w.pad_w};
}

int32_t checked_multiplier(double real, int32_t* shift, const std::string& what) {
  int32_t m0 = 0;
  kernels::quantize_multiplier(real, &m0, shift);
  if (m0 == 0) throw Error(what + ": the requantization multiplier " + std::to_string(real) + " is too small");
  return m0;
}

}  // namespace

QuantizedModel QuantizedModel::build(const Model& model, const QuantPlan& plan) {
  if (plan.graph && plan.only_listed_layers)
    throw Error("a plan of single layers (sensitivity) is for simulation only; the engine needs every layer planned");
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
  const QuantParams& input = plan.graph ? plan.input : plan.layers.front().input;
  ImageSet ramp;
  ramp.count = 1;
  ramp.channels = q.channels_;
  ramp.height = 1;
  ramp.width = 256;
  for (int64_t c = 0; c < q.channels_; ++c)
    for (int p = 0; p < 256; ++p) ramp.pixels.push_back(static_cast<uint8_t>(p));
  const Tensor normalized = normalized_images(ramp, mean, std, 0, 1);
  for (float v : normalized.values()) q.input_table_.push_back(static_cast<uint8_t>(input.quantize(v)));

  if (!plan.graph) {
    for (size_t l = 0; l < plan.layers.size(); ++l) {
      const QuantizedLinearPlan& p = plan.layers[l];
      const QuantParams* next = l + 1 == plan.layers.size() ? nullptr : &plan.layers[l + 1].input;
      auto layer = integer_layer(p, p.weight_codes, next, p.relu, l, plan.options.onnx_bias_grid);
      q.max_width_ = std::max({q.max_width_, p.in_features, p.out_features});
      layer->prepare_kernel();
      q.layers_.push_back(std::move(layer));
    }
    q.prepare_input_layer();
  } else {
    if (q.input_shape_.size() != 3 || q.input_shape_[0] != q.channels_)
      throw Error("a CNN's input must be [C, H, W] with C the normalization's " + std::to_string(q.channels_) +
                  " channels, not " + shape_string(q.input_shape_));
    const Model inference = inference_graph(model);
    const QuantGraph g = analyze_graph(inference);
    q.input_bits_ = plan.input.bits;
    q.input_zero_point_ = plan.input.zero_point;
    q.input_scale_ = plan.input.scale;
    for (size_t i = 0; i < inference.node_count(); ++i) {
      const Layer& layer = inference.layer(i);
      const std::string where = "node \"" + inference.node_name(i) + "\" (" + layer.kind() + ")";
      IntegerNode n;
      n.inputs = inference.node_inputs(i);
      n.shape = nhwc(inference.node_shape(i));
      const int grid = g.stored_as[i] >= 0 ? g.stored_as[i] : g.grid[i];
      if (grid != QuantGraph::kNoGrid) {
        const QuantParams& p = grid == Model::kModelInput ? plan.input : *plan.node_output[grid];
        n.bits = p.bits, n.zero_point = p.zero_point, n.scale = p.scale;
      }
      auto input_grid = [&](int t) -> const QuantParams& {
        const int from = g.grid_of(t);
        return from == Model::kModelInput ? plan.input : *plan.node_output[from];
      };
      const QuantRole role = g.role[i];
      if (role == QuantRole::weighted || role == QuantRole::logits) {
        const int j = g.weighted_index[i];
        const QuantizedLinearPlan& p = plan.layers[j];
        const QuantParams* next = role == QuantRole::logits ? nullptr : &*plan.node_output[g.stored_as[i]];
        auto integer = integer_layer(p, engine_order(p, inference.node_input_shapes(i)[0]), next, p.relu, j,
                                     plan.options.onnx_bias_grid);
        integer->prepare_kernel();
        q.layers_.push_back(std::move(integer));
        n.op = p.conv ? IntegerNode::Op::conv : IntegerNode::Op::linear;
        n.layer = j;
        if (p.conv) n.window = engine_window(p.window);
      } else if (role == QuantRole::add) {
        n.op = IntegerNode::Op::add;
        double largest = 0;
        for (int t : n.inputs) largest = std::max(largest, double{input_grid(t).scale});
        for (int t : n.inputs) {
          int32_t e = 0;
          n.multiplier.push_back(checked_multiplier(double{input_grid(t).scale} / (2 * largest), &e, where));
          n.shift.push_back(e);
        }
        n.out_multiplier = checked_multiplier(2 * largest / (std::ldexp(1.0, kernels::kAddLeftShift) * n.scale),
                                              &n.out_shift, where);
      } else if (role == QuantRole::avg_pool) {
        n.op = IntegerNode::Op::avg_pool;
        const kernels::ImageShape in = nhwc(inference.node_input_shapes(i)[0]);
        if (const auto* pool = dynamic_cast<const Pool2d*>(&layer)) {
          n.window = engine_window(pool->window());
          n.count_include_pad = pool->count_include_pad();
        } else {  // global_avg_pool
          n.window = {in.h, in.w, 1, 1, 0, 0};
        }
        // The sum shifted left first, so that the requantization rounds (almost) once; less where
        // the smallest multiplier (the largest divisor) would fall below 2^-32.
        const int64_t area = n.window.kernel_h * n.window.kernel_w;
        const double in_over_out = double{input_grid(n.inputs[0]).scale} / double{n.scale};
        n.sum_shift = kernels::avg_pool_sum_shift(area);
        while (n.sum_shift > 0 && in_over_out / (static_cast<double>(area) * std::ldexp(1.0, n.sum_shift)) < 0x1p-31)
          --n.sum_shift;
        const double ratio = in_over_out / std::ldexp(1.0, n.sum_shift);
        for (int64_t d = 1; d <= area; ++d) {
          int32_t e = 0;
          n.multiplier.push_back(checked_multiplier(ratio / static_cast<double>(d), &e, where));
          n.shift.push_back(e);
        }
      } else if (role == QuantRole::same_grid) {
        const std::string kind = layer.kind();
        if (kind == "max_pool2d") {
          n.op = IntegerNode::Op::max_pool;
          n.window = engine_window(dynamic_cast<const Pool2d&>(layer).window());
        } else if (kind == "global_max_pool") {
          const kernels::ImageShape in = nhwc(inference.node_input_shapes(i)[0]);
          n.op = IntegerNode::Op::max_pool;
          n.window = {in.h, in.w, 1, 1, 0, 0};
        } else if (kind == "relu") {
          n.op = IntegerNode::Op::relu;
        } else {
          n.op = IntegerNode::Op::alias;  // flatten
        }
      } else {
        n.op = IntegerNode::Op::alias;  // fused relu, after the logits
      }
      if (n.op == IntegerNode::Op::add || n.op == IntegerNode::Op::avg_pool) {
        n.out_min = g.stored_as[i] != static_cast<int>(i) ? n.zero_point : 0;  // a fused ReLU
        n.out_max = (1 << n.bits) - 1;
      }
      q.nodes_.push_back(std::move(n));
    }
    q.prepare_graph("quantized model");
  }
  q.logit_scale_ = q.layers_.back()->output_scale;
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
