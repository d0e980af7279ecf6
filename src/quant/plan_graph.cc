// Post-training quantization of graph models (CNNs): node by node through the inference graph,
// each weighted layer planned on what the quantized layers before it produce.
#include <algorithm>
#include <cmath>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "quant/calibration.h"
#include "quant/inference_graph.h"
#include "quant/layer_plan.h"
#include "quant/rounding.h"

namespace lowbit {
namespace {

// Rows of a layer's input that weight calibration and rounding see (GPTQ's Hessian, output_mse,
// AdaRound's reconstruction): a conv has one row per output position and image, far more than
// these need, so rows are taken at an even stride. AdaRound iterates over its rows 1000 times.
constexpr int64_t kMaxWeightRows = 8192;
constexpr int64_t kMaxAdaRoundRows = 1024;
// Values an activation range is calibrated on, beyond minmax (which sees them all): an even
// stride through the tensor.
constexpr int64_t kMaxCalibrationValues = int64_t{1} << 20;

// Every stride-th of `values`, at most `limit` of them, in order.
std::vector<float> strided(std::span<const float> values, int64_t limit) {
  const int64_t n = static_cast<int64_t>(values.size());
  const int64_t stride = (n + limit - 1) / limit;
  std::vector<float> out;
  out.reserve(static_cast<size_t>(n / stride + 1));
  for (int64_t i = 0; i < n; i += stride) out.push_back(values[i]);
  return out;
}

// The grid of a stored tensor: its range from the float model's values. output_mse needs the one
// weighted layer that reads the tensor, which a graph tensor need not have: it falls back to mse.
QuantParams calibrate_tensor(const Tensor& float_values, int bits, const QuantOptions& o) {
  const Calibration c = o.calibration == Calibration::output_mse ? Calibration::mse : o.calibration;
  if (c == Calibration::minmax || float_values.size() <= kMaxCalibrationValues)
    return minmax_params(calibrate_range(float_values.values(), bits, c, o.percentile), bits);
  const std::vector<float> sample = strided(float_values.values(), kMaxCalibrationValues);
  return minmax_params(calibrate_range(sample, bits, c, o.percentile), bits);
}

// x: [N, C, H, W] -> rows [R, C * kh * kw] in the weight's (c, kh, kw) order, zero padded: the
// im2col rows of every stride-th output position over all images, at most `limit`.
Tensor conv_rows(const Tensor& x, const Conv2d& conv, int64_t limit) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  const Window2d& win = conv.options().window;
  const auto [oh, ow] = win.output_size(h, w);
  const int64_t positions = n * oh * ow, stride = (positions + limit - 1) / limit;
  const int64_t k = c * win.kernel_h * win.kernel_w;
  Tensor rows({(positions + stride - 1) / stride, k});
  int64_t r = 0;
  for (int64_t p = 0; p < positions; p += stride, ++r) {
    const int64_t image = p / (oh * ow), oy = p / ow % oh, ox = p % ow;
    float* row = rows.data() + r * k;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t ky = 0; ky < win.kernel_h; ++ky)
        for (int64_t kx = 0; kx < win.kernel_w; ++kx) {
          const int64_t y = oy * win.stride_h - win.pad_h + ky, xx = ox * win.stride_w - win.pad_w + kx;
          *row++ = y < 0 || y >= h || xx < 0 || xx >= w ? 0.0f : x[((image * c + ch) * h + y) * w + xx];
        }
  }
  return rows;
}

// A linear layer's input rows [R, in]: every stride-th image, at most `limit`.
Tensor linear_rows(const Tensor& x, int64_t limit) {
  const int64_t n = x.dim(0), in = x.row_size(), stride = (n + limit - 1) / limit;
  Tensor rows({(n + stride - 1) / stride, in});
  for (int64_t i = 0, r = 0; i < n; i += stride, ++r)
    std::copy_n(x.data() + i * in, in, rows.data() + r * in);
  return rows;
}

Tensor layer_rows(const Layer& layer, const Tensor& x, int64_t limit) {
  const auto* conv = dynamic_cast<const Conv2d*>(&layer);
  return conv ? conv_rows(x, *conv, limit) : linear_rows(x, limit);
}

Tensor run_node(const Layer& layer, std::vector<const Tensor*> inputs) {
  Tensor y;
  SavedTensors saved;
  layer.forward_node(inputs, y, ForwardMode{}, saved);
  return y;
}

// The weight [out, in] (a conv's [out, C, kh, kw] read so) and bias [out] of a weighted layer.
Tensor& weight_of(Layer& layer) { return layer.parameters()[0]; }
Tensor& bias_of(Layer& layer) { return layer.parameters()[1]; }

