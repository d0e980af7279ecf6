// Quantization-aware training: fake-quantized forward, straight-through backward, LSQ steps.
#include "lowbit/qat.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "train/adam.h"
#include "train/batching.h"
#include "util/progress.h"

namespace lowbit {

int32_t LsqQuantizer::code(float v) const {
  if (sign) return v >= 0.0f ? 1 : 0;
  const float q = std::clamp(std::nearbyint(v / step), static_cast<float>(-negative),
                             static_cast<float>(positive));
  return static_cast<int32_t>(q) + negative;
}

bool LsqQuantizer::passes(float v) const {
  const float r = v / step;
  return r > static_cast<float>(-negative) && r < static_cast<float>(positive);
}

float LsqQuantizer::step_gradient(float v) const {
  const float r = v / step;
  if (r <= static_cast<float>(-negative)) return static_cast<float>(-negative);
  if (r >= static_cast<float>(positive)) return static_cast<float>(positive);
  return (sign ? (r >= 0.0f ? 1.0f : -1.0f) : std::nearbyint(r)) - r;
}

QuantParams LsqQuantizer::params() const {
  if (sign) return sign_params(step);
  QuantParams p;
  p.scale = step;
  p.zero_point = negative;
  p.bits = bits;
  return p;
}

LsqQuantizer weight_quantizer(int bits, bool ternary) {
  if (bits < 1 || bits > 8) throw Error("weight bits must be in 1..8");
  if (ternary) {
    if (bits != 2) throw Error("ternary weights need 2-bit codes");
    return {1.0f, 1, 1, 2, false};
  }
  if (bits == 1) return {1.0f, 1, 1, 1, true};
  const int32_t half = 1 << (bits - 1);
  return {1.0f, half, half - 1, bits, false};
}

float lsq_gradient_scale(int64_t count, const LsqQuantizer& q) {
  const double levels = std::max({q.negative, q.positive, 1});
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(count) * levels));
}

