// A model: a graph of layers built from a description that is data (JSON), plus the preprocessing
// it expects. docs/model-format.md describes the description.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/layer.h"
#include "lowbit/tensor.h"

namespace lowbit {

// Everything one forward pass leaves for its backward pass; reused across batches to avoid
// allocations. One per shard when training.
struct Activations {
  std::vector<Tensor> outputs;        // outputs[i]: node i's output, [batch, ...node_shape(i)]
  std::vector<SavedTensors> saved;    // saved[i]: what node i's forward kept (see Layer)
  std::vector<Tensor> gradients;      // backward: dLoss/d outputs[i]
  std::vector<Tensor> scratch;        // backward: input gradients before they are added
};

class Model {
 public:
  // description: {"input_shape": [C, H, W], "nodes": [{"name": "conv1", "kind": "conv2d",
  // "inputs": ["input"], "out_channels": 16, ...}, ...]}: nodes in topological order, each input
  // the name of an earlier node or "input", the last node the output. The older form
  // {"input_shape": ..., "layers": [{"kind": "linear", "out_features": 64}, ...]} is a chain.
  // Throws lowbit::Error, one line naming the node, on an unknown kind, a bad field or shapes
  // that do not fit.
  // At most kMaxParameterValues parameter and buffer values in all, and kMaxActivationValues
  // output values per sample over all nodes (docs/model-format.md, "Limits").
  static Model from_description(const nlohmann::json& description);
  // The same with a smaller parameter budget, refused before anything is allocated: load_model
  // passes the number of values its file actually holds.
  static Model from_description(const nlohmann::json& description, int64_t max_parameter_values);
  static constexpr int64_t kMaxParameterValues = int64_t{1} << 28;   // 1 GiB of floats
  // 16 MiB of floats per sample: evaluation holds every node's output for a chunk of 256 samples,
  // so this bounds it at 4 GiB; resnet20 on 32x32 images needs under 2^20.
  static constexpr int64_t kMaxActivationValues = int64_t{1} << 22;
  // The study's FC_NN: 784 -> Linear 64 -> ReLU -> Linear 32 -> ReLU -> Linear 10 -> LogSoftmax.
  static nlohmann::json fc_nn_description(const Shape& input_shape = {1, 28, 28},
                                          int64_t classes = 10);

  // The chain form ("layers") when the model is a chain whose nodes have their default names,
  // else the graph form ("nodes").
  nlohmann::json description() const;
  // A deep copy: same description, parameters, buffers and metadata.
  Model clone() const;
  const std::string& name() const { return name_; }  // the description's "name", may be empty
  const Shape& input_shape() const { return input_shape_; }
  Shape output_shape() const { return nodes_.back().shape; }
  int64_t input_size() const { return shape_numel(input_shape_); }

  // The graph: node i reads node_inputs(i) (indices of earlier nodes; kModelInput for the model's
  // input) and has output shape node_shape(i) per sample. The last node is the output.
  static constexpr int kModelInput = -1;
  size_t node_count() const { return nodes_.size(); }
  const std::string& node_name(size_t i) const { return nodes_[i].name; }
  const std::vector<int>& node_inputs(size_t i) const { return nodes_[i].inputs; }
  const Shape& node_shape(size_t i) const { return nodes_[i].shape; }
  std::vector<Shape> node_input_shapes(size_t i) const;
  // Each node reads only the one before it (the first the model input): what quantization handles.
  bool is_chain() const;

  // Node i's layer. For a chain, layer i is the i-th layer of the sequence.
  size_t layer_count() const { return nodes_.size(); }
  Layer& layer(size_t i) { return *nodes_[i].layer; }
  const Layer& layer(size_t i) const { return *nodes_[i].layer; }

  // Every layer's initialization (Layer::init) from one seeded generator, nodes in order.
  void init(uint64_t seed);
  int64_t parameter_count() const;
  // Per sample, convolutions and Linear layers (Layer::multiply_adds).
  int64_t multiply_adds() const;

  // x: [batch, ...input_shape] (or flattened) -> returns the last node's output, [batch, classes].
  const Tensor& forward(const Tensor& x, Activations& activations, const ForwardMode& mode = {}) const;

  // Given the forward pass of x and d_output = dLoss/d(last output), ADDS dLoss/dparameter into
  // gradients (one tensor per parameter, in parameters() order). The gradient with respect to x is
  // not computed. A node read by several others gets the sum of their gradients, added in node
  // order from the last reader down.
  void backward(const Tensor& x, Activations& activations, const Tensor& d_output,
                std::vector<Tensor>& gradients) const;

  // Every trainable tensor, node by node, in file order.
  std::vector<Tensor*> parameters();
  // Zero tensors shaped like parameters().
  std::vector<Tensor> zero_gradients() const;
  // Every non-trainable tensor (batch norm running statistics), node by node.
  std::vector<Tensor*> buffers();
  std::vector<const Tensor*> buffers() const;
  // After a training step: each layer folds the statistics its training forward pass saved on
  // each shard (given in shard order) into its buffers (Layer::update_running_statistics).
  void update_running_statistics(std::span<const Activations* const> shards);

  // Free-form facts that travel with the model file: dataset, normalization, training recipe.
  // Keys lowbit reads: "dataset" (string), "mean" and "std" (per-channel arrays).
  nlohmann::json metadata = nlohmann::json::object();

 private:
  struct Node {
    std::string name;
    std::unique_ptr<Layer> layer;
    std::vector<int> inputs;
    Shape shape;
  };
  std::string name_;
  Shape input_shape_;
  std::vector<Node> nodes_;
  std::vector<size_t> first_parameter_;  // per node, its first tensor's index in parameters()
};

// Named architectures for `lowbit train --arch` and `lowbit models`.
struct ModelPreset {
  std::string name;
  std::string summary;
  Shape input_shape;  // the images it was designed for (any [C, H, W] works if the shapes fit)
};
const std::vector<ModelPreset>& model_presets();
// The preset's description for `input_shape` images and `classes` classes. Throws lowbit::Error
// naming the known presets for an unknown name.
nlohmann::json preset_description(const std::string& name, const Shape& input_shape, int64_t classes);

}  // namespace lowbit
