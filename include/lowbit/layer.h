// The layer interface: a forward pass, a backward pass, parameters, and a JSON description.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/tensor.h"

namespace lowbit {

// A layer is const during forward and backward: activations and gradients live in buffers the
// caller owns, so several threads can run the same model on different shards of a batch.
class Layer {
 public:
  virtual ~Layer() = default;

  // The name used in model descriptions: "linear", "relu", "log_softmax".
  virtual std::string kind() const = 0;
  // The layer's settings as data; with kind() and the input shape, enough to rebuild it.
  virtual nlohmann::json config() const { return nlohmann::json::object(); }

  // Shape of one sample's output for one sample's input shape (no batch dimension).
  virtual Shape output_shape(const Shape& input) const = 0;

  // x: [batch, ...input] -> y: [batch, ...output]; y is resized as needed.
  virtual void forward(const Tensor& x, Tensor& y) const = 0;

  // Given x, y = forward(x) and dy = dLoss/dy: writes dLoss/dx into *dx when dx is not null, and
  // ADDS dLoss/dparameter into param_grads (same order and shapes as parameters()).
  virtual void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                        std::span<Tensor> param_grads) const = 0;

  // Trainable tensors, in a fixed order (the model file stores them in this order).
  virtual std::span<Tensor> parameters() { return {}; }
  std::span<const Tensor> parameters() const {
    return const_cast<Layer*>(this)->parameters();
  }
};

}  // namespace lowbit
