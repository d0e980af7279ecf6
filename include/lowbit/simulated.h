// The study's "simulated" quantized model: float arithmetic with each Linear's input and weights
// fake-quantized (quantize, then dequantize). Kept for comparison with the integer engine.
// Graphs: every tensor the integer engine stores is fake-quantized on its grid, or with
// QuantPlan::only_listed_layers only the listed layers' weights and inputs (sensitivity).
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
  // Chains: the model; graphs: its inference graph (batch norm folded). Weights replaced by their
  // dequantized codes, biases by the plan's.
  Model model_;
  std::vector<std::optional<QuantParams>> input_;   // chains, per layer: fake-quantize its input
  bool graph_ = false;
  std::optional<QuantParams> graph_input_;           // graphs: the model input's grid
  std::vector<std::optional<QuantParams>> output_;  // graphs, per node: fake-quantize its output
  // Graphs with QuantPlan::only_listed_layers: per node, fake-quantize the input it reads.
};

}  // namespace lowbit
