// Building a graph of layers from its JSON description, and running it forward and backward.
#include "lowbit/model.h"

#include <algorithm>
#include <map>
#include <random>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "nn/layer_factory.h"
#include "util/json_field.h"

namespace lowbit {
namespace {

constexpr const char* kInputName = "input";
// Largest per-sample output of a node a description may ask for (2^28 floats, 1 GiB).
constexpr int64_t kMaxNodeValues = int64_t{1} << 28;

std::string default_name(const std::string& kind, size_t index) {
  return kind + std::to_string(index);
}

// "node \"conv1\" (conv2d)", the start of every error about one node.
std::string node_label(const std::string& name, const std::string& kind) {
  return "model description: node \"" + name + "\" (" + kind + ")";
}

}  // namespace

Model Model::from_description(const nlohmann::json& description) {
  return from_description(description, kMaxParameterValues);
}

Model Model::from_description(const nlohmann::json& description, int64_t max_parameter_values) {
  int64_t budget = std::min(max_parameter_values, kMaxParameterValues);
  int64_t activation_values = 0;
  if (!description.is_object() || !description.contains("input_shape") ||
      !description["input_shape"].is_array())
    throw Error("model description: needs an \"input_shape\" array");
  const bool graph = description.contains("nodes");
  const bool chain = description.contains("layers");
  if (graph == chain)
    throw Error("model description: needs a \"nodes\" array (or the older \"layers\"), not both");
  const nlohmann::json& specs = description[graph ? "nodes" : "layers"];
  if (!specs.is_array()) throw Error(std::string("model description: \"") + (graph ? "nodes" : "layers") +
                                     "\" must be an array");
  for (const auto& [key, value] : description.items())
    if (key != "name" && key != "input_shape" && key != "nodes" && key != "layers")
      throw Error("model description: unknown field \"" + key + "\"");

  Model model;
  if (description.contains("name")) {
    if (!description["name"].is_string()) throw Error("model description: \"name\" must be a string");
    model.name_ = description["name"];
  }
  model.input_shape_ = json_shape(description["input_shape"], "model description: \"input_shape\"", 4,
                                  65536, int64_t{1} << 24);
  if (specs.empty()) throw Error("model description: no layers");

  std::map<std::string, int> index_of = {{kInputName, kModelInput}};
  std::vector<bool> used(specs.size(), false);
  for (size_t i = 0; i < specs.size(); ++i) {
    const nlohmann::json& spec = specs[i];
    if (!spec.is_object() || !spec.contains("kind") || !spec["kind"].is_string())
      throw Error("model description: " + std::string(graph ? "node " : "layer ") +
                  std::to_string(i) + " needs a string \"kind\"");
    const std::string kind = spec["kind"];
    Node node;
    node.name = default_name(kind, i);
    if (spec.contains("name")) {
      if (!spec["name"].is_string() || spec["name"].get<std::string>().empty())
        throw Error("model description: node " + std::to_string(i) + " has a \"name\" that is not a non-empty string");
      node.name = spec["name"];
    }
    const std::string label = node_label(node.name, kind);
    if (index_of.count(node.name))
      throw Error(label + ": the name \"" + node.name + "\" is " +
                  (node.name == kInputName ? "reserved for the model input" : "used twice"));
    if (spec.contains("inputs")) {
      if (!spec["inputs"].is_array() || spec["inputs"].empty())
        throw Error(label + ": \"inputs\" must be a non-empty array of node names");
      for (const auto& input : spec["inputs"]) {
        if (!input.is_string()) throw Error(label + ": \"inputs\" must hold node names");
        const auto found = index_of.find(input.get<std::string>());
        if (found == index_of.end())
          throw Error(label + ": input \"" + input.get<std::string>() +
                      "\" is not \"input\" or an earlier node");
        node.inputs.push_back(found->second);
      }
    } else {
      node.inputs.push_back(static_cast<int>(i) - 1);  // the previous node; the first reads the input
    }
    std::vector<Shape> shapes;
    for (int input : node.inputs) {
      shapes.push_back(input == kModelInput ? model.input_shape_ : model.nodes_[input].shape);
      if (input != kModelInput) used[input] = true;
    }
    try {
      node.layer = make_layer(spec, shapes, budget);
      node.shape = node.layer->node_output_shape(shapes);
    } catch (const Error& e) {
      throw Error(label + ": " + e.what());
    }
    if (shape_numel(node.shape) > kMaxNodeValues) throw Error(label + ": output is too large");
    activation_values += shape_numel(node.shape);
    if (activation_values > kMaxActivationValues)
      throw Error(label + ": the outputs of the nodes up to this one exceed " +
                  std::to_string(kMaxActivationValues) + " values per sample");
    index_of[node.name] = static_cast<int>(i);
    model.nodes_.push_back(std::move(node));
  }
  for (size_t i = 0; i + 1 < model.nodes_.size(); ++i)
    if (!used[i])
      throw Error(node_label(model.nodes_[i].name, model.nodes_[i].layer->kind()) +
                  ": its output is never read (only the last node is the model's output)");
  size_t parameters = 0;
  for (const Node& node : model.nodes_) {
    model.first_parameter_.push_back(parameters);
    parameters += static_cast<const Layer&>(*node.layer).parameters().size();
  }
  return model;
}

nlohmann::json Model::fc_nn_description(const Shape& input_shape, int64_t classes) {
  return preset_description("fc_nn", input_shape, classes);
}

bool Model::is_chain() const {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].inputs != std::vector<int>{static_cast<int>(i) - 1}) return false;
  return true;
}

