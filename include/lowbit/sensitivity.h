// Per-layer quantization sensitivity, and a greedy mixed-precision search over per-layer bits.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/dataset.h"
#include "lowbit/model.h"
#include "lowbit/quantize.h"
#include "lowbit/tensor.h"

namespace lowbit {

struct SensitivityRow {
  size_t linear = 0;      // ordinal of the Linear layer (0 = first)
  int bits = 8;           // weights and that layer's input activations
  double accuracy = 0;    // fraction, with only this layer quantized (simulated, float elsewhere)
  double kl = 0;          // mean KL(float || quantized) of the output distributions, nats
};

// For each Linear and each width in `bits`: min/max post-training quantization of that layer
// alone (calibrated on `calibration`), evaluated by fake quantization on test_images [n, features].
std::vector<SensitivityRow> layer_sensitivity(const Model& model, const Tensor& calibration,
                                              const Tensor& test_images,
                                              std::span<const uint8_t> test_labels,
                                              std::span<const int> bits);

struct MixedPrecisionPoint {
  std::vector<int> bits;     // per Linear: weights and input activations
  int64_t weight_bytes = 0;  // packed weights of the integer model
  double accuracy = 0;       // integer engine, on `test`
};

// Greedy search: start every layer at 8 bits; repeatedly lower by one the bits of the layer whose
// step costs the least integer-engine accuracy per byte saved, until all are at 1 bit.
// Returns every visited point (a descending-bytes path), the first one all-8-bit. When
// `evaluated` is given, it receives every configuration measured, chosen or not (the path's
// points included), in the order measured.
std::vector<MixedPrecisionPoint> mixed_precision_search(
    const Model& model, const Tensor& calibration, const ImageSet& test,
    std::vector<MixedPrecisionPoint>* evaluated = nullptr);

// A min/max plan whose Linear j uses bits[j] for weights and input activations.
QuantPlan mixed_precision_plan(const Model& model, const Tensor& calibration,
                               std::span<const int> bits);

}  // namespace lowbit
