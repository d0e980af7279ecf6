// Flatten, Dropout and Add: layers that reshape, mask or join tensors without parameters.
#include <algorithm>

#include "lowbit/error.h"
#include "lowbit/layers.h"

namespace lowbit {

void Flatten::forward(const Tensor& x, Tensor& y) const {
  y.resize({x.dim(0), x.row_size()});
  std::copy_n(x.data(), x.size(), y.data());
}

void Flatten::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx,
                       std::span<Tensor>) const {
  if (!dx) return;
  dx->resize(x.shape());
  std::copy_n(dy.data(), dy.size(), dx->data());
}

Dropout::Dropout(float p) : p_(p) {
  if (!(p >= 0.0f && p < 1.0f)) throw Error("dropout p must be in [0, 1)");
}

Shape Dropout::node_output_shape(std::span<const Shape> inputs) const {
  if (inputs.size() != 1) throw Error("dropout takes one input");
  return inputs[0];
}

void Dropout::forward_node(std::span<const Tensor* const> inputs, Tensor& y, const ForwardMode& mode,
                           SavedTensors& saved) const {
  const Tensor& x = *inputs[0];
  y.resize(x.shape());
  saved.clear();
  if (!mode.training || p_ == 0.0f) {
    std::copy_n(x.data(), x.size(), y.data());
    return;
  }
  Tensor mask(x.shape());
  const float keep = 1.0f / (1.0f - p_);
  for (int64_t i = 0; i < x.size(); ++i) {
    const float unit = static_cast<float>(mix_seed(mode.seed, static_cast<uint64_t>(i)) >> 40) *
                       (1.0f / 16777216.0f);  // [0, 1), as uniform_float
    mask[i] = unit < p_ ? 0.0f : keep;
    y[i] = x[i] * mask[i];
  }
  saved.push_back(std::move(mask));
}

void Dropout::backward_node(std::span<const Tensor* const> inputs, const Tensor&, const Tensor& dy,
                            std::span<Tensor* const> input_grads, std::span<Tensor>,
                            const SavedTensors& saved) const {
  Tensor* dx = input_grads[0];
  if (!dx) return;
  dx->resize(inputs[0]->shape());
  for (int64_t i = 0; i < dy.size(); ++i) (*dx)[i] = saved.empty() ? dy[i] : dy[i] * saved[0][i];
}

Add::Add(const std::vector<Shape>& inputs) : count_(inputs.size()) {
  if (inputs.size() < 2) throw Error("add needs at least two inputs");
  shape_ = inputs[0];
  node_output_shape(inputs);
}

Shape Add::node_output_shape(std::span<const Shape> inputs) const {
  if (inputs.size() != count_)
    throw Error("add takes " + std::to_string(count_) + " inputs, given " + std::to_string(inputs.size()));
  for (const Shape& s : inputs)
    if (s != shape_)
      throw Error("add cannot sum shapes " + shape_string(shape_) + " and " + shape_string(s));
  return shape_;
}

void Add::forward_node(std::span<const Tensor* const> inputs, Tensor& y, const ForwardMode&,
                       SavedTensors& saved) const {
  saved.clear();
  const int64_t batch = inputs[0]->dim(0), n = shape_numel(shape_);
  for (const Tensor* x : inputs)
    if (x->dim(0) != batch || x->row_size() != n)
      throw Error("add given inputs of " + shape_string(x->shape()) + ", expected " +
                  shape_string(shape_) + " per sample");
  Shape shape = shape_;
  shape.insert(shape.begin(), batch);
  y.resize(shape);
  std::copy_n(inputs[0]->data(), y.size(), y.data());
  for (size_t j = 1; j < inputs.size(); ++j)
    for (int64_t i = 0; i < y.size(); ++i) y[i] += (*inputs[j])[i];
}

void Add::backward_node(std::span<const Tensor* const> inputs, const Tensor&, const Tensor& dy,
                        std::span<Tensor* const> input_grads, std::span<Tensor>,
                        const SavedTensors&) const {
  for (size_t j = 0; j < inputs.size(); ++j)
    if (Tensor* dx = input_grads[j]) {
      dx->resize(inputs[j]->shape());
      std::copy_n(dy.data(), dy.size(), dx->data());
    }
}

}  // namespace lowbit
