// A model: layers built from a description that is data (JSON), plus the preprocessing it expects.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/layer.h"
#include "lowbit/tensor.h"

namespace lowbit {

// Output of every layer of one forward pass; reused across batches to avoid allocations.
struct Activations {
  std::vector<Tensor> outputs;  // outputs[i]: output of layer i
};

class Model {
 public:
  // description: {"input_shape": [1, 28, 28], "layers": [{"kind": "linear", "out_features": 64},
  //               {"kind": "relu"}, ...]}. Throws lowbit::Error on an unknown kind or a bad shape.
  static Model from_description(const nlohmann::json& description);
  // The study's FC_NN: 784 -> Linear 64 -> ReLU -> Linear 32 -> ReLU -> Linear 10 -> LogSoftmax.
  static nlohmann::json fc_nn_description(const Shape& input_shape = {1, 28, 28},
                                          int64_t classes = 10);

  nlohmann::json description() const;
  // A deep copy: same description, parameters and metadata.
  Model clone() const;
  const Shape& input_shape() const { return input_shape_; }
  Shape output_shape() const;
  int64_t input_size() const { return shape_numel(input_shape_); }

  size_t layer_count() const { return layers_.size(); }
  Layer& layer(size_t i) { return *layers_[i]; }
  const Layer& layer(size_t i) const { return *layers_[i]; }

  // PyTorch's default initialization for every Linear, from one seeded generator.
  void init(uint64_t seed);
  int64_t parameter_count() const;

  // x: [batch, ...input_shape] (or flattened) -> returns the last output, [batch, classes].
  const Tensor& forward(const Tensor& x, Activations& activations) const;

  // Given the forward pass of x and d_output = dLoss/d(last output), ADDS dLoss/dparameter into
  // gradients (one tensor per parameter, in parameters() order). The input gradient of the first
  // layer is not computed. `scratch` holds two tensors reused across calls.
  void backward(const Tensor& x, const Activations& activations, const Tensor& d_output,
                std::vector<Tensor>& gradients, Tensor (&scratch)[2]) const;

  // Every trainable tensor, layer by layer, in file order.
  std::vector<Tensor*> parameters();
  // Zero tensors shaped like parameters().
  std::vector<Tensor> zero_gradients() const;

  // Free-form facts that travel with the model file: dataset, normalization, training recipe.
  // Keys lowbit reads: "dataset" (string), "mean" and "std" (per-channel arrays).
  nlohmann::json metadata = nlohmann::json::object();

 private:
  Shape input_shape_;
  std::vector<std::unique_ptr<Layer>> layers_;
};

}  // namespace lowbit
