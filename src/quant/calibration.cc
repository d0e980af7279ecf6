// Calibration: the clipping range of a tensor by min/max, percentile, least MSE or least KL.
#include "quant/calibration.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "lowbit/error.h"
#include "nn/eigen_view.h"

namespace lowbit {
namespace {

constexpr int kMseGridSteps = 100;      // candidate ranges alpha * [min, max], alpha = i / 100
constexpr int kHistogramBins = 2048;    // as TensorRT and ONNX Runtime

// The value at fraction `f` of the sorted values (nearest rank).
float value_at_fraction(std::vector<float>& sorted, double f) {
  const auto n = static_cast<int64_t>(sorted.size());
  const auto at = std::clamp<int64_t>(static_cast<int64_t>(std::llround(f * (n - 1))), 0, n - 1);
  std::nth_element(sorted.begin(), sorted.begin() + at, sorted.end());
  return sorted[at];
}

Range percentile_range(std::span<const float> values, double percentile) {
  if (percentile <= 50 || percentile > 100) throw Error("percentile must be in (50, 100]");
  std::vector<float> copy(values.begin(), values.end());
  const float hi = value_at_fraction(copy, percentile / 100);
  const float lo = value_at_fraction(copy, 1 - percentile / 100);
  return {lo, hi};
}

// Grid search over alpha * [min, max]: the range whose asymmetric quantization has least MSE.
Range mse_range(std::span<const float> values, int bits) {
  const Range full = range_of(values);
  Range best = full;
  double best_mse = quantization_mse(values, minmax_params(full, bits));
  for (int i = kMseGridSteps - 1; i >= 1; --i) {
    const float alpha = static_cast<float>(i) / kMseGridSteps;
    const Range candidate{alpha * full.min, alpha * full.max};
    const double mse = quantization_mse(values, minmax_params(candidate, bits));
    if (mse < best_mse) best_mse = mse, best = candidate;
  }
  return best;
}

double kl_divergence(const std::vector<double>& p, const std::vector<double>& q) {
  double p_sum = 0, q_sum = 0, kl = 0;
  for (size_t i = 0; i < p.size(); ++i) p_sum += p[i], q_sum += q[i];
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] > 0) kl += p[i] / p_sum * std::log((p[i] / p_sum) / (q[i] / q_sum));
  return kl;
}

// KL(P || Q) for clipping at bin `end`: P is the histogram cut at `end` with the clipped tail
// added to its last bin; Q merges P's bins into `levels` groups and spreads each group evenly
// over its non-empty bins (TensorRT's entropy calibrator).
double clipping_divergence(const std::vector<double>& histogram, int end, int levels) {
  std::vector<double> p(histogram.begin(), histogram.begin() + end);
  for (size_t i = end; i < histogram.size(); ++i) p[end - 1] += histogram[i];
  std::vector<double> q(end, 0.0);
  for (int g = 0; g < levels; ++g) {
    const int begin = g * end / levels, stop = (g + 1) * end / levels;
    double total = 0;
    int nonzero = 0;
    for (int i = begin; i < stop; ++i) total += histogram[i], nonzero += histogram[i] > 0;
    for (int i = begin; i < stop; ++i)
      if (histogram[i] > 0) q[i] = total / nonzero;
  }
  for (int i = 0; i < end; ++i)
    if (p[i] > 0 && q[i] == 0) q[i] = 1e-12;  // a clipped tail landing in an empty group
  return kl_divergence(p, q);
}

// Entropy calibration on a histogram of [min, max]; the lower end stays at min.
Range kl_range(std::span<const float> values, int bits) {
  const Range full = range_of(values);
  if (full.max <= full.min) return full;
  const double width = (double{full.max} - full.min) / kHistogramBins;
  std::vector<double> histogram(kHistogramBins, 0.0);
  for (float v : values)
    ++histogram[std::min<int64_t>(static_cast<int64_t>((v - full.min) / width), kHistogramBins - 1)];
  // The spike of values at exactly min (ReLU's 0, the images' background) lands on code 0 at
  // any threshold; left in, Q smears it over its group and the divergence no longer tracks
  // the clipping.
  histogram[0] -= static_cast<double>(std::count(values.begin(), values.end(), full.min));
  const int levels = 1 << bits;
  int best_end = kHistogramBins;
  double best = clipping_divergence(histogram, kHistogramBins, levels);
  for (int end = levels; end < kHistogramBins; ++end) {
    const double kl = clipping_divergence(histogram, end, levels);
    if (kl < best) best = kl, best_end = end;
  }
  return {full.min, static_cast<float>(full.min + best_end * width)};
}

}  // namespace