// Plans weighted node `node`: weight grids and codes from its quantized input `qx` (and float
// input `fx`, for AdaRound); the dequantized weights and the (corrected) bias go into `sim`'s
// layer. Returns that layer's output on qx, before any fused ReLU. float_out: the float model's.
Tensor plan_weighted(const Model& inference, Model& sim, size_t node, const Tensor& qx, const Tensor& fx,
                     const Tensor& float_out, int weight_bits, const QuantOptions& o, QuantizedLinearPlan& q) {
  const Layer& layer = inference.layer(node);
  const Tensor& w = layer.parameters()[0];
  q.out_features = w.dim(0);
  q.in_features = w.row_size();
  const Tensor weight({q.out_features, q.in_features}, std::vector<float>(w.data(), w.data() + w.size()));
  const Tensor rows = layer_rows(layer, qx, kMaxWeightRows);
  q.weight = weight_params(weight, weight_bits, o, rows);
  switch (o.rounding) {
    case Rounding::nearest: q.weight_codes = round_to_nearest(weight, q.weight); break;
    case Rounding::gptq: q.weight_codes = round_with_gptq(weight, q.weight, rows); break;
    case Rounding::adaround:
      q.weight_codes = round_with_adaround(weight, q.weight, layer_rows(layer, qx, kMaxAdaRoundRows),
                                           layer_rows(layer, fx, kMaxAdaRoundRows));
      break;
  }
  Layer& simulated = sim.layer(node);
  const Tensor dequantized = dequantized_weight(q);
  std::copy_n(dequantized.data(), dequantized.size(), weight_of(simulated).data());
  const Tensor& bias = bias_of(simulated);
  q.bias.assign(bias.data(), bias.data() + q.out_features);
  Tensor y = run_node(simulated, {&qx});
  if (o.bias_correction) {
    // Per output channel, the mean of (quantized - float) over images and positions, in order.
    const int64_t n = y.dim(0), channels = q.out_features, area = y.row_size() / channels;
    std::vector<double> sum(channels, 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < channels; ++c)
        for (int64_t a = 0; a < area; ++a) {
          const int64_t at = (i * channels + c) * area + a;
          sum[c] += double{y[at]} - float_out[at];
        }
    for (int64_t c = 0; c < channels; ++c) {
      const float error = static_cast<float>(sum[c] / std::max<int64_t>(n * area, 1));
      q.bias[c] -= error;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t a = 0; a < area; ++a) y[(i * channels + c) * area + a] -= error;
    }
    std::copy(q.bias.begin(), q.bias.end(), bias_of(simulated).data());
  }
  return y;
}

// The fraction of rows whose largest value is in the same column in a and b ([rows, ...]).
double top1_agreement_of(const Tensor& a, const Tensor& b) {
  const int64_t rows = a.dim(0), cols = a.row_size();
  int64_t same = 0;
  for (int64_t r = 0; r < rows; ++r)
    same += std::max_element(a.data() + r * cols, a.data() + (r + 1) * cols) - (a.data() + r * cols) ==
            std::max_element(b.data() + r * cols, b.data() + (r + 1) * cols) - (b.data() + r * cols);
  return static_cast<double>(same) / static_cast<double>(std::max<int64_t>(rows, 1));
}

// Two standard errors of a fraction p measured on n images, at least two images' worth.
double bias_correction_margin(double p, int64_t n) {
  const double count = static_cast<double>(std::max<int64_t>(n, 1));
  return std::max(2.0 * std::sqrt(p * (1.0 - p) / count), 2.0 / count);
}

