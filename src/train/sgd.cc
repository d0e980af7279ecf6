// SGD with momentum over every parameter tensor.
#include "train/sgd.h"

namespace lowbit {

Sgd::Sgd(std::span<Tensor* const> params, float lr, float momentum, bool nesterov)
    : Optimizer(params, lr), momentum_(momentum), nesterov_(nesterov) {
  for (Tensor* p : params_) state_.emplace_back(p->shape());  // momentum buffer of each parameter
}

void Sgd::step(std::span<const Tensor> grads) {
  const bool first = t_ == 0;
  ++t_;
  for (size_t i = 0; i < params_.size(); ++i) {
    float* p = params_[i]->data();
    float* buf = state_[i].data();
    const float* g = grads[i].data();
    const int64_t n = params_[i]->size();
    const float wd = decay(i), mu = momentum_, lr = lr_;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const float d = g[j] + wd * p[j];
      if (mu == 0.0f) {
        p[j] -= lr * d;
        continue;
      }
      buf[j] = first ? d : mu * buf[j] + d;
      p[j] -= lr * (nesterov_ ? d + mu * buf[j] : buf[j]);
    }
  }
}

}  // namespace lowbit
