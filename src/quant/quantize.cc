// Post-training quantization: calibration, weight rounding and bias correction, layer by layer.
#include "lowbit/quantize.h"

#include <algorithm>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/train.h"
#include "nn/eigen_view.h"
#include "quant/calibration.h"
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

size_t count_linear_layers(const Model& model) {
  size_t count = 0;
  for (size_t i = 0; i < model.layer_count(); ++i) {
    const Layer& layer = model.layer(i);
    if (dynamic_cast<const Linear*>(&layer)) {
      ++count;
    } else if (layer.kind() != "relu" && layer.kind() != "log_softmax") {
      throw Error("cannot quantize layer kind \"" + layer.kind() + "\"");
    }
  }
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

Tensor dequantized_weight(const QuantizedLinearPlan& q) {
  Tensor w({q.out_features, q.in_features});
  for (int64_t o = 0; o < q.out_features; ++o)
    for (int64_t k = 0; k < q.in_features; ++k) {
      const int64_t at = o * q.in_features + k;
      w[at] = q.weight_params(o).dequantize(q.weight_codes[at]);
    }
  return w;
}

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

// Quantizes one Linear. `float_input` is what it sees in the float model, `quantized_input` what
// it sees with the earlier layers already quantized; returns the layer's quantized output.
Tensor quantize_linear(const Linear& linear, const Tensor& float_input, const Tensor& quantized_input,
                       int weight_bits, int act_bits, const QuantOptions& o,
                       QuantizedLinearPlan& q) {
  q.in_features = linear.in_features();
  q.out_features = linear.out_features();
  q.input = minmax_params(
      o.calibration == Calibration::output_mse
          ? output_mse_range(float_input, quantized_input, linear.weight(), act_bits)
          : calibrate_range(float_input.values(), act_bits, o.calibration, o.percentile),
      act_bits);
  Tensor x = quantized_input;
  for (float& v : x.values()) v = q.input.fake_quantize(v);
  q.weight = weight_params(linear.weight(), weight_bits, o, x);
  q.weight_codes = o.rounding == Rounding::gptq ? round_with_gptq(linear.weight(), q.weight, x)
                                                : round_to_nearest(linear.weight(), q.weight);
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

// Eigen picks its GEMM blocking, and so its summation order, from the thread count; one thread
// for the whole plan keeps the plan independent of --threads.
class SingleThreadedEigen {
 public:
  SingleThreadedEigen() : saved_(Eigen::nbThreads()) { Eigen::setNbThreads(1); }
  ~SingleThreadedEigen() { Eigen::setNbThreads(saved_); }
  SingleThreadedEigen(const SingleThreadedEigen&) = delete;
  SingleThreadedEigen& operator=(const SingleThreadedEigen&) = delete;

 private:
  int saved_;
};

}  // namespace

std::vector<std::string> quantization_methods() {
  return {"minmax", "percentile", "mse", "kl", "mse_pc", "gptq", "best"};
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
  } else if (method == "mse_pc" || method == "gptq" || method == "best") {
    o.calibration = o.weight_calibration = Calibration::mse;
    if (method == "best") o.calibration = o.weight_calibration = Calibration::output_mse;
    o.per_channel = true;
    if (method != "mse_pc") o.rounding = Rounding::gptq;
    o.bias_correction = method == "best";
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
  throw Error("unknown rounding \"" + name + "\" (nearest, gptq)");
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

QuantPlan plan_quantization(const Model& model, const Tensor& calibration_images,
                            const QuantOptions& options) {
  if (calibration_images.dim(0) < 1) throw Error("calibration needs at least one image");
  check_options(options, count_linear_layers(model));
  const SingleThreadedEigen single_threaded;
  QuantPlan plan;
  plan.options = options;
  const std::vector<Tensor> float_inputs = collect_linear_inputs(model, calibration_images);
  Tensor quantized = slice_rows(calibration_images, 0, calibration_images.dim(0));
  for (size_t i = 0; i < model.layer_count(); ++i) {
    const Layer& layer = model.layer(i);
    if (layer.kind() == "relu") {
      for (float& v : quantized.values()) v = std::max(v, 0.0f);
      continue;
    }
    const auto* linear = dynamic_cast<const Linear*>(&layer);
    if (!linear) continue;  // log_softmax: the engine's logits come before it
    const size_t j = plan.layers.size();
    QuantizedLinearPlan q;
    q.layer = i;
    q.relu = i + 1 < model.layer_count() && model.layer(i + 1).kind() == "relu";
    quantized = quantize_linear(*linear, float_inputs[j], quantized,
                                layer_bits(options.layer_weight_bits, options.weight_bits, j),
                                layer_bits(options.layer_act_bits, options.act_bits, j), options, q);
    plan.layers.push_back(std::move(q));
  }
  return plan;
}

}  // namespace lowbit