Range output_mse_range(const Tensor& inputs, const Tensor& weight, int bits) {
  return output_mse_range(inputs, inputs, weight, bits);
}

Range output_mse_range(const Tensor& float_inputs, const Tensor& inputs, const Tensor& weight,
                       int bits) {
  const int64_t rows = std::min<int64_t>(inputs.dim(0), 512), in = inputs.row_size();
  const Tensor x({rows, in}, std::vector<float>(inputs.data(), inputs.data() + rows * in));
  const Tensor float_x({rows, in},
                       std::vector<float>(float_inputs.data(), float_inputs.data() + rows * in));
  const RowMatrix reference = as_matrix(float_x) * as_matrix(weight).transpose();
  const Range full = range_of(float_inputs.values());
  Range best = full;
  double best_error = -1;
  Tensor quantized = x;
  for (int i = kMseGridSteps; i >= 1; --i) {
    const float alpha = static_cast<float>(i) / kMseGridSteps;
    const Range candidate{alpha * full.min, alpha * full.max};
    const QuantParams params = minmax_params(candidate, bits);
    for (int64_t k = 0; k < x.size(); ++k) quantized[k] = params.fake_quantize(x[k]);
    const RowMatrix error = as_matrix(quantized) * as_matrix(weight).transpose() - reference;
    const double e = error.cast<double>().squaredNorm();
    if (best_error < 0 || e < best_error) best_error = e, best = candidate;
  }
  return best;
}

double quantization_mse(std::span<const float> values, const QuantParams& params) {
  double sum = 0;
  for (float v : values) {
    const double e = double{v} - params.fake_quantize(v);
    sum += e * e;
  }
  return values.empty() ? 0 : sum / static_cast<double>(values.size());
}

Range calibrate_range(std::span<const float> values, int bits, Calibration calibration,
                      double percentile) {
  if (values.empty()) return {};
  switch (calibration) {
    case Calibration::minmax: return range_of(values);
    case Calibration::percentile: return percentile_range(values, percentile);
    case Calibration::mse: return mse_range(values, bits);
    case Calibration::kl: return kl_range(values, bits);
    case Calibration::output_mse: throw Error("output_mse calibration needs the layer's weight");
  }
  throw Error("unknown calibration");
}

QuantParams symmetric_params(Range range, int bits) {
  if (bits < 1 || bits > 8) throw Error("bit width " + std::to_string(bits) + " is not in 1..8");
  const float a = std::max(std::fabs(range.min), std::fabs(range.max));
  QuantParams p;
  p.bits = bits;
  if (a <= 0 || !std::isfinite(a)) return p;
  if (bits == 1) {
    p.scale = a;
    p.zero_point = std::fabs(range.min) > range.max ? 1 : 0;
    return p;
  }
  p.zero_point = 1 << (bits - 1);
  p.scale = a / static_cast<float>(p.zero_point - 1);
  return p;
}

QuantParams choose_weight_params(std::span<const float> values, int bits,
                                 Calibration calibration, bool symmetric) {
  auto params = [&](Range r) { return symmetric ? symmetric_params(r, bits) : minmax_params(r, bits); };
  const Range full = range_of(values);
  QuantParams best = params(full);
  if (calibration != Calibration::mse) return best;
  double best_mse = quantization_mse(values, best);
  for (int i = kMseGridSteps - 1; i >= 1; --i) {
    const float alpha = static_cast<float>(i) / kMseGridSteps;
    const QuantParams candidate = params({alpha * full.min, alpha * full.max});
    const double mse = quantization_mse(values, candidate);
    if (mse < best_mse) best_mse = mse, best = candidate;
  }
  return best;
}

}  // namespace lowbit
