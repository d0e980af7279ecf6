// Post-training quantization: calibration, weight rounding and bias correction, layer by layer.
#include "lowbit/quantize.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <iterator>
#include <span>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/train.h"
#include "nn/eigen_view.h"
#include "quant/calibration.h"
#include "quant/inference_graph.h"
#include "quant/layer_plan.h"
#include "quant/rounding.h"

namespace lowbit {
namespace {

int layer_bits(const std::vector<int>& per_layer, int all, size_t layer) {
  return per_layer.empty() ? all : per_layer[layer];
}

void check_options(const QuantOptions& options, size_t linear_count) {
  auto check_bits = [](int bits) {
    if (bits < 1 || bits > 8) throw Error("bit widths must be in 1..8");
  };
  check_bits(options.weight_bits);
  check_bits(options.act_bits);
  for (const auto* per_layer : {&options.layer_weight_bits, &options.layer_act_bits}) {
    if (!per_layer->empty() && per_layer->size() != linear_count)
      throw Error("per-layer bits name " + std::to_string(per_layer->size()) +
                  " layers, the model has " + std::to_string(linear_count) + " Linear layers");
    for (int bits : *per_layer) check_bits(bits);
  }
  if (options.weight_calibration == Calibration::percentile ||
      options.weight_calibration == Calibration::kl)
    throw Error("weights are calibrated by minmax, mse or output_mse");
}

}  // namespace

bool is_linear_chain(const Model& model) {
  if (!model.is_chain()) return false;
  for (size_t i = 0; i < model.layer_count(); ++i) {
    const std::string kind = model.layer(i).kind();
    if (kind != "linear" && kind != "relu" && kind != "log_softmax") return false;
  }
  return true;
}

void check_linear_chain(const Model& model, const std::string& where, const std::string& what) {
  if (is_linear_chain(model)) return;
  const std::string prefix = where.empty() ? "" : where + ": ";
  throw Error(prefix + what + " handles chains of linear, relu and log_softmax layers only so far, not CNNs or "
              "other graphs");
}

void check_quantizable(const Model& model, const std::string& where) {
  if (is_linear_chain(model)) return;
  analyze_graph(inference_graph(model), where);
}

namespace {

size_t count_linear_layers(const Model& model) {
  size_t count = 0;
  for (size_t i = 0; i < model.layer_count(); ++i)
    if (dynamic_cast<const Linear*>(&model.layer(i))) ++count;
  if (count == 0) throw Error("model has no Linear layer to quantize");
  return count;
}

// Weight calibration output_mse: the alpha * [min, max] of rows [first, first + count) that
// minimizes sum over those rows of (w - w^)^T X^T X (w - w^), their exact share of
// ||X W^T - X W^^T||^2 (alpha = i/100, i = 1..100; X: the quantized model's inputs).
QuantParams output_error_weight_params(const Tensor& weight, int64_t first, int64_t count, int bits,
                                       bool symmetric, const Eigen::MatrixXd& h) {
  const int64_t in = weight.row_size();
  const std::span<const float> w = weight.values().subspan(first * in, count * in);
  const Range full = range_of(w);
  double best_error = -1;
  QuantParams best;
  Eigen::VectorXd error(in);
  for (int i = 100; i >= 1; --i) {
    const Range candidate{full.min * i / 100.0f, full.max * i / 100.0f};
    const QuantParams p = symmetric ? symmetric_params(candidate, bits) : minmax_params(candidate, bits);
    double total = 0;
    for (int64_t row = 0; row < count; ++row) {
      for (int64_t k = 0; k < in; ++k) error[k] = double{w[row * in + k]} - p.fake_quantize(w[row * in + k]);
      total += error.dot(h * error);
    }
    if (best_error < 0 || total < best_error) best_error = total, best = p;
  }
  return best;
}

}  // namespace

std::vector<QuantParams> weight_params(const Tensor& weight, int bits, const QuantOptions& o,
                                       const Tensor& inputs) {
  const int64_t rows = weight.dim(0), in = weight.row_size();
  if (o.weight_calibration == Calibration::output_mse) {
    const Eigen::MatrixXd x = as_matrix(inputs).cast<double>();
    const Eigen::MatrixXd h = x.transpose() * x;
    if (!o.per_channel) return {output_error_weight_params(weight, 0, rows, bits, o.symmetric, h)};
    std::vector<QuantParams> params;
    for (int64_t row = 0; row < rows; ++row)
      params.push_back(output_error_weight_params(weight, row, 1, bits, o.symmetric, h));
    return params;
  }
  if (!o.per_channel)
    return {choose_weight_params(weight.values(), bits, o.weight_calibration, o.symmetric)};
  std::vector<QuantParams> params;
  for (int64_t row = 0; row < rows; ++row)
    params.push_back(choose_weight_params(weight.values().subspan(row * in, in), bits,
                                          o.weight_calibration, o.symmetric));
  return params;
}

// The parameters whose range is s times the one `p` covers (loss-aware search, weight_range_scale).
QuantParams scaled_params(const QuantParams& p, float s, bool symmetric) {
  if (s == 1.0f) return p;
  const float hi = p.dequantize(p.qmax()), lo = p.dequantize(0);
  if (symmetric) return p.bits == 1 ? p : symmetric_params({-hi * s, hi * s}, p.bits);
  return minmax_params({lo * s, hi * s}, p.bits);
}

namespace {

float scale_at(const std::vector<float>& scales, size_t layer) {
  return scales.empty() ? 1.0f : scales[layer];
}

}  // namespace

Tensor dequantized_weight(const QuantizedLinearPlan& q) {
  Tensor w({q.out_features, q.in_features});
  for (int64_t o = 0; o < q.out_features; ++o)
    for (int64_t k = 0; k < q.in_features; ++k) {
      const int64_t at = o * q.in_features + k;
      w[at] = q.weight_params(o).dequantize(q.weight_codes[at]);
    }
  return w;
}

namespace {

// x: [count, in], weight: [out, in] -> x W^T: [count, out]
Tensor multiply_transposed(const Tensor& x, const Tensor& weight) {
  Tensor y({x.dim(0), weight.dim(0)});
  as_matrix(y).noalias() = as_matrix(x) * as_matrix(weight).transpose();
  return y;
}

// Per output channel, the mean of (quantized - float) over the rows, summed in row order.
std::vector<float> mean_output_error(const Tensor& quantized, const Tensor& reference) {
  const int64_t rows = quantized.dim(0), cols = quantized.row_size();
  std::vector<double> sum(cols, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      sum[c] += double{quantized[r * cols + c]} - reference[r * cols + c];
  std::vector<float> mean(cols);
  for (int64_t c = 0; c < cols; ++c) mean[c] = static_cast<float>(sum[c] / std::max<int64_t>(rows, 1));
  return mean;
}

// y = x · dequantized(W)^T + bias for the layer's quantized input x. The plan's bias starts as
// the float bias; with bias correction it first absorbs the mean output error against the float
// layer on the same calibration rows.
Tensor output_with_bias(const Linear& linear, const Tensor& float_input, const Tensor& x,
                        const QuantOptions& o, QuantizedLinearPlan& q) {
  q.bias.assign(linear.bias().data(), linear.bias().data() + q.out_features);
  Tensor y = multiply_transposed(x, dequantized_weight(q));
  if (o.bias_correction) {
    const std::vector<float> error =
        mean_output_error(y, multiply_transposed(float_input, linear.weight()));
    for (int64_t c = 0; c < q.out_features; ++c) q.bias[c] -= error[c];
  }
  const int64_t out = q.out_features;
  for (int64_t r = 0; r < y.dim(0); ++r)
    for (int64_t c = 0; c < out; ++c) y[r * out + c] += q.bias[c];
  return y;
}

// Quantizes one Linear. `float_input` is what it sees in the float model, `quantized_input` what
// it sees with the earlier layers already quantized; returns the layer's quantized output.
Tensor quantize_linear(const Linear& linear, const Tensor& float_input, const Tensor& quantized_input,
                       int weight_bits, int act_bits, float act_scale, float weight_scale,
                       const QuantOptions& o, QuantizedLinearPlan& q) {
  q.in_features = linear.in_features();
  q.out_features = linear.out_features();
  const Range range =
      o.calibration == Calibration::output_mse
          ? output_mse_range(float_input, quantized_input, linear.weight(), act_bits)
          : calibrate_range(float_input.values(), act_bits, o.calibration, o.percentile);
  q.input = minmax_params({range.min * act_scale, range.max * act_scale}, act_bits);
  Tensor x = quantized_input;
  for (float& v : x.values()) v = q.input.fake_quantize(v);
  q.weight = weight_params(linear.weight(), weight_bits, o, x);
  for (QuantParams& p : q.weight) p = scaled_params(p, weight_scale, o.symmetric);
  switch (o.rounding) {
    case Rounding::nearest: q.weight_codes = round_to_nearest(linear.weight(), q.weight); break;
    case Rounding::gptq: q.weight_codes = round_with_gptq(linear.weight(), q.weight, x); break;
    case Rounding::adaround:
      // AdaRound's asymmetric reconstruction: quantized inputs, the float layer's output as target.
      q.weight_codes = round_with_adaround(linear.weight(), q.weight, x, float_input);
      break;
  }
  Tensor y = output_with_bias(linear, float_input, x, o, q);
  return y;
}

}  // namespace

std::vector<std::string> quantization_methods() {
  return {"minmax", "percentile", "mse", "kl", "mse_pc", "gptq", "adaround", "best", "loss_aware"};
}

QuantOptions preset_options(const std::string& method, int weight_bits, int act_bits) {
  QuantOptions o;
  o.method = method;
  o.weight_bits = weight_bits;
  o.act_bits = act_bits;
  if (method == "minmax") return o;
  if (method == "percentile") {
    o.calibration = Calibration::percentile;
  } else if (method == "mse") {
    o.calibration = o.weight_calibration = Calibration::mse;
  } else if (method == "kl") {
    o.calibration = Calibration::kl;
  } else if (method == "mse_pc" || method == "gptq" || method == "adaround" || method == "best" ||
             method == "loss_aware") {
    const bool best = method == "best" || method == "loss_aware";
    o.calibration = o.weight_calibration = best ? Calibration::output_mse : Calibration::mse;
    o.per_channel = true;
    // best and loss_aware round with GPTQ: with it loss_aware meets every PTQ target over training
    // seeds 0-2, and sweeps run 3x faster; AdaRound wins only at b = 2 (docs/quantization.md,
    // "GPTQ or AdaRound"), where --rounding adaround or the adaround preset give it.
    if (method == "adaround") o.rounding = Rounding::adaround;
    else if (method == "gptq" || best) o.rounding = Rounding::gptq;
    o.bias_correction = best;
    o.loss_aware = method == "loss_aware";
  } else {
    throw Error("unknown quantization method \"" + method + "\"");
  }
  return o;
}

Calibration parse_calibration(const std::string& name) {
  if (name == "minmax") return Calibration::minmax;
  if (name == "percentile") return Calibration::percentile;
  if (name == "mse") return Calibration::mse;
  if (name == "kl") return Calibration::kl;
  if (name == "output_mse") return Calibration::output_mse;
  throw Error("unknown calibration \"" + name + "\" (minmax, percentile, mse, kl)");
}

Rounding parse_rounding(const std::string& name) {
  if (name == "nearest") return Rounding::nearest;
  if (name == "gptq") return Rounding::gptq;
  if (name == "adaround") return Rounding::adaround;
  throw Error("unknown rounding \"" + name + "\" (nearest, gptq, adaround)");
}

std::vector<Tensor> collect_linear_inputs(const Model& model, const Tensor& calibration_images) {
  Activations activations;
  model.forward(calibration_images, activations);
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < model.layer_count(); ++i) {
    if (!dynamic_cast<const Linear*>(&model.layer(i))) continue;
    const Tensor& input = i == 0 ? calibration_images : activations.outputs[i - 1];
    inputs.push_back(slice_rows(input, 0, input.dim(0)));
  }
  return inputs;
}

std::vector<Tensor> collect_layer_inputs(const Model& model, const Tensor& calibration_images,
                                         std::span<const size_t> nodes) {
  constexpr int64_t kChunk = 64;
  const int64_t count = calibration_images.dim(0);
  std::vector<std::vector<float>> values(nodes.size());
  std::vector<Shape> shapes(nodes.size());
  for (size_t j = 0; j < nodes.size(); ++j) {
    const int source = model.node_inputs(nodes[j]).at(0);
    shapes[j] = source == Model::kModelInput ? model.input_shape() : model.node_shape(static_cast<size_t>(source));
  }
  for (int64_t begin = 0; begin < count; begin += kChunk) {
    const Tensor chunk = slice_rows(calibration_images, begin, std::min(kChunk, count - begin));
    Activations activations;
    model.forward(chunk, activations);
    for (size_t j = 0; j < nodes.size(); ++j) {
      const int source = model.node_inputs(nodes[j]).at(0);
      const Tensor& input = source == Model::kModelInput ? chunk : activations.outputs[static_cast<size_t>(source)];
      values[j].insert(values[j].end(), input.data(), input.data() + input.size());
    }
  }
  std::vector<Tensor> inputs;
  for (size_t j = 0; j < nodes.size(); ++j) {
    Shape shape = {count};
    shape.insert(shape.end(), shapes[j].begin(), shapes[j].end());
    inputs.emplace_back(shape, std::move(values[j]));
  }
  return inputs;
}

namespace {

// Mean over rows of KL(softmax(reference) || softmax(logits)), rows summed in order in double.
double mean_kl(const Tensor& reference_logits, const Tensor& logits) {
  const int64_t rows = logits.dim(0), cols = logits.row_size();
  auto log_softmax = [cols](const float* z, std::vector<double>& out) {
    double m = z[0];
    for (int64_t c = 1; c < cols; ++c) m = std::max(m, double{z[c]});
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += std::exp(double{z[c]} - m);
    const double log_sum = m + std::log(sum);
    for (int64_t c = 0; c < cols; ++c) out[c] = z[c] - log_sum;
  };
  std::vector<double> p(cols), q(cols);
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    log_softmax(reference_logits.data() + r * cols, p);
    log_softmax(logits.data() + r * cols, q);
    for (int64_t c = 0; c < cols; ++c) total += std::exp(p[c]) * (p[c] - q[c]);
  }
  return total / std::max<int64_t>(rows, 1);
}

// Plans Linear layers first.. in `plan` (resized to first; layers before first are kept).
// quantized_inputs[j] is Linear j's input with the earlier layers quantized (before its own
// activation quantizer); entries from first on are (re)computed. Returns the final logits.
Tensor plan_from(const Model& model, const std::vector<Tensor>& float_inputs,
                 const QuantOptions& options, size_t first, std::vector<Tensor>& quantized_inputs,
                 QuantPlan& plan, const std::function<void()>& layer_done = {}) {
  plan.layers.resize(first);
  quantized_inputs.resize(float_inputs.size());
  Tensor quantized;
  size_t j = 0;
  for (size_t i = 0; i < model.layer_count(); ++i) {
    const Layer& layer = model.layer(i);
    const auto* linear = dynamic_cast<const Linear*>(&layer);
    if (j < first) {
      if (linear) ++j;
      continue;
    }
    if (layer.kind() == "relu") {
      for (float& v : quantized.values()) v = std::max(v, 0.0f);
      continue;
    }
    if (!linear) continue;  // log_softmax: the engine's logits come before it
    if (j == first) quantized = quantized_inputs[j];
    else quantized_inputs[j] = quantized;
    QuantizedLinearPlan q;
    q.layer = i;
    q.relu = i + 1 < model.layer_count() && model.layer(i + 1).kind() == "relu";
    quantized = quantize_linear(*linear, float_inputs[j], quantized,
                                layer_bits(options.layer_weight_bits, options.weight_bits, j),
                                layer_bits(options.layer_act_bits, options.act_bits, j),
                                scale_at(options.act_range_scale, j),
                                scale_at(options.weight_range_scale, j), options, q);
    plan.layers.push_back(std::move(q));
    ++j;
    if (layer_done) layer_done();
  }
  return quantized;
}

// Linear layer `q`'s input quantizer with its range times m, its weights kept as they are and its
// bias corrected again; returns the layer's output on quantized_input (loss-aware search, layer 0).
Tensor requantize_input(const Linear& linear, const Tensor& float_input, const Tensor& quantized_input,
                        float m, const QuantOptions& o, QuantizedLinearPlan& q) {
  const float lo = q.input.dequantize(0), hi = q.input.dequantize(q.input.qmax());
  q.input = minmax_params({lo * m, hi * m}, q.input.bits);
  Tensor x = quantized_input;
  for (float& v : x.values()) v = q.input.fake_quantize(v);
  Tensor y = output_with_bias(linear, float_input, x, o, q);
  if (q.relu)
    for (float& v : y.values()) v = std::max(v, 0.0f);
  return y;
}

// Multipliers tried for each layer's activation and weight ranges (loss-aware search).
constexpr float kActGrid[] = {0.6f, 0.7f, 0.8f, 0.85f, 0.9f, 0.95f, 1.0f, 1.05f, 1.1f, 1.2f, 1.35f, 1.5f};
constexpr float kWeightGrid[] = {0.8f, 0.9f, 0.95f, 1.0f, 1.05f, 1.1f, 1.2f};
constexpr int kLossAwarePasses = 1;

}  // namespace

