// Building a layer sequence from its JSON description, and running it forward.
#include "lowbit/model.h"

#include <random>

#include "lowbit/error.h"
#include "lowbit/layers.h"

namespace lowbit {
namespace {

// The one place that maps a description's "kind" to a layer class.
std::unique_ptr<Layer> make_layer(const nlohmann::json& spec, const Shape& input) {
  if (!spec.is_object() || !spec.contains("kind") || !spec["kind"].is_string())
    throw Error("model description: each layer needs a string \"kind\"");
  const std::string kind = spec["kind"];
  if (kind == "linear") {
    if (!spec.contains("out_features") || !spec["out_features"].is_number_integer())
      throw Error("model description: linear layer needs an integer \"out_features\"");
    const int64_t out = spec["out_features"];
    if (out <= 0 || out > (1 << 20))
      throw Error("model description: linear out_features " + std::to_string(out) +
                  " is out of range");
    return std::make_unique<Linear>(shape_numel(input), out);
  }
  if (kind == "relu") return std::make_unique<ReLU>();
  if (kind == "log_softmax") return std::make_unique<LogSoftmax>();
  throw Error("model description: unknown layer kind \"" + kind + "\"");
}

}  // namespace

Model Model::from_description(const nlohmann::json& description) {
  if (!description.is_object() || !description.contains("input_shape") ||
      !description["input_shape"].is_array() || !description.contains("layers") ||
      !description["layers"].is_array())
    throw Error("model description: needs \"input_shape\" and \"layers\" arrays");
  Model model;
  for (const auto& d : description["input_shape"]) {
    if (!d.is_number_integer() || d.get<int64_t>() <= 0 || d.get<int64_t>() > 65536)
      throw Error("model description: input_shape must hold positive integers");
    model.input_shape_.push_back(d.get<int64_t>());
  }
  if (model.input_shape_.empty() || model.input_size() > (int64_t{1} << 24))
    throw Error("model description: input_shape " + shape_string(model.input_shape_) +
                " is out of range");
  Shape shape = model.input_shape_;
  for (const auto& spec : description["layers"]) {
    auto layer = make_layer(spec, shape);
    shape = layer->output_shape(shape);
    model.layers_.push_back(std::move(layer));
  }
  if (model.layers_.empty()) throw Error("model description: no layers");
  return model;
}

nlohmann::json Model::fc_nn_description(const Shape& input_shape, int64_t classes) {
  return {{"name", "fc_nn"},
          {"input_shape", input_shape},
          {"layers",
           {{{"kind", "linear"}, {"out_features", 64}},
            {{"kind", "relu"}},
            {{"kind", "linear"}, {"out_features", 32}},
            {{"kind", "relu"}},
            {{"kind", "linear"}, {"out_features", classes}},
            {{"kind", "log_softmax"}}}}};
}

nlohmann::json Model::description() const {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& layer : layers_) {
    nlohmann::json spec = layer->config();
    spec["kind"] = layer->kind();
    layers.push_back(spec);
  }
  return {{"input_shape", input_shape_}, {"layers", layers}};
}

Model Model::clone() const {
  Model copy = from_description(description());
  for (size_t i = 0; i < layers_.size(); ++i) {
    auto src = static_cast<const Layer&>(*layers_[i]).parameters();
    auto dst = copy.layers_[i]->parameters();
    for (size_t p = 0; p < src.size(); ++p) dst[p] = src[p];
  }
  copy.metadata = metadata;
  return copy;
}

Shape Model::output_shape() const {
  Shape shape = input_shape_;
  for (const auto& layer : layers_) shape = layer->output_shape(shape);
  return shape;
}

void Model::init(uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (auto& layer : layers_)
    if (auto* linear = dynamic_cast<Linear*>(layer.get())) linear->init_uniform(rng);
}

int64_t Model::parameter_count() const {
  int64_t n = 0;
  for (const auto& layer : layers_)
    for (const Tensor& p : static_cast<const Layer&>(*layer).parameters()) n += p.size();
  return n;
}

const Tensor& Model::forward(const Tensor& x, Activations& activations) const {
  activations.outputs.resize(layers_.size());
  const Tensor* input = &x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    layers_[i]->forward(*input, activations.outputs[i]);
    input = &activations.outputs[i];
  }
  return *input;
}

void Model::backward(const Tensor& x, const Activations& activations, const Tensor& d_output,
                     std::vector<Tensor>& gradients, Tensor (&scratch)[2]) const {
  // Parameter offsets per layer into `gradients`.
  std::vector<size_t> first(layers_.size() + 1, 0);
  for (size_t i = 0; i < layers_.size(); ++i)
    first[i + 1] = first[i] + static_cast<const Layer&>(*layers_[i]).parameters().size();
  const Tensor* dy = &d_output;
  for (size_t i = layers_.size(); i-- > 0;) {
    const Tensor& input = i == 0 ? x : activations.outputs[i - 1];
    Tensor* dx = i == 0 ? nullptr : &scratch[i % 2];
    std::span<Tensor> grads(gradients.data() + first[i], first[i + 1] - first[i]);
    layers_[i]->backward(input, activations.outputs[i], *dy, dx, grads);
    dy = dx;
  }
}

std::vector<Tensor*> Model::parameters() {
  std::vector<Tensor*> params;
  for (auto& layer : layers_)
    for (Tensor& p : layer->parameters()) params.push_back(&p);
  return params;
}

std::vector<Tensor> Model::zero_gradients() const {
  std::vector<Tensor> grads;
  for (const auto& layer : layers_)
    for (const Tensor& p : static_cast<const Layer&>(*layer).parameters()) grads.emplace_back(p.shape());
  return grads;
}

}  // namespace lowbit