namespace {

constexpr float kMinStep = 1e-8f;

// Sets q.step to the candidate with the lowest quantization MSE on `values`: LSQ's
// 2 mean|v| / sqrt(Qp), or a fraction k/20 of the step that covers the whole range.
// LSQ's own init clips hard at high bit widths; the range fractions cover those.
double fit_step(std::span<const float> values, LsqQuantizer& q) {
  double sum_abs = 0;
  float lo = 0, hi = 0;
  for (float v : values) {
    sum_abs += std::fabs(v);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const double levels = std::max({q.negative, q.positive, 1});
  std::vector<float> candidates;
  if (!values.empty())
    candidates.push_back(static_cast<float>(2 * sum_abs / values.size() / std::sqrt(levels)));
  // Sign-binary: mean |v| is the least-squares scale (XNOR-Net's alpha, Rastegari et al. 2016).
  if (q.sign && !values.empty()) candidates.push_back(static_cast<float>(sum_abs / values.size()));
  float cover = 0;
  if (q.positive > 0) cover = std::max(cover, hi / q.positive);
  if (q.negative > 0) cover = std::max(cover, -lo / q.negative);
  for (int k = 1; k <= 20; ++k) candidates.push_back(cover * k / 20);
  double best_error = INFINITY;
  float best = 1.0f;
  for (float s : candidates) {
    if (!(s > kMinStep)) continue;
    LsqQuantizer t = q;
    t.step = s;
    double error = 0;
    for (float v : values) error += (t.fake_quantize(v) - v) * double{t.fake_quantize(v) - v};
    if (error < best_error) best_error = error, best = s;
  }
  q.step = best;
  return best_error;
}

// One quantized Linear: where it is, its quantizers and its learned steps as tensors for Adam.
struct QatLinear {
  size_t layer = 0;
  size_t first_parameter = 0;  // its weight's index in Model::parameters(); bias follows
  bool relu = false;
  LsqQuantizer input;
  std::vector<LsqQuantizer> weight;  // per output channel
  Tensor input_step{Shape{1}};
  Tensor weight_step;                // [out]
  float input_gradient_scale = 1, weight_gradient_scale = 1;
};

struct Shard {
  Tensor x, d_output, scratch[2];
  std::vector<Tensor> outputs, quantized_inputs;  // per layer
  std::vector<Tensor> gradients;                  // per model parameter
  std::vector<float> input_step_gradients;        // per QatLinear, before the gradient scale
  double loss = 0;
  int64_t correct = 0;
};

// The model with its Linear weights replaced by their fake-quantized latent weights.
void form_quantized_weights(const Model& latent, std::vector<QatLinear>& linears, Model& working) {
  for (QatLinear& q : linears) {
    const auto& from = dynamic_cast<const Linear&>(latent.layer(q.layer));
    auto& to = dynamic_cast<Linear&>(working.layer(q.layer));
    const int64_t in = from.in_features();
    for (int64_t o = 0; o < from.out_features(); ++o)
      for (int64_t k = 0; k < in; ++k)
        to.weight()[o * in + k] = q.weight[o].fake_quantize(from.weight()[o * in + k]);
    std::memcpy(to.bias().data(), from.bias().data(), sizeof(float) * from.out_features());
  }
}

// Forward through `working` with each Linear's input fake-quantized; returns log-probabilities.
// The layers' own forward passes, which sum in a fixed order (nn/gemm.h), as training does.
const Tensor& forward_shard(const Model& working, const std::vector<const QatLinear*>& at_layer,
                            Shard& s) {
  for (size_t i = 0; i < working.layer_count(); ++i) {
    const Tensor& input = i == 0 ? s.x : s.outputs[i - 1];
    if (const QatLinear* q = at_layer[i]) {
      Tensor& quantized = s.quantized_inputs[i];
      quantized.resize(input.shape());
      for (int64_t j = 0; j < input.size(); ++j) quantized[j] = q->input.fake_quantize(input[j]);
      working.layer(i).forward(quantized, s.outputs[i]);
    } else {
      working.layer(i).forward(input, s.outputs[i]);
    }
  }
  return s.outputs.back();
}

// Backward of forward_shard: parameter gradients w.r.t. the quantized weights, the STE through
// each input quantizer, and the input steps' LSQ gradients.
void backward_shard(const Model& working, const std::vector<const QatLinear*>& at_layer,
                    const std::vector<size_t>& first_parameter, const std::vector<int>& linear_index,
                    Shard& s) {
  const Tensor* dy = &s.d_output;
  for (size_t i = working.layer_count(); i-- > 0;) {
    const QatLinear* q = at_layer[i];
    const Tensor& raw = i == 0 ? s.x : s.outputs[i - 1];
    const Tensor& input = q ? s.quantized_inputs[i] : raw;
    Tensor* dx = dy == &s.scratch[0] ? &s.scratch[1] : &s.scratch[0];
    const Layer& layer = working.layer(i);
    std::span<Tensor> grads(s.gradients.data() + first_parameter[i], layer.parameters().size());
    // The first layer's input gradient is needed only for its input step.
    if (q || i > 0) layer.backward(input, s.outputs[i], *dy, dx, grads);
    if (q) {
      float step_gradient = 0;
      for (int64_t j = 0; j < raw.size(); ++j) {
        step_gradient += (*dx)[j] * q->input.step_gradient(raw[j]);
        if (!q->input.passes(raw[j])) (*dx)[j] = 0;
      }
      s.input_step_gradients[linear_index[i]] += step_gradient;
    }
    dy = dx;
  }
}

// The float model on x, layer by layer; visit(input) sees each Linear's input.
template <typename Visit>
Tensor float_forward(const Model& model, const Tensor& x, Visit&& visit) {
  Tensor current = x, next;
  for (size_t i = 0; i < model.layer_count(); ++i) {
    const Layer& layer = model.layer(i);
    if (dynamic_cast<const Linear*>(&layer)) visit(current);
    layer.forward(current, next);
    std::swap(current, next);
  }
  return current;
}

// Per Linear, its input on the calibration images through the float model (for the initial
// steps, which must not depend on the thread count either).
std::vector<Tensor> float_linear_inputs(const Model& model, const Tensor& calibration) {
  std::vector<Tensor> inputs;
  float_forward(model, slice_rows(calibration, 0, calibration.dim(0)),
                [&inputs](const Tensor& input) { inputs.push_back(input); });
  return inputs;
}

// The float teacher's class probabilities on every image: [count, classes]. Rows are
// independent, so the chunks may run on any thread.
Tensor teacher_probabilities(const Model& model, const Tensor& images) {
  const int64_t count = images.dim(0), chunk = 1024, chunks = (count + chunk - 1) / chunk;
  std::vector<Tensor> parts(chunks);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c)
    parts[c] = float_forward(model, slice_rows(images, c * chunk, std::min(chunk, count - c * chunk)),
                             [](const Tensor&) {});
  const int64_t classes = parts.front().row_size();
  Tensor probs({count, classes});
  for (int64_t c = 0; c < chunks; ++c)
    for (int64_t j = 0; j < parts[c].size(); ++j) probs[c * chunk * classes + j] = std::exp(parts[c][j]);
  return probs;
}

// Turns the NLL gradient d_output (-scale at each label) into that of
// (1 - weight) NLL + weight KL(teacher || student); returns the loss summed over the rows.
// teacher: [count, classes], rows picked by order[first + r].
double add_distillation(const Tensor& log_probs, const Tensor& teacher,
                        const std::vector<int64_t>& order, int64_t first, double nll_loss,
                        float weight, float scale, Tensor& d_output) {
  const int64_t n = log_probs.dim(0), classes = log_probs.row_size();
  double kl = 0;
  for (int64_t r = 0; r < n; ++r) {
    const float* t = teacher.data() + order[first + r] * classes;
    for (int64_t j = 0; j < classes; ++j) {
      const int64_t at = r * classes + j;
      d_output[at] = (1.0f - weight) * d_output[at] - weight * scale * t[j];
      if (t[j] > 0.0f) kl += t[j] * (std::log(double{t[j]}) - log_probs[at]);
    }
  }
  return (1.0 - weight) * nll_loss + weight * kl;
}

// Quantizers and their initial steps, from the float weights and the calibration inputs.
std::vector<QatLinear> init_quantizers(const Model& model, const Tensor& calibration,
                                       const QatOptions& options) {
  check_linear_chain(model, "", "QAT");
  const std::vector<Tensor> inputs = float_linear_inputs(model, calibration);
  std::vector<QatLinear> linears;
  size_t parameter = 0;
  for (size_t i = 0; i < model.layer_count(); ++i) {
    const Layer& layer = model.layer(i);
    const auto* linear = dynamic_cast<const Linear*>(&layer);
    if (!linear) {
      if (layer.kind() != "relu" && layer.kind() != "log_softmax")
        throw Error("cannot quantize layer kind \"" + layer.kind() + "\"");
      continue;
    }
    QatLinear q;
    q.layer = i;
    q.first_parameter = parameter;
    q.relu = i + 1 < model.layer_count() && model.layer(i + 1).kind() == "relu";
    const Tensor& input = inputs[linears.size()];
    // After ReLU the input is unsigned (Qn = 0). The first input (normalized pixels, min < 0)
    // keeps the min/max zero point and learns only its step.
    const int32_t zero =
        linears.empty() ? minmax_params(range_of(input.values()), options.act_bits).zero_point : 0;
    q.input = {1.0f, zero, (1 << options.act_bits) - 1 - zero, options.act_bits, false};
    fit_step(input.values(), q.input);
    q.input_step[0] = q.input.step;
    q.input_gradient_scale = lsq_gradient_scale(linear->in_features(), q.input);

    const int64_t in = linear->in_features(), out = linear->out_features();
    q.weight_step = Tensor(Shape{out});
    for (int64_t o = 0; o < out; ++o) {
      std::span<const float> row(linear->weight().data() + o * in, in);
      LsqQuantizer w = weight_quantizer(options.weight_bits, options.ternary);
      fit_step(row, w);
      q.weight.push_back(w);
      q.weight_step[o] = w.step;
    }
    q.weight_gradient_scale = lsq_gradient_scale(in, q.weight.front());
    parameter += layer.parameters().size();
    linears.push_back(std::move(q));
  }
  if (linears.empty()) throw Error("model has no Linear layer to quantize");
  return linears;
}

QuantPlan export_plan(const Model& latent, const std::vector<QatLinear>& linears,
                      const QatOptions& options) {
  QuantPlan plan;
  plan.options.weight_bits = options.weight_bits;
  plan.options.act_bits = options.act_bits;
  plan.options.method = options.ternary ? "lsq-qat-ternary" : "lsq-qat";
  for (const QatLinear& q : linears) {
    const auto& linear = dynamic_cast<const Linear&>(latent.layer(q.layer));
    QuantizedLinearPlan p;
    p.layer = q.layer;
    p.in_features = linear.in_features();
    p.out_features = linear.out_features();
    p.relu = q.relu;
    p.input = q.input.params();
    for (const LsqQuantizer& w : q.weight) p.weight.push_back(w.params());
    p.weight_codes.resize(linear.weight().size());
    for (int64_t o = 0; o < p.out_features; ++o)
      for (int64_t k = 0; k < p.in_features; ++k) {
        const int64_t at = o * p.in_features + k;
        p.weight_codes[at] = static_cast<uint8_t>(q.weight[o].code(linear.weight()[at]));
      }
    p.bias.assign(linear.bias().data(), linear.bias().data() + p.out_features);
    plan.layers.push_back(std::move(p));
  }
  return plan;
}

}  // namespace

