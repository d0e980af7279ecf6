// Post-training quantization: from a float model and calibration images to a quantization plan,
// the single source from which both the simulated and the integer models are built.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/model.h"
#include "lowbit/quant_params.h"
#include "lowbit/tensor.h"

namespace lowbit {

struct QuantOptions {
  int weight_bits = 8;
  int act_bits = 8;
  std::string method = "minmax";  // how ranges are chosen; see quantization_methods()
};

std::vector<std::string> quantization_methods();

// One Linear layer, quantized.
struct QuantizedLinearPlan {
  size_t layer = 0;                  // index of the Linear in the float model
  int64_t in_features = 0, out_features = 0;
  QuantParams input;                 // this layer's input activations
  std::vector<QuantParams> weight;   // one per tensor, or one per output channel
  std::vector<uint8_t> weight_codes; // [out, in], codes in [0, 2^weight_bits - 1]
  std::vector<float> bias;           // [out], float (the integer engine rounds it to int32)
  bool relu = false;                 // followed by ReLU (folded into the integer clamp)

  const QuantParams& weight_params(int64_t out_channel) const {
    return weight.size() == 1 ? weight[0] : weight[out_channel];
  }
};

struct QuantPlan {
  QuantOptions options;
  std::vector<QuantizedLinearPlan> layers;
};

// Per Linear layer, the inputs it sees on the calibration images: [count, in_features] each.
std::vector<Tensor> collect_linear_inputs(const Model& model, const Tensor& calibration_images);

// Calibrates activation ranges on `calibration_images` ([count, features], normalized) and
// quantizes the weights. Throws lowbit::Error on a model the quantizer cannot handle.
QuantPlan plan_quantization(const Model& model, const Tensor& calibration_images,
                            const QuantOptions& options);

}  // namespace lowbit