QuantPlan plan_quantization(const Model& model, const Tensor& calibration_images,
                            const QuantOptions& options,
                            const std::function<void(size_t, size_t)>& progress) {
  if (calibration_images.dim(0) < 1) throw Error("calibration needs at least one image");
  if (!is_linear_chain(model)) {
    check_options(options, analyze_graph(inference_graph(model)).weighted.size());
    return plan_graph_quantization(model, calibration_images, options, progress);
  }
  const size_t linear_count = count_linear_layers(model);
  check_options(options, linear_count);
  for (const auto* scales : {&options.act_range_scale, &options.weight_range_scale})
    if (!scales->empty() && scales->size() != linear_count)
      throw Error("per-layer range scales name " + std::to_string(scales->size()) +
                  " layers, the model has " + std::to_string(linear_count) + " Linear layers");
  const SingleThreadedEigen single_threaded;
  QuantPlan plan;
  plan.options = options;
  const std::vector<Tensor> float_inputs = collect_linear_inputs(model, calibration_images);
  std::vector<Tensor> quantized_inputs(linear_count);
  quantized_inputs[0] = slice_rows(calibration_images, 0, calibration_images.dim(0));
  // Progress units: each layer of the first plan, then each trial of the loss-aware search.
  const size_t act_trials = std::size(kActGrid) - 1, weight_trials = std::size(kWeightGrid) - 1;
  const size_t later_layers = linear_count - std::min<size_t>(1, linear_count - 1);
  const size_t total =
      linear_count + (options.loss_aware ? kLossAwarePasses * ((linear_count > 1 ? act_trials : 0) +
                                                               later_layers * (act_trials + weight_trials))
                                         : 0);
  size_t done = 0;
  const auto tick = [&] {
    if (progress) progress(++done, total);
  };
  Tensor logits = plan_from(model, float_inputs, options, 0, quantized_inputs, plan, tick);
  if (!options.loss_aware) return plan;

  Activations activations;
  model.forward(calibration_images, activations);
  // The float logits: the output of the last Linear (log_softmax, if any, comes after it).
  const Tensor& reference = activations.outputs[plan.layers.back().layer];
  QuantOptions& o = plan.options;
  if (o.act_range_scale.empty()) o.act_range_scale.assign(linear_count, 1.0f);
  if (o.weight_range_scale.empty()) o.weight_range_scale.assign(linear_count, 1.0f);
  double best_loss = mean_kl(reference, logits);
  QuantPlan best = plan;
  for (int pass = 0; pass < kLossAwarePasses; ++pass) {
    // The first layer is not re-planned: that (784 inputs: output_mse weight ranges and weight
    // rounding against a 784 x 784 Gram matrix) costs most of the time of a plan. Its input range is searched with its
    // weights kept (bias corrected again), the later layers re-planned.
    if (linear_count > 1) {
      const auto& linear = dynamic_cast<const Linear&>(model.layer(best.layers[0].layer));
      Tensor best_input = quantized_inputs[1];
      for (const float m : kActGrid) {
        if (m == 1.0f) continue;
        QuantPlan trial = best;
        quantized_inputs[1] = requantize_input(linear, float_inputs[0], quantized_inputs[0], m, o,
                                               trial.layers[0]);
        const double loss =
            mean_kl(reference, plan_from(model, float_inputs, o, 1, quantized_inputs, trial));
        tick();
        if (loss < best_loss) best_loss = loss, best = std::move(trial), best_input = quantized_inputs[1];
      }
      quantized_inputs[1] = std::move(best_input);
    }
    for (size_t j = std::min<size_t>(1, linear_count - 1); j < linear_count; ++j) {
      for (const bool weights : {false, true}) {
        std::vector<float>& scales = weights ? o.weight_range_scale : o.act_range_scale;
        const float start = scales[j];
        float chosen = start;
        for (const float m : weights ? std::span<const float>(kWeightGrid) : std::span<const float>(kActGrid)) {
          if (m == 1.0f) continue;  // the current point
          scales[j] = start * m;
          QuantPlan trial = best;
          const double loss = mean_kl(reference, plan_from(model, float_inputs, o, j, quantized_inputs, trial));
          tick();
          if (loss < best_loss) best_loss = loss, chosen = scales[j], best = std::move(trial);
        }
        scales[j] = chosen;
        best.options = o;
      }
      // Rejected trials left their own inputs for the later layers: recompute the best plan's.
      plan_from(model, float_inputs, o, j, quantized_inputs, best);
    }
  }
  best.options = o;
  return best;
}

double calibration_loss(const Model& model, const Tensor& calibration_images, const QuantPlan& plan) {
  const SingleThreadedEigen single_threaded;
  Activations activations;
  model.forward(calibration_images, activations);
  Tensor x = slice_rows(calibration_images, 0, calibration_images.dim(0)), y;
  size_t j = 0;
  for (size_t i = 0; i < model.layer_count() && j < plan.layers.size(); ++i) {
    const Layer& layer = model.layer(i);
    if (layer.kind() == "relu") {
      for (float& v : x.values()) v = std::max(v, 0.0f);
      continue;
    }
    if (!dynamic_cast<const Linear*>(&layer)) continue;
    const QuantizedLinearPlan& q = plan.layers[j++];
    for (float& v : x.values()) v = q.input.fake_quantize(v);
    y = multiply_transposed(x, dequantized_weight(q));
    for (int64_t r = 0; r < y.dim(0); ++r)
      for (int64_t c = 0; c < q.out_features; ++c) y[r * q.out_features + c] += q.bias[c];
    x = std::move(y);
  }
  return mean_kl(activations.outputs[plan.layers.back().layer], x);
}

}  // namespace lowbit