QatResult quantization_aware_training(const Model& float_model, const Tensor& images,
                                      std::span<const uint8_t> labels, const QatOptions& options) {
  if (images.rank() < 2 || images.dim(0) != static_cast<int64_t>(labels.size()) ||
      images.row_size() != float_model.input_size())
    throw Error("QAT images and labels do not match the model");
  check_labels(shape_numel(float_model.output_shape()), labels);
  if (options.act_bits < 1 || options.act_bits > 8) throw Error("activation bits must be in 1..8");
  if (options.epochs < 0 || options.batch_size <= 0) throw Error("bad epochs or batch size");
  const int64_t count = images.dim(0);

  QatResult result{float_model.clone(), {}, {}};
  Model& latent = result.model;
  if (!(options.distill >= 0.0f && options.distill <= 1.0f))
    throw Error("distillation weight must be in [0, 1]");
  if (!(options.sign_ste_range > 0.0f)) throw Error("sign STE range must be positive");
  std::vector<QatLinear> linears = init_quantizers(
      latent, slice_rows(images, 0, std::min(options.init_count, count)), options);
  const Tensor teacher =
      options.distill > 0.0f ? teacher_probabilities(float_model, images) : Tensor{};
  Model working = latent.clone();

  std::vector<const QatLinear*> at_layer(latent.layer_count(), nullptr);
  std::vector<int> linear_index(latent.layer_count(), -1);
  std::vector<size_t> first_parameter(latent.layer_count(), 0);
  for (size_t i = 0, p = 0; i < latent.layer_count(); ++i) {
    first_parameter[i] = p;
    p += latent.layer(i).parameters().size();
  }
  for (size_t j = 0; j < linears.size(); ++j) {
    at_layer[linears[j].layer] = &linears[j];
    linear_index[linears[j].layer] = static_cast<int>(j);
  }

  std::vector<Tensor*> params = latent.parameters();
  Adam adam(params, options.learning_rate, 0.9f, 0.999f, 1e-8f);
  std::vector<Tensor*> steps;
  for (QatLinear& q : linears) {
    steps.push_back(&q.input_step);
    steps.push_back(&q.weight_step);
  }
  Adam step_adam(steps, options.step_learning_rate, 0.9f, 0.999f, 1e-8f);
  std::vector<Tensor> total = latent.zero_gradients(), step_total;
  for (Tensor* s : steps) step_total.emplace_back(s->shape());

  const int64_t batches = (count + options.batch_size - 1) / options.batch_size;
  std::vector<Shard> shards(shard_count(options.batch_size));
  for (Shard& s : shards) {
    s.gradients = latent.zero_gradients();
    s.outputs.resize(latent.layer_count());
    s.quantized_inputs.resize(latent.layer_count());
    s.input_step_gradients.assign(linears.size(), 0.0f);
  }

  std::mt19937_64 rng(options.seed);
  std::vector<int64_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  Progress progress(options.epochs * batches, options.progress);
  const int64_t total_steps = options.epochs * batches;

  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    shuffle(order, rng);
    double epoch_loss = 0;
    int64_t epoch_correct = 0;
    for (int64_t b = 0; b < batches; ++b) {
      // Linear decay to zero: the last steps settle the weights on their quantization levels.
      const float progress_fraction =
          static_cast<float>((epoch - 1) * batches + b) / static_cast<float>(total_steps);
      adam.set_learning_rate(options.learning_rate * (1.0f - progress_fraction));
      step_adam.set_learning_rate(options.step_learning_rate * (1.0f - progress_fraction));
      form_quantized_weights(latent, linears, working);

      const int64_t begin = b * options.batch_size;
      const int64_t rows = std::min(options.batch_size, count - begin);
      const int64_t used = shard_count(rows);
      const float scale = 1.0f / static_cast<float>(rows);
      for_each_shard(begin, rows, [&](int64_t si, int64_t first, int64_t n) {
        Shard& s = shards[si];
        std::vector<uint8_t> shard_labels;
        gather(images, labels, order, first, n, s.x, shard_labels);
        const Tensor& log_probs = forward_shard(working, at_layer, s);
        s.correct = 0;
        s.loss = nll(log_probs, shard_labels.data(), &s.d_output, scale, &s.correct);
        if (options.distill > 0.0f)
          s.loss = add_distillation(log_probs, teacher, order, first, s.loss, options.distill, scale,
                                    s.d_output);
        for (Tensor& g : s.gradients) g.fill(0.0f);
        std::fill(s.input_step_gradients.begin(), s.input_step_gradients.end(), 0.0f);
        backward_shard(working, at_layer, first_parameter, linear_index, s);
      });
      sum_shard_gradients(shards, used, total);
      for (size_t j = 0; j < linears.size(); ++j) {
        QatLinear& q = linears[j];
        float input_gradient = 0;
        for (int64_t si = 0; si < used; ++si) input_gradient += shards[si].input_step_gradients[j];
        step_total[2 * j][0] = input_gradient * q.input_gradient_scale;
        // The weight gradient is w.r.t. the quantized weights: STE to the latent weights, and
        // LSQ eq. 3 for each channel's step.
        const auto& linear = dynamic_cast<const Linear&>(latent.layer(q.layer));
        const int64_t in = linear.in_features();
        Tensor& dw = total[q.first_parameter];
        for (int64_t o = 0; o < linear.out_features(); ++o) {
          float step_gradient = 0;
          for (int64_t k = 0; k < in; ++k) {
            const float w = linear.weight()[o * in + k];
            step_gradient += dw[o * in + k] * q.weight[o].step_gradient(w);
            // Sign-binary: a wider STE window than LSQ's |w| < s (docs/qat.md, measured).
            const bool through = q.weight[o].sign
                                     ? std::fabs(w) < options.sign_ste_range * q.weight[o].step
                                     : q.weight[o].passes(w);
            if (!through) dw[o * in + k] = 0;
          }
          step_total[2 * j + 1][o] = step_gradient * q.weight_gradient_scale;
        }
      }
      adam.step(total);
      step_adam.step(step_total);
      for (QatLinear& q : linears) {
        q.input.step = q.input_step[0] = std::max(q.input_step[0], kMinStep);
        for (size_t o = 0; o < q.weight.size(); ++o)
          q.weight[o].step = q.weight_step[o] = std::max(q.weight_step[o], kMinStep);
      }
      for (int64_t si = 0; si < used; ++si) {
        epoch_loss += shards[si].loss;
        epoch_correct += shards[si].correct;
      }
      char status[96];
      std::snprintf(status, sizeof status, "qat epoch %d/%d loss %.4f", epoch, options.epochs,
                    epoch_loss / static_cast<double>(begin + rows));
      progress.update((epoch - 1) * batches + b + 1, status);
    }
    EpochStats stats;
    stats.epoch = epoch;
    stats.loss = epoch_loss / static_cast<double>(count);
    stats.train_accuracy = static_cast<double>(epoch_correct) / static_cast<double>(count);
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.history.push_back(stats);
    char text[128];
    std::snprintf(text, sizeof text, "qat epoch %d/%d  loss %.4f  train accuracy %.2f%%  %.2fs",
                  epoch, options.epochs, stats.loss, 100 * stats.train_accuracy, stats.seconds);
    progress.line(text);
  }
  progress.finish();
  result.plan = export_plan(latent, linears, options);
  return result;
}

}  // namespace lowbit