nlohmann::json Model::description() const {
  bool default_names = true;
  for (size_t i = 0; i < nodes_.size(); ++i)
    default_names = default_names && nodes_[i].name == default_name(nodes_[i].layer->kind(), i);
  nlohmann::json specs = nlohmann::json::array();
  if (is_chain() && default_names) {
    // The chain form, as lowbit wrote it before graphs (so FC_NN files stay byte for byte the same).
    for (const Node& node : nodes_) {
      nlohmann::json spec = node.layer->config();
      spec["kind"] = node.layer->kind();
      specs.push_back(spec);
    }
    return {{"input_shape", input_shape_}, {"layers", specs}};
  }
  for (const Node& node : nodes_) {
    nlohmann::json spec = {{"name", node.name}, {"kind", node.layer->kind()}};
    nlohmann::json inputs = nlohmann::json::array();
    for (int input : node.inputs) inputs.push_back(input == kModelInput ? kInputName : nodes_[input].name);
    spec["inputs"] = inputs;
    spec.update(node.layer->config());
    specs.push_back(spec);
  }
  nlohmann::json out = {{"input_shape", input_shape_}, {"nodes", specs}};
  if (!name_.empty()) out["name"] = name_;
  return out;
}

Model Model::clone() const {
  Model copy = from_description(description());
  copy.name_ = name_;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Layer& from = *nodes_[i].layer;
    Layer& to = *copy.nodes_[i].layer;
    for (size_t p = 0; p < from.parameters().size(); ++p) to.parameters()[p] = from.parameters()[p];
    for (size_t b = 0; b < from.buffers().size(); ++b) to.buffers()[b] = from.buffers()[b];
  }
  copy.metadata = metadata;
  return copy;
}

std::vector<Shape> Model::node_input_shapes(size_t i) const {
  std::vector<Shape> shapes;
  for (int input : nodes_[i].inputs)
    shapes.push_back(input == kModelInput ? input_shape_ : nodes_[input].shape);
  return shapes;
}

void Model::init(uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (Node& node : nodes_) node.layer->init(rng);
}

int64_t Model::parameter_count() const {
  int64_t n = 0;
  for (const Node& node : nodes_)
    for (const Tensor& p : static_cast<const Layer&>(*node.layer).parameters()) n += p.size();
  return n;
}

int64_t Model::multiply_adds() const {
  int64_t n = 0;
  for (size_t i = 0; i < nodes_.size(); ++i) n += nodes_[i].layer->multiply_adds(node_input_shapes(i));
  return n;
}