// One pass through the graph with options `o`; *top1_agreement: the fraction of the calibration
// images where the simulated logits pick the float model's class.
QuantPlan plan_graph_once(const Model& model, const Tensor& calibration_images, const QuantOptions& o,
                          const std::function<void(size_t, size_t)>& progress, double* top1_agreement) {
  const Model inference = inference_graph(model);
  const QuantGraph g = analyze_graph(inference);
  const std::vector<int> bits = stored_bits(inference, g, o);
  const size_t count = inference.node_count();

  Shape image_shape = {calibration_images.dim(0)};
  for (int64_t d : inference.input_shape()) image_shape.push_back(d);
  const Tensor images(image_shape, std::vector<float>(calibration_images.data(),
                                                      calibration_images.data() + calibration_images.size()));
  Activations float_run;
  inference.forward(images, float_run);
  std::vector<Tensor>& f = float_run.outputs;
  // Each tensor is dropped after its last reader.
  std::vector<int> readers_left(count, 0);
  for (size_t i = 0; i < count; ++i)
    for (int input : inference.node_inputs(i))
      if (input != Model::kModelInput) ++readers_left[input];

  QuantPlan plan;
  plan.options = o;
  plan.graph = true;
  plan.node_output.resize(count);
  plan.input = calibrate_tensor(images, bits[0], o);
  Tensor quantized_input = images;
  for (float& v : quantized_input.values()) v = plan.input.fake_quantize(v);
  std::vector<Tensor> q(count);  // per node: its output in the simulated quantized model
  Model sim = inference.clone();
  auto quantized = [&](int t) -> const Tensor& { return t == Model::kModelInput ? quantized_input : q[t]; };
  auto float_value = [&](int t) -> const Tensor& { return t == Model::kModelInput ? images : f[t]; };
  auto grid_of = [&](int input) -> const QuantParams& {
    const int t = g.grid_of(input);
    return t == Model::kModelInput ? plan.input : *plan.node_output[t];
  };
  // The output y of node i, through its fused ReLU, onto the grid calibrated on the float model.
  auto store = [&](size_t i, Tensor y) {
    const int out = g.stored_as[i];
    if (out != static_cast<int>(i))
      for (float& v : y.values()) v = std::max(v, 0.0f);
    const QuantParams p = calibrate_tensor(f[out], bits[out + 1], o);
    for (float& v : y.values()) v = p.fake_quantize(v);
    plan.node_output[out] = p;
    q[out] = std::move(y);
  };

  for (size_t i = 0; i < count; ++i) {
    const Layer& layer = inference.layer(i);
    const std::vector<int>& inputs = inference.node_inputs(i);
    std::vector<const Tensor*> in;
    for (int t : inputs) in.push_back(&quantized(t));
    switch (g.role[i]) {
      case QuantRole::weighted:
      case QuantRole::logits: {
        const int j = g.weighted_index[i];
        QuantizedLinearPlan lp;
        lp.layer = i;
        lp.input = grid_of(inputs[0]);
        lp.relu = g.role[i] == QuantRole::weighted && g.stored_as[i] != static_cast<int>(i);
        if (const auto* conv = dynamic_cast<const Conv2d*>(&layer)) {
          lp.conv = true;
          lp.conv_input = inference.node_input_shapes(i)[0];
          lp.window = conv->options().window;
        }
        const int weight_bits = o.layer_weight_bits.empty() ? o.weight_bits : o.layer_weight_bits[j];
        Tensor y = plan_weighted(inference, sim, i, *in[0], float_value(inputs[0]), f[i], weight_bits, o, lp);
        if (g.role[i] == QuantRole::logits) {
          *top1_agreement = top1_agreement_of(f[i], y);
          q[i] = std::move(y);
        } else {
          store(i, std::move(y));
        }
        plan.layers.push_back(std::move(lp));
        if (progress) progress(plan.layers.size(), g.weighted.size());
        break;
      }
      case QuantRole::add:
      case QuantRole::avg_pool: store(i, run_node(sim.layer(i), in)); break;
      case QuantRole::same_grid: q[i] = run_node(sim.layer(i), in); break;
      case QuantRole::fused_relu:    // its producer stored it
      case QuantRole::after_logits:  // the engine's output is the logits
        break;
    }
    for (int t : inputs)
      if (t != Model::kModelInput && --readers_left[t] == 0) q[t] = Tensor(), f[t] = Tensor();
  }
  return plan;
}

}  // namespace

QuantPlan plan_graph_quantization(const Model& model, const Tensor& calibration_images,
                                  const QuantOptions& o,
                                  const std::function<void(size_t, size_t)>& progress) {
  if (o.loss_aware)
    throw Error("the loss_aware preset handles chains of Linear layers only so far; use \"best\" for CNNs");
  if (!o.act_range_scale.empty() || !o.weight_range_scale.empty())
    throw Error("per-layer range scales apply to chains of Linear layers only");
  const SingleThreadedEigen single_threaded;
  double top1 = 0;
  if (!o.bias_correction) return plan_graph_once(model, calibration_images, o, progress, &top1);
  // Bias correction (the mean output error per channel on the calibration images, folded into
  // the bias) helps a CNN at 4 bits and can wreck it below: on resnet20 (89.13 % float) `best`
  // gave 85.92 % at 4 bits with it and 82.38 % without, but 41.49 % at 3 bits with it and 68.27 %
  // without (docs/quantization.md). So the plan is made both ways, and the correction dropped
  // only when the plan without it clearly picks the float model's class more often on the
  // calibration images: by more than two standard errors of that fraction. (The logits' KL from
  // the float model was tried first: it preferred no correction at 4-6 bits, where the test set
  // preferred it.)
  const auto half = [&](size_t pass) {
    return [&progress, pass](size_t done, size_t total) {
      if (progress) progress(pass * total + done, 2 * total);
    };
  };
  QuantPlan corrected = plan_graph_once(model, calibration_images, o, half(0), &top1);
  QuantOptions plain_options = o;
  plain_options.bias_correction = false;
  double plain_top1 = 0;
  QuantPlan plain = plan_graph_once(model, calibration_images, plain_options, half(1), &plain_top1);
  return plain_top1 > top1 + bias_correction_margin(top1, calibration_images.dim(0)) ? plain : corrected;
}

}  // namespace lowbit
