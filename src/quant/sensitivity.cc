// Per-layer sensitivity by fake-quantizing one layer at a time; greedy mixed precision chosen on
// held-out data.
#include "lowbit/sensitivity.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <optional>

#include "lowbit/error.h"
#include "lowbit/quantized_model.h"
#include "lowbit/simulated.h"
#include "lowbit/train.h"
#include "quant/inference_graph.h"

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

QuantOptions mixed_precision_options(const std::string& method, std::span<const int> weight_bits,
                                     std::span<const int> act_bits) {
  if (weight_bits.empty() || weight_bits.size() != act_bits.size())
    throw Error("one weight and one activation bit width per Linear layer are needed");
  QuantOptions options = preset_options(method, weight_bits[0], act_bits[0]);
  options.layer_weight_bits.assign(weight_bits.begin(), weight_bits.end());
  options.layer_act_bits.assign(act_bits.begin(), act_bits.end());
  return options;
}

std::vector<SensitivityRow> layer_sensitivity(const Model& model, const Tensor& calibration,
                                              const Tensor& images, std::span<const uint8_t> labels,
                                              std::span<const int> bits,
                                              const std::string& method,
                                              const std::function<void(size_t, size_t)>& progress) {
  const Tensor reference = all_log_probs(
      [&](const Tensor& x, Tensor& y) {
        Activations a;
        y = model.forward(x, a);
      },
      images);
  const int64_t n = images.dim(0), classes = reference.row_size();
  // Layer names by node index of what the plan indexes: the model, or a graph's inference graph.
  std::optional<Model> graph;
  if (!is_linear_chain(model)) graph = inference_graph(model);
  const Model& indexed = graph ? *graph : model;
  std::vector<std::string> names;
  for (size_t i = 0; i < indexed.node_count(); ++i) names.push_back(indexed.node_name(i));
  std::vector<SensitivityRow> rows;
  for (size_t k = 0; k < bits.size(); ++k) {
    const int b = bits[k];
    const QuantPlan full = plan_quantization(model, calibration, preset_options(method, b, b));
    for (size_t j = 0; j < full.layers.size(); ++j) {
      if (progress) progress(k * full.layers.size() + j, bits.size() * full.layers.size());
      QuantPlan only = full;  // SimulatedModel fake-quantizes exactly the layers in the plan
      only.layers = {full.layers[j]};
      only.only_listed_layers = true;
      const SimulatedModel simulated(model, only);
      const Tensor log_probs = all_log_probs(
          [&](const Tensor& x, Tensor& y) { simulated.forward(x, y); }, images);
      SensitivityRow row;
      row.linear = j;
      row.name = names[full.layers[j].layer];
      row.bits = b;
      int64_t correct = 0;
      double kl = 0;
      for (int64_t i = 0; i < n; ++i) {
        const float* p = reference.data() + i * classes;
        const float* q = log_probs.data() + i * classes;
        correct += std::max_element(q, q + classes) - q == labels[i];
        for (int64_t c = 0; c < classes; ++c) kl += std::exp(double{p[c]}) * (p[c] - q[c]);
      }
      row.accuracy = n ? static_cast<double>(correct) / n : 0;
      row.kl = n ? kl / n : 0;
      rows.push_back(row);
    }
  }
  if (progress) progress(rows.size(), rows.size());
  std::sort(rows.begin(), rows.end(), [](const SensitivityRow& a, const SensitivityRow& b) {
    return a.linear != b.linear ? a.linear < b.linear : a.bits > b.bits;
  });
  return rows;
}

std::vector<MixedPrecisionPoint> mixed_precision_search(
    const Model& model, const Tensor& calibration, const ImageSet& validation,
    const MixedPrecisionOptions& options, std::vector<MixedPrecisionPoint>* evaluated) {
  std::vector<int> widths = options.bits;
  std::sort(widths.begin(), widths.end());
  widths.erase(std::unique(widths.begin(), widths.end()), widths.end());
  if (widths.empty()) throw Error("the mixed-precision search needs at least one bit width");
  // The next narrower allowed width, or 0 at the narrowest.
  auto narrower = [&](int bits) {
    const auto it = std::lower_bound(widths.begin(), widths.end(), bits);
    return it == widths.begin() ? 0 : *std::prev(it);
  };
  const size_t layers =
      plan_quantization(model, calibration, preset_options("minmax", 8, 8)).layers.size();
  auto measure = [&](std::vector<int> weight_bits, std::vector<int> act_bits) {
    MixedPrecisionPoint point;
    point.plan = plan_quantization(model, calibration,
                                   mixed_precision_options(options.method, weight_bits, act_bits));
    const QuantizedModel q = QuantizedModel::build(model, point.plan);
    point.weight_bits = std::move(weight_bits);
    point.act_bits = std::move(act_bits);
    point.weight_bytes = q.weight_bytes();
    point.bit_operations = q.bit_operations();
    point.validation_accuracy = q.evaluate(validation).accuracy;
    if (evaluated) evaluated->push_back(point);
    return point;
  };
  const std::vector<int> widest(layers, widths.back());
  std::vector<MixedPrecisionPoint> path{measure(widest, widest)};
  const size_t most_steps = layers * (widths.size() - 1) * (options.separate_act_bits ? 2 : 1);
  while (true) {
    const MixedPrecisionPoint& here = path.back();
    std::optional<MixedPrecisionPoint> best;
    double best_cost = INFINITY;
    // Candidates in a fixed order (weight steps by layer, then activation steps), first wins ties.
    for (const bool activation_step : {false, true}) {
      if (activation_step && !options.separate_act_bits) break;
      for (size_t j = 0; j < layers; ++j) {
        std::vector<int> weight_bits = here.weight_bits, act_bits = here.act_bits;
        int& lowered = activation_step ? act_bits[j] : weight_bits[j];
        const int next = narrower(lowered);
        if (next == 0) continue;
        lowered = next;
        if (!options.separate_act_bits) act_bits[j] = weight_bits[j];
        MixedPrecisionPoint candidate = measure(std::move(weight_bits), std::move(act_bits));
        const double lost = here.validation_accuracy - candidate.validation_accuracy;
        const double saved =
            static_cast<double>(point_cost(here, options.cost) - point_cost(candidate, options.cost));
        // A step that saves nothing (activations, when the cost is bytes) is worth taking only
        // when it is free.
        if (saved <= 0 && lost > 0) continue;
        const double cost = lost / std::max(saved, 1.0);
        if (cost < best_cost) best_cost = cost, best = std::move(candidate);
      }
    }
    if (!best) break;
    path.push_back(std::move(*best));
    if (options.progress) options.progress(path.size() - 1, most_steps);
  }
  return path;
}

int64_t point_cost(const MixedPrecisionPoint& point, MixedPrecisionOptions::Cost cost) {
  return cost == MixedPrecisionOptions::Cost::weight_bytes ? point.weight_bytes : point.bit_operations;
}

void add_test_accuracy(const Model& model, const ImageSet& test,
                       std::vector<MixedPrecisionPoint>& points) {
  for (MixedPrecisionPoint& point : points)
    point.test_accuracy = QuantizedModel::build(model, point.plan).evaluate(test).accuracy;
}

}  // namespace lowbit
