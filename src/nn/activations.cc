// ReLU and LogSoftmax, forward and backward.
#include <algorithm>
#include <cmath>

#include "lowbit/layers.h"
#include "nn/eigen_view.h"

namespace lowbit {

void ReLU::forward(const Tensor& x, Tensor& y) const {
  y.resize(x.shape());
  as_vector(y) = as_vector(x).cwiseMax(0.0f);
}

void ReLU::backward(const Tensor& x, const Tensor& /*y*/, const Tensor& dy, Tensor* dx,
                    std::span<Tensor>) const {
  if (!dx) return;
  dx->resize(x.shape());
  as_vector(*dx) = (as_vector(x).array() > 0.0f).select(as_vector(dy), 0.0f);
}

void LogSoftmax::forward(const Tensor& x, Tensor& y) const {
  y.resize(x.shape());
  auto X = as_matrix(x);
  auto Y = as_matrix(y);
  for (int64_t i = 0; i < X.rows(); ++i) {
    const float max = X.row(i).maxCoeff();
    const float log_sum = std::log((X.row(i).array() - max).exp().sum()) + max;
    Y.row(i) = X.row(i).array() - log_sum;
  }
}

// With p = exp(y): dx = dy - p * sum(dy) per row.
void LogSoftmax::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                          std::span<Tensor>) const {
  if (!dx) return;
  dx->resize(x.shape());
  auto Y = as_matrix(y);
  auto dY = as_matrix(dy);
  auto dX = as_matrix(*dx);
  for (int64_t i = 0; i < Y.rows(); ++i)
    dX.row(i) = dY.row(i).array() - Y.row(i).array().exp() * dY.row(i).sum();
}

}  // namespace lowbit
