// The layer interface: forward and backward passes, parameters and buffers, a JSON description.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/tensor.h"

namespace lowbit {

// How a forward pass runs. Evaluation (the default) is a pure function of the input. Training
// normalizes with the batch's own statistics (batch norm) and draws randomness (dropout) from
// `seed`, which the trainer derives from (run seed, step, shard) and the model from the node's
// index, so that no result depends on which thread ran what.
struct ForwardMode {
  bool training = false;
  uint64_t seed = 0;
};

// What a node's forward pass keeps for its backward pass and for the trainer (batch norm's batch
// statistics, dropout's mask). Owned by the caller, like the activations.
using SavedTensors = std::vector<Tensor>;

// A layer is const during forward and backward: activations, gradients and saved tensors live in
// buffers the caller owns, so several threads can run the same model on different shards of a
// batch. Every layer sums in a fixed order, whatever the thread count, so training and
// quantization-aware training share one implementation of each.
//
// Model runs every node through the general form (*_node: any number of inputs, a mode, saved
// tensors). One-input layers without state derive from UnaryLayer and write only the one-input
// form; the others (batch norm, dropout, add) write the general form and get the one-input form,
// in evaluation mode, from here.
class Layer {
 public:
  virtual ~Layer() = default;

  // The name used in model descriptions: "linear", "conv2d", "batch_norm", "add", ...
  virtual std::string kind() const = 0;
  // The layer's settings as data; with kind() and the input shapes, enough to rebuild it.
  virtual nlohmann::json config() const { return nlohmann::json::object(); }

  // ---- The general form, which Model runs for each node. ----
  virtual size_t input_count() const { return 1; }
  // One sample's output shape (no batch dimension) for one sample's input shapes. Throws
  // lowbit::Error saying what does not fit.
  virtual Shape node_output_shape(std::span<const Shape> inputs) const = 0;
  // inputs[j]: [batch, ...input j] (any rank with that many values per row) -> y: [batch, ...output],
  // resized as needed. `saved` is cleared or overwritten, never read.
  virtual void forward_node(std::span<const Tensor* const> inputs, Tensor& y, const ForwardMode& mode,
                            SavedTensors& saved) const = 0;
  // Given the inputs, y, dy = dLoss/dy and what forward_node saved: writes dLoss/d(input j) into
  // *input_grads[j] where that is not null (resized as needed), and ADDS dLoss/dparameter into
  // param_grads (same order and shapes as parameters()).
  virtual void backward_node(std::span<const Tensor* const> inputs, const Tensor& y, const Tensor& dy,
                             std::span<Tensor* const> input_grads, std::span<Tensor> param_grads,
                             const SavedTensors& saved) const = 0;

  // ---- The one-input form, in evaluation mode. ----
  // Shape of one sample's output for one sample's input shape.
  virtual Shape output_shape(const Shape& input) const;
  // x: [batch, ...input] -> y: [batch, ...output]; y is resized as needed.
  virtual void forward(const Tensor& x, Tensor& y) const;
  // Given x, y = forward(x) and dy = dLoss/dy: writes dLoss/dx into *dx when dx is not null, and
  // ADDS dLoss/dparameter into param_grads (same order and shapes as parameters()).
  virtual void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                        std::span<Tensor> param_grads) const;

  // Trainable tensors, in a fixed order (the model file stores them in this order).
  virtual std::span<Tensor> parameters() { return {}; }
  std::span<const Tensor> parameters() const { return const_cast<Layer*>(this)->parameters(); }
  // Non-trainable state that travels with the model (batch norm's running mean and variance),
  // stored after the parameters.
  virtual std::span<Tensor> buffers() { return {}; }
  std::span<const Tensor> buffers() const { return const_cast<Layer*>(this)->buffers(); }

  // Sets the parameters and buffers to their initial values, drawing from `rng` in a fixed order.
  virtual void init(std::mt19937_64& rng) {}
  // After a training step: folds what forward_node saved in training mode on each shard (given in
  // shard order) into the buffers. Only layers with running statistics do anything.
  virtual void update_running_statistics(std::span<const SavedTensors* const> shards) {}
  // Multiply-adds for one sample, counted as PyTorch's profilers count them: convolutions and
  // Linear layers only (batch norm, pooling and element-wise layers count 0).
  virtual int64_t multiply_adds(std::span<const Shape> inputs) const { return 0; }
};

// A one-input layer without training-mode behaviour or saved state: it writes the one-input form
// and the general form calls it.
class UnaryLayer : public Layer {
 public:
  Shape output_shape(const Shape& input) const override = 0;
  void forward(const Tensor& x, Tensor& y) const override = 0;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                std::span<Tensor> param_grads) const override = 0;

  Shape node_output_shape(std::span<const Shape> inputs) const final;
  void forward_node(std::span<const Tensor* const> inputs, Tensor& y, const ForwardMode& mode,
                    SavedTensors& saved) const final;
  void backward_node(std::span<const Tensor* const> inputs, const Tensor& y, const Tensor& dy,
                     std::span<Tensor* const> input_grads, std::span<Tensor> param_grads,
                     const SavedTensors& saved) const final;
};

}  // namespace lowbit