const Tensor& Model::forward(const Tensor& x, Activations& activations, const ForwardMode& mode) const {
  activations.outputs.resize(nodes_.size());
  activations.saved.resize(nodes_.size());
  std::vector<const Tensor*> inputs;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    inputs.clear();
    for (int input : nodes_[i].inputs)
      inputs.push_back(input == kModelInput ? &x : &activations.outputs[input]);
    // Each node draws its own randomness: the node's index is part of the seed.
    const ForwardMode node_mode{mode.training, mix_seed(mode.seed, i)};
    nodes_[i].layer->forward_node(inputs, activations.outputs[i], node_mode, activations.saved[i]);
  }
  return activations.outputs.back();
}

void Model::backward(const Tensor& x, Activations& activations, const Tensor& d_output,
                     std::vector<Tensor>& gradients) const {
  const size_t count = nodes_.size();
  // A node needs its output's gradient when it or a node it reads from has parameters.
  std::vector<bool> needed(count, false);
  for (size_t i = 0; i < count; ++i) {
    needed[i] = !static_cast<const Layer&>(*nodes_[i].layer).parameters().empty();
    for (int input : nodes_[i].inputs) needed[i] = needed[i] || (input != kModelInput && needed[input]);
  }
  activations.gradients.resize(count);
  std::vector<bool> written(count, false);
  std::vector<const Tensor*> inputs;
  std::vector<Tensor*> input_grads;
  for (size_t i = count; i-- > 0;) {
    if (!needed[i]) continue;
    const Node& node = nodes_[i];
    inputs.clear();
    input_grads.clear();
    if (activations.scratch.size() < node.inputs.size()) activations.scratch.resize(node.inputs.size());
    // The first reader (from the last node down) writes an input's gradient, later ones write into
    // scratch and add it, so the terms are summed in a fixed order.
    std::vector<bool> add(node.inputs.size(), false);
    for (size_t j = 0; j < node.inputs.size(); ++j) {
      const int input = node.inputs[j];
      inputs.push_back(input == kModelInput ? &x : &activations.outputs[input]);
      if (input == kModelInput || !needed[input]) {
        input_grads.push_back(nullptr);
      } else if (!written[input]) {
        input_grads.push_back(&activations.gradients[input]);
        written[input] = true;
      } else {
        input_grads.push_back(&activations.scratch[j]);
        add[j] = true;
      }
    }
    std::span<Tensor> grads(gradients.data() + first_parameter_[i],
                            static_cast<const Layer&>(*node.layer).parameters().size());
    node.layer->backward_node(inputs, activations.outputs[i],
                              i + 1 == count ? d_output : activations.gradients[i], input_grads, grads,
                              activations.saved[i]);
    for (size_t j = 0; j < node.inputs.size(); ++j) {
      if (!add[j]) continue;
      Tensor& g = activations.gradients[node.inputs[j]];
      const Tensor& part = activations.scratch[j];
      for (int64_t k = 0; k < g.size(); ++k) g[k] += part[k];
    }
  }
}

std::vector<Tensor*> Model::parameters() {
  std::vector<Tensor*> params;
  for (Node& node : nodes_)
    for (Tensor& p : node.layer->parameters()) params.push_back(&p);
  return params;
}

std::vector<Tensor> Model::zero_gradients() const {
  std::vector<Tensor> grads;
  for (const Node& node : nodes_)
    for (const Tensor& p : static_cast<const Layer&>(*node.layer).parameters()) grads.emplace_back(p.shape());
  return grads;
}

std::vector<Tensor*> Model::buffers() {
  std::vector<Tensor*> out;
  for (Node& node : nodes_)
    for (Tensor& b : node.layer->buffers()) out.push_back(&b);
  return out;
}

std::vector<const Tensor*> Model::buffers() const {
  std::vector<const Tensor*> out;
  for (const Node& node : nodes_)
    for (const Tensor& b : static_cast<const Layer&>(*node.layer).buffers()) out.push_back(&b);
  return out;
}

void Model::update_running_statistics(std::span<const Activations* const> shards) {
  std::vector<const SavedTensors*> saved(shards.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].layer->buffers().empty()) continue;
    for (size_t s = 0; s < shards.size(); ++s) saved[s] = &shards[s]->saved.at(i);
    nodes_[i].layer->update_running_statistics(saved);
  }
}

}  // namespace lowbit
