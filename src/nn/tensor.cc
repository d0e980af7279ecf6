// Tensor shape helpers and storage.
#include "lowbit/tensor.h"

#include <algorithm>
#include <sstream>

#include "lowbit/error.h"

namespace lowbit {

int64_t shape_numel(const Shape& shape) {
  // Loaders validate shapes before they build anything (docs/security.md); this is the backstop
  // that keeps a shape that slipped through from wrapping around to a plausible size.
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n))
      throw Error("shape " + shape_string(shape) + " has a negative dimension or too many elements");
  return n;
}

std::string shape_string(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

Tensor::Tensor(Shape shape) : shape_(std::move(shape)), data_(shape_numel(shape_), 0.0f) {}

Tensor::Tensor(Shape shape, const std::vector<float>& values)
    : shape_(std::move(shape)), data_(values.begin(), values.end()) {
  if (static_cast<int64_t>(data_.size()) != shape_numel(shape_))
    throw Error("tensor of shape " + shape_string(shape_) + " given " +
                std::to_string(data_.size()) + " values");
}

void Tensor::resize(const Shape& shape) {
  shape_ = shape;
  data_.resize(shape_numel(shape_));
}

void Tensor::fill(float value) { std::fill(data_.begin(), data_.end(), value); }

}  // namespace lowbit
