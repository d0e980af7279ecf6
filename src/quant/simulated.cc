// Fake-quantized float forward pass: the study's way of measuring a quantized model.
#include "lowbit/simulated.h"

#include "lowbit/layers.h"

namespace lowbit {

SimulatedModel::SimulatedModel(const Model& model, const QuantPlan& plan)
    : model_(model.clone()), input_(model.layer_count()) {
  for (const QuantizedLinearPlan& q : plan.layers) {
    auto& linear = dynamic_cast<Linear&>(model_.layer(q.layer));
    for (int64_t o = 0; o < q.out_features; ++o) {
      for (int64_t k = 0; k < q.in_features; ++k) {
        const int64_t at = o * q.in_features + k;
        linear.weight()[at] = q.weight_params(o).dequantize(q.weight_codes[at]);
      }
      linear.bias()[o] = q.bias[o];
    }
    input_[q.layer] = q.input;
  }
}

void SimulatedModel::forward(const Tensor& x, Tensor& log_probs) const {
  Tensor current = x, next;
  for (size_t i = 0; i < model_.layer_count(); ++i) {
    if (input_[i])
      for (float& v : current.values()) v = input_[i]->fake_quantize(v);
    model_.layer(i).forward(current, next);
    std::swap(current, next);
  }
  log_probs = std::move(current);
}

}  // namespace lowbit
