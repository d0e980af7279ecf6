// The adapters between the one-input form and the general form of the layer interface.
#include "lowbit/layer.h"

#include "lowbit/error.h"

namespace lowbit {

Shape Layer::output_shape(const Shape& input) const {
  return node_output_shape(std::span<const Shape>(&input, 1));
}

void Layer::forward(const Tensor& x, Tensor& y) const {
  const Tensor* inputs[] = {&x};
  SavedTensors saved;
  forward_node(inputs, y, ForwardMode{}, saved);
}

void Layer::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                     std::span<Tensor> param_grads) const {
  const Tensor* inputs[] = {&x};
  Tensor* grads[] = {dx};
  // Evaluation mode saves nothing a backward pass needs beyond the input.
  backward_node(inputs, y, dy, grads, param_grads, SavedTensors{});
}

Shape UnaryLayer::node_output_shape(std::span<const Shape> inputs) const {
  if (inputs.size() != 1)
    throw Error(kind() + " takes one input, given " + std::to_string(inputs.size()));
  return output_shape(inputs[0]);
}

void UnaryLayer::forward_node(std::span<const Tensor* const> inputs, Tensor& y, const ForwardMode&,
                              SavedTensors& saved) const {
  saved.clear();
  forward(*inputs[0], y);
}

void UnaryLayer::backward_node(std::span<const Tensor* const> inputs, const Tensor& y,
                               const Tensor& dy, std::span<Tensor* const> input_grads,
                               std::span<Tensor> param_grads, const SavedTensors&) const {
  backward(*inputs[0], y, dy, input_grads[0], param_grads);
}

}  // namespace lowbit
