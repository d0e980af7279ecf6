// The study's "simulated" quantized model: float arithmetic with each Linear's input and weights
// fake-quantized (quantize, then dequantize). Kept for comparison with the integer engine.
#pragma once

#include <optional>
#include <vector>

#include "lowbit/model.h"
#include "lowbit/quantize.h"

namespace lowbit {

class SimulatedModel {
 public:
  SimulatedModel(const Model& model, const QuantPlan& plan);
  // x: [batch, features] normalized -> log_probs: [batch, classes]. Thread-safe.
  void forward(const Tensor& x, Tensor& log_probs) const;

 private:
  Model model_;                                    // weights replaced by their dequantized codes
  std::vector<std::optional<QuantParams>> input_;  // per layer: fake-quantize its input
};

}  // namespace lowbit
