// Per-layer quantization sensitivity, and a greedy mixed-precision search over per-layer bits.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/dataset.h"
#include "lowbit/model.h"
#include "lowbit/quantize.h"
#include "lowbit/tensor.h"

namespace lowbit {

struct SensitivityRow {
  size_t linear = 0;      // ordinal of the weighted layer, Linear or conv (0 = first)
  std::string name;       // that layer's node name
  int bits = 8;           // weights and that layer's input activations
  double accuracy = 0;    // fraction, with only this layer quantized (simulated, float elsewhere)
  double kl = 0;          // mean KL(float || quantized) of the output distributions, nats
};

// For each Linear and each width in `bits`: that layer alone quantized by preset `method`
// (preset_options(), calibrated on `calibration`), evaluated by fake quantization on
// images [n, features] with their labels. `progress(done, total)` follows the rows.
std::vector<SensitivityRow> layer_sensitivity(
    const Model& model, const Tensor& calibration, const Tensor& images,
    std::span<const uint8_t> labels, std::span<const int> bits, const std::string& method = "minmax",
    const std::function<void(size_t done, size_t total)>& progress = {});

struct MixedPrecisionOptions {
  std::string method = "minmax";         // the preset every candidate plan is made with
  std::vector<int> bits = {1, 2, 3, 4, 5, 6, 7, 8};  // widths a layer may take
  // false: one step lowers a layer's weights and input activations together (W = A per layer).
  // true: a step lowers either a layer's weights or its input activations; activation steps
  // save no bytes, so they are taken only when they cost no validation accuracy.
  bool separate_act_bits = false;
  // What a step saves: packed weight bytes, or bit-operations per image
  // (QuantizedModel::bit_operations, where lowering activations saves too).
  enum class Cost { weight_bytes, bit_operations };
  Cost cost = Cost::weight_bytes;
  // Called after each step taken, with the most steps the search can take (it may stop sooner).
  std::function<void(size_t steps, size_t most_steps)> progress;
};

struct MixedPrecisionPoint {
  std::vector<int> weight_bits, act_bits;  // per Linear
  int64_t weight_bytes = 0;                // packed weights of the integer model
  int64_t bit_operations = 0;              // per image: multiply-adds x weight bits x act bits
  double validation_accuracy = 0;          // integer engine, on the set the search chose with
  double test_accuracy = -1;               // integer engine; set by add_test_accuracy, else -1
  QuantPlan plan;  // the plan measured; its options hold the method and per-layer bits
};

// The preset `method` with per-layer weight and activation bits.
QuantOptions mixed_precision_options(const std::string& method, std::span<const int> weight_bits,
                                     std::span<const int> act_bits);

// Greedy search: start every layer at the widest of options.bits; repeatedly take the step
// (one layer to its next narrower width, see MixedPrecisionOptions) that costs the least
// integer-engine accuracy on `validation` per unit of options.cost saved (bytes of packed
// weights, or bit-operations), until no step is left. Returns every visited point (a
// non-increasing-cost path), the first one all widest.
// Nothing but `validation` decides; test data never enters. When `evaluated` is given, it
// receives every configuration measured, chosen or not (the path's points included), in order.
std::vector<MixedPrecisionPoint> mixed_precision_search(
    const Model& model, const Tensor& calibration, const ImageSet& validation,
    const MixedPrecisionOptions& options, std::vector<MixedPrecisionPoint>* evaluated = nullptr);

// A point's cost under `cost`.
int64_t point_cost(const MixedPrecisionPoint& point, MixedPrecisionOptions::Cost cost);

// Fills test_accuracy of each point with its integer engine's accuracy on `test` (reporting only).
void add_test_accuracy(const Model& model, const ImageSet& test,
                       std::vector<MixedPrecisionPoint>& points);

}  // namespace lowbit
