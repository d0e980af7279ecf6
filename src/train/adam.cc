// Adam and AdamW updates over every parameter tensor.
#include "train/adam.h"

#include <cmath>

namespace lowbit {

Adam::Adam(std::span<Tensor* const> params, float lr, float beta1, float beta2, float epsilon,
           bool decoupled)
    : Optimizer(params, lr), beta1_(beta1), beta2_(beta2), epsilon_(epsilon), decoupled_(decoupled) {
  for (Tensor* p : params_) state_.emplace_back(p->shape());  // m of each parameter
  for (Tensor* p : params_) state_.emplace_back(p->shape());  // v of each parameter
}

void Adam::step(std::span<const Tensor> grads) {
  ++t_;
  const float bias1 = 1.0f - std::pow(beta1_, static_cast<float>(t_));
  const float bias2 = 1.0f - std::pow(beta2_, static_cast<float>(t_));
  const float step_size = lr_ / bias1;
  const float inv_sqrt_bias2 = 1.0f / std::sqrt(bias2);
  for (size_t i = 0; i < params_.size(); ++i) {
    float* p = params_[i]->data();
    float* m = state_[i].data();
    float* v = state_[params_.size() + i].data();
    const float* g = grads[i].data();
    const int64_t n = params_[i]->size();
    const float wd = decay(i);
    if (wd != 0.0f && decoupled_) {
      const float keep = 1.0f - lr_ * wd;
      for (int64_t j = 0; j < n; ++j) p[j] *= keep;
    } else if (wd != 0.0f) {
      decayed_.resize(n);
      for (int64_t j = 0; j < n; ++j) decayed_[j] = g[j] + wd * p[j];
      g = decayed_.data();
    }
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      m[j] = beta1_ * m[j] + (1.0f - beta1_) * g[j];
      v[j] = beta2_ * v[j] + (1.0f - beta2_) * g[j] * g[j];
      p[j] -= step_size * m[j] / (std::sqrt(v[j]) * inv_sqrt_bias2 + epsilon_);
    }
  }
}

}  // namespace lowbit
