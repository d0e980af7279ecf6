// Per-layer sensitivity by fake-quantizing one layer at a time; greedy mixed precision.
#include "lowbit/sensitivity.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "lowbit/error.h"
#include "lowbit/quantized_model.h"
#include "lowbit/simulated.h"
#include "lowbit/train.h"

namespace lowbit {
namespace {

constexpr int64_t kChunkRows = 256;  // fixed, so results do not depend on the thread count

// Log-probabilities [n, classes] of `forward` over all images, in fixed chunks.
template <typename Forward>
Tensor all_log_probs(const Forward& forward, const Tensor& images) {
  const int64_t count = images.dim(0), chunks = (count + kChunkRows - 1) / kChunkRows;
  std::vector<Tensor> parts(chunks);
#pragma omp parallel for schedule(dynamic)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunkRows;
    forward(slice_rows(images, begin, std::min(kChunkRows, count - begin)), parts[c]);
  }
  std::vector<float> values;
  for (const Tensor& p : parts) values.insert(values.end(), p.data(), p.data() + p.size());
  const int64_t classes = parts.empty() ? 0 : parts.front().row_size();
  return Tensor({count, classes}, std::move(values));
}

}  // namespace

QuantPlan mixed_precision_plan(const Model& model, const Tensor& calibration,
                               std::span<const int> bits) {
  QuantPlan plan;
  for (size_t j = 0; j < bits.size(); ++j) {
    QuantOptions options;
    options.weight_bits = options.act_bits = bits[j];
    QuantPlan one = plan_quantization(model, calibration, options);
    if (one.layers.size() != bits.size()) throw Error("one bit width per Linear layer is needed");
    if (j == 0) plan = one;
    plan.layers[j] = std::move(one.layers[j]);
  }
  plan.options.method = "minmax-mixed";
  return plan;
}

std::vector<SensitivityRow> layer_sensitivity(const Model& model, const Tensor& calibration,
                                              const Tensor& test_images,
                                              std::span<const uint8_t> test_labels,
                                              std::span<const int> bits) {
  const Tensor reference = all_log_probs(
      [&](const Tensor& x, Tensor& y) {
        Activations a;
        y = model.forward(x, a);
      },
      test_images);
  const int64_t n = test_images.dim(0), classes = reference.row_size();
  std::vector<SensitivityRow> rows;
  for (int b : bits) {
    QuantOptions options;
    options.weight_bits = options.act_bits = b;
    const QuantPlan full = plan_quantization(model, calibration, options);
    for (size_t j = 0; j < full.layers.size(); ++j) {
      QuantPlan only = full;  // SimulatedModel fake-quantizes exactly the layers in the plan
      only.layers = {full.layers[j]};
      const SimulatedModel simulated(model, only);
      const Tensor log_probs = all_log_probs(
          [&](const Tensor& x, Tensor& y) { simulated.forward(x, y); }, test_images);
      SensitivityRow row;
      row.linear = j;
      row.bits = b;
      int64_t correct = 0;
      double kl = 0;
      for (int64_t i = 0; i < n; ++i) {
        const float* p = reference.data() + i * classes;
        const float* q = log_probs.data() + i * classes;
        correct += std::max_element(q, q + classes) - q == test_labels[i];
        for (int64_t c = 0; c < classes; ++c) kl += std::exp(double{p[c]}) * (p[c] - q[c]);
      }
      row.accuracy = n ? static_cast<double>(correct) / n : 0;
      row.kl = n ? kl / n : 0;
      rows.push_back(row);
    }
  }
  std::sort(rows.begin(), rows.end(), [](const SensitivityRow& a, const SensitivityRow& b) {
    return a.linear != b.linear ? a.linear < b.linear : a.bits > b.bits;
  });
  return rows;
}

std::vector<MixedPrecisionPoint> mixed_precision_search(
    const Model& model, const Tensor& calibration, const ImageSet& test,
    std::vector<MixedPrecisionPoint>* evaluated) {
  const size_t layers = plan_quantization(model, calibration, {}).layers.size();
  auto measure = [&](const std::vector<int>& bits) {
    const QuantizedModel q = QuantizedModel::build(model, mixed_precision_plan(model, calibration, bits));
    MixedPrecisionPoint point{bits, q.weight_bytes(), q.evaluate(test).accuracy};
    if (evaluated) evaluated->push_back(point);
    return point;
  };
  std::vector<MixedPrecisionPoint> path{measure(std::vector<int>(layers, 8))};
  while (true) {
    const MixedPrecisionPoint& here = path.back();
    std::optional<MixedPrecisionPoint> best;
    double best_cost = INFINITY;
    for (size_t j = 0; j < layers; ++j) {
      if (here.bits[j] == 1) continue;
      std::vector<int> bits = here.bits;
      --bits[j];
      MixedPrecisionPoint candidate = measure(bits);
      const double saved = static_cast<double>(here.weight_bytes - candidate.weight_bytes);
      const double cost = (here.accuracy - candidate.accuracy) / std::max(saved, 1.0);
      if (cost < best_cost) best_cost = cost, best = std::move(candidate);  // first j wins ties
    }
    if (!best) break;
    path.push_back(std::move(*best));
  }
  return path;
}

}  // namespace lowbit
