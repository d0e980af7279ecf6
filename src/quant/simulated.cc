// Fake-quantized float forward pass: the study's way of measuring a quantized model.
#include "lowbit/simulated.h"

#include "lowbit/layers.h"
#include "quant/inference_graph.h"

namespace lowbit {
namespace {

// The plan's dequantized weights and biases into the weighted layers of `model`.
void set_weights(Model& model, const QuantPlan& plan) {
  for (const QuantizedLinearPlan& q : plan.layers) {
    Layer& layer = model.layer(q.layer);
    Tensor& weight = layer.parameters()[0];
    Tensor& bias = layer.parameters()[1];
    for (int64_t o = 0; o < q.out_features; ++o) {
      for (int64_t k = 0; k < q.in_features; ++k) {
        const int64_t at = o * q.in_features + k;
        weight[at] = q.weight_params(o).dequantize(q.weight_codes[at]);
      }
      bias[o] = q.bias[o];
    }
  }
}

}  // namespace

SimulatedModel::SimulatedModel(const Model& model, const QuantPlan& plan)
    : model_(plan.graph ? inference_graph(model) : model.clone()), input_(model_.layer_count()),
      graph_(plan.graph) {
  set_weights(model_, plan);
  if (!graph_ || plan.only_listed_layers) {
    for (const QuantizedLinearPlan& q : plan.layers) input_[q.layer] = q.input;
    return;
  }
  graph_input_ = plan.input;
  output_ = plan.node_output;
}

void SimulatedModel::forward(const Tensor& x, Tensor& log_probs) const {
  if (!graph_) {
    Tensor current = x, next;
    for (size_t i = 0; i < model_.layer_count(); ++i) {
      if (input_[i])
        for (float& v : current.values()) v = input_[i]->fake_quantize(v);
      model_.layer(i).forward(current, next);
      std::swap(current, next);
    }
    log_probs = std::move(current);
    return;
  }
  Shape shape = {x.dim(0)};
  for (int64_t d : model_.input_shape()) shape.push_back(d);
  Tensor input(shape, std::vector<float>(x.data(), x.data() + x.size()));
  if (graph_input_)
    for (float& v : input.values()) v = graph_input_->fake_quantize(v);
  std::vector<Tensor> outputs(model_.node_count());
  SavedTensors saved;
  Tensor own_input;  // a planned layer's input on its grid, when only the listed layers are
  for (size_t i = 0; i < model_.node_count(); ++i) {
    std::vector<const Tensor*> inputs;
    for (int t : model_.node_inputs(i)) inputs.push_back(t == Model::kModelInput ? &input : &outputs[t]);
    if (input_[i]) {
      own_input = *inputs[0];
      for (float& v : own_input.values()) v = input_[i]->fake_quantize(v);
      inputs[0] = &own_input;
    }
    model_.layer(i).forward_node(inputs, outputs[i], ForwardMode{}, saved);
    if (i < output_.size() && output_[i])
      for (float& v : outputs[i].values()) v = output_[i]->fake_quantize(v);
  }
  log_probs = std::move(outputs.back());
}

}  // namespace lowbit
