// Batch normalization over channels: batch statistics in training, running statistics in evaluation.
#include <cmath>

#include "lowbit/error.h"
#include "lowbit/layers.h"

namespace lowbit {
namespace {

// x: [batch, C, spatial...] seen as batch x C planes of `plane` values each.
struct Planes {
  int64_t batch, channels, plane;
};

Planes planes_of(const Tensor& x, const Shape& input) {
  const int64_t per_sample = shape_numel(input);
  if (x.row_size() != per_sample)
    throw Error("batch_norm expects " + shape_string(input) + " inputs, got " + shape_string(x.shape()));
  return {x.dim(0), input[0], per_sample / input[0]};
}

// Sums in kLanes double accumulators, value i of a plane into lane i % kLanes, the lanes then
// added in order: an order fixed by the shape, as a single running sum is, but one the compiler
// can vectorize (it may not reorder a single sum).
constexpr int64_t kLanes = 8;
using Lanes = double[kLanes];

double lanes_total(const Lanes& lanes) {
  double total = 0;
  for (int64_t l = 0; l < kLanes; ++l) total += lanes[l];
  return total;
}

// lanes[i % kLanes] += term(i) for i in [0, size).
template <typename Term>
void add_into_lanes(Lanes& lanes, int64_t size, Term&& term) {
  int64_t i = 0;
  for (; i + kLanes <= size; i += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] += term(i + l);
  for (; i < size; ++i) lanes[i % kLanes] += term(i);
}

float inverse_std(float variance, float epsilon) {
  return static_cast<float>(1.0 / std::sqrt(double{variance} + epsilon));
}

}  // namespace

BatchNorm2d::BatchNorm2d(const Shape& input, float epsilon, float momentum)
    : input_(input), epsilon_(epsilon), momentum_(momentum) {
  if (input.empty()) throw Error("batch_norm needs an input with channels");
  if (!(epsilon > 0.0f) || !(epsilon < 1.0f)) throw Error("batch_norm epsilon must be in (0, 1)");
  if (!(momentum >= 0.0f) || !(momentum <= 1.0f)) throw Error("batch_norm momentum must be in [0, 1]");
  for (int i = 0; i < 2; ++i) params_.emplace_back(Shape{input[0]});
  for (int i = 0; i < 2; ++i) buffers_.emplace_back(Shape{input[0]});
  std::mt19937_64 unused;
  init(unused);
}

nlohmann::json BatchNorm2d::config() const {
  return {{"epsilon", epsilon_}, {"momentum", momentum_}};
}

Shape BatchNorm2d::node_output_shape(std::span<const Shape> inputs) const {
  if (inputs.size() != 1 || inputs[0] != input_)
    throw Error("batch_norm built for input " + shape_string(input_));
  return input_;
}

void BatchNorm2d::init(std::mt19937_64&) {
  gamma().fill(1.0f);
  beta().fill(0.0f);
  running_mean().fill(0.0f);
  running_var().fill(1.0f);
}

void BatchNorm2d::forward_node(std::span<const Tensor* const> inputs, Tensor& y,
                               const ForwardMode& mode, SavedTensors& saved) const {
  const Tensor& x = *inputs[0];
  const Planes p = planes_of(x, input_);
  y.resize(x.shape());
  saved.clear();
  Tensor mean = running_mean(), variance = running_var();
  if (mode.training) {
    // Two passes in double, planes in order, values into fixed lanes.
    const double count = static_cast<double>(p.batch * p.plane);
    for (int64_t c = 0; c < p.channels; ++c) {
      Lanes sum = {};
      for (int64_t n = 0; n < p.batch; ++n) {
        const float* plane = x.data() + (n * p.channels + c) * p.plane;
        add_into_lanes(sum, p.plane, [&](int64_t i) { return double{plane[i]}; });
      }
      const double m = lanes_total(sum) / count;
      Lanes squares = {};
      for (int64_t n = 0; n < p.batch; ++n) {
        const float* plane = x.data() + (n * p.channels + c) * p.plane;
        add_into_lanes(squares, p.plane, [&](int64_t i) { return (plane[i] - m) * (plane[i] - m); });
      }
      mean[c] = static_cast<float>(m);
      variance[c] = static_cast<float>(lanes_total(squares) / count);
    }
    saved = {mean, variance, Tensor(Shape{1}, {static_cast<float>(count)})};
  }
  for (int64_t n = 0; n < p.batch; ++n)
    for (int64_t c = 0; c < p.channels; ++c) {
      const float m = mean[c], inv = inverse_std(variance[c], epsilon_);
      const float g = gamma()[c], b = beta()[c];
      const float* in = x.data() + (n * p.channels + c) * p.plane;
      float* out = y.data() + (n * p.channels + c) * p.plane;
      for (int64_t i = 0; i < p.plane; ++i) out[i] = g * ((in[i] - m) * inv) + b;
    }
}

// With x_hat = (x - mean) inv_std over the M values of a channel:
//   dgamma = sum(dy x_hat), dbeta = sum(dy),
//   dx = gamma inv_std (dy - dbeta / M - x_hat dgamma / M)  (training: mean and variance depend on x)
//   dx = gamma inv_std dy                                   (evaluation: running statistics).
void BatchNorm2d::backward_node(std::span<const Tensor* const> inputs, const Tensor& /*y*/,
                                const Tensor& dy, std::span<Tensor* const> input_grads,
                                std::span<Tensor> param_grads, const SavedTensors& saved) const {
  const Tensor& x = *inputs[0];
  const Planes p = planes_of(x, input_);
  const bool training = !saved.empty();
  const Tensor& mean = training ? saved[0] : running_mean();
  const Tensor& variance = training ? saved[1] : running_var();
  Tensor* dx = input_grads[0];
  if (dx) dx->resize(x.shape());
  const double count = static_cast<double>(p.batch * p.plane);
  for (int64_t c = 0; c < p.channels; ++c) {
    const float m = mean[c], inv = inverse_std(variance[c], epsilon_);
    Lanes dy_lanes = {}, dy_xhat_lanes = {};
    for (int64_t n = 0; n < p.batch; ++n) {
      const float* in = x.data() + (n * p.channels + c) * p.plane;
      const float* d = dy.data() + (n * p.channels + c) * p.plane;
      // Both sums in one pass over the plane; each lane adds its terms in the same order.
      int64_t i = 0;
      for (; i + kLanes <= p.plane; i += kLanes)
        for (int64_t l = 0; l < kLanes; ++l) {
          dy_lanes[l] += double{d[i + l]};
          dy_xhat_lanes[l] += double{d[i + l]} * ((in[i + l] - m) * inv);
        }
      for (; i < p.plane; ++i) {
        dy_lanes[i % kLanes] += double{d[i]};
        dy_xhat_lanes[i % kLanes] += double{d[i]} * ((in[i] - m) * inv);
      }
    }
    const double sum_dy = lanes_total(dy_lanes), sum_dy_xhat = lanes_total(dy_xhat_lanes);
    param_grads[0][c] += static_cast<float>(sum_dy_xhat);
    param_grads[1][c] += static_cast<float>(sum_dy);
    if (!dx) continue;
    const float scale = gamma()[c] * inv;
    const float mean_dy = training ? static_cast<float>(sum_dy / count) : 0.0f;
    const float mean_dy_xhat = training ? static_cast<float>(sum_dy_xhat / count) : 0.0f;
    for (int64_t n = 0; n < p.batch; ++n) {
      const float* in = x.data() + (n * p.channels + c) * p.plane;
      const float* d = dy.data() + (n * p.channels + c) * p.plane;
      float* out = dx->data() + (n * p.channels + c) * p.plane;
      for (int64_t i = 0; i < p.plane; ++i)
        out[i] = scale * (d[i] - mean_dy - ((in[i] - m) * inv) * mean_dy_xhat);
    }
  }
}

// The shards' statistics pooled into the whole batch's, in shard order and in double:
//   mean = sum n_s mean_s / N,  var = sum n_s (var_s + (mean_s - mean)^2) / N,
// then PyTorch's update with the unbiased variance var N / (N - 1).
void BatchNorm2d::update_running_statistics(std::span<const SavedTensors* const> shards) {
  double total = 0;
  for (const SavedTensors* s : shards)
    if (s->size() == 3) total += (*s)[2][0];
  if (total <= 0) return;
  for (int64_t c = 0; c < channels(); ++c) {
    double mean = 0;
    for (const SavedTensors* s : shards)
      if (s->size() == 3) mean += double{(*s)[2][0]} * (*s)[0][c];
    mean /= total;
    double variance = 0;
    for (const SavedTensors* s : shards)
      if (s->size() == 3) {
        const double d = (*s)[0][c] - mean;
        variance += double{(*s)[2][0]} * ((*s)[1][c] + d * d);
      }
    variance /= total;
    const double unbiased = total > 1 ? variance * total / (total - 1) : variance;
    running_mean()[c] = static_cast<float>((1.0 - momentum_) * running_mean()[c] + momentum_ * mean);
    running_var()[c] = static_cast<float>((1.0 - momentum_) * running_var()[c] + momentum_ * unbiased);
  }
}

}  // namespace lowbit
