// Fully connected layer, forward and backward through Eigen.
#include <cmath>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "nn/eigen_view.h"

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
  auto X = as_matrix(x);
  ConstMatrixView W(weight().data(), out_features_, in_features_);
  auto Y = as_matrix(y);
  Y.noalias() = X * W.transpose();
  Y.rowwise() += as_vector(bias()).transpose();
}

void Linear::backward(const Tensor& x, const Tensor& /*y*/, const Tensor& dy, Tensor* dx,
                      std::span<Tensor> param_grads) const {
  auto X = as_matrix(x);
  auto dY = as_matrix(dy);
  MatrixView dW(param_grads[0].data(), out_features_, in_features_);
  dW.noalias() += dY.transpose() * X;
  as_vector(param_grads[1]) += dY.colwise().sum().transpose();
  if (dx) {
    dx->resize(x.shape());
    ConstMatrixView W(weight().data(), out_features_, in_features_);
    as_matrix(*dx).noalias() = dY * W;
  }
}

float uniform_float(std::mt19937_64& rng, float lo, float hi) {
  const float unit = static_cast<float>(rng() >> 40) * (1.0f / 16777216.0f);  // [0, 1)
  return lo + (hi - lo) * unit;
}

void Linear::init_uniform(std::mt19937_64& rng) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(in_features_));
  for (Tensor& p : params_)
    for (float& v : p.values()) v = uniform_float(rng, -bound, bound);
}

}  // namespace lowbit
