// Fully connected layer: products through nn/gemm.h, bias terms through Eigen.
#include <cmath>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "nn/eigen_view.h"
#include "nn/gemm.h"

namespace lowbit {

Linear::Linear(int64_t in_features, int64_t out_features)
    : in_features_(in_features), out_features_(out_features) {
  if (in_features <= 0 || out_features <= 0)
    throw Error("linear layer needs positive sizes, got " + std::to_string(in_features) + " -> " +
                std::to_string(out_features));
  params_.emplace_back(Shape{out_features, in_features});
  params_.emplace_back(Shape{out_features});
}

Shape Linear::output_shape(const Shape& input) const {
  if (shape_numel(input) != in_features_)
    throw Error("linear layer expects " + std::to_string(in_features_) + " inputs, got shape " +
                shape_string(input));
  return {out_features_};
}

void Linear::forward(const Tensor& x, Tensor& y) const {
  const int64_t batch = x.dim(0);
  y.resize({batch, out_features_});
  // Y = X W^T
  gemm(batch, out_features_, in_features_, x.data(), in_features_, false, weight().data(),
       in_features_, true, y.data(), out_features_, false);
  as_matrix(y).rowwise() += as_vector(bias()).transpose();
}

void Linear::backward(const Tensor& x, const Tensor& /*y*/, const Tensor& dy, Tensor* dx,
                      std::span<Tensor> param_grads) const {
  const int64_t batch = x.dim(0);
  // dW += dY^T X
  gemm(out_features_, in_features_, batch, dy.data(), out_features_, true, x.data(), in_features_,
       false, param_grads[0].data(), in_features_, true);
  // Eigen sums the columns in an order fixed by the shape (unaligned packets, rows in order).
  as_vector(param_grads[1]) += as_matrix(dy).colwise().sum().transpose();
  if (dx) {
    // dX = dY W
    dx->resize(x.shape());
    gemm(batch, in_features_, out_features_, dy.data(), out_features_, false, weight().data(),
         in_features_, false, dx->data(), in_features_, false);
  }
}

void Linear::init_uniform(std::mt19937_64& rng) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(in_features_));
  for (Tensor& p : params_)
    for (float& v : p.values()) v = uniform_float(rng, -bound, bound);
}

}  // namespace lowbit
