// Adam (Kingma & Ba 2015) exactly as PyTorch's torch.optim.Adam without weight decay.
#pragma once

#include <span>
#include <vector>

#include "lowbit/tensor.h"

namespace lowbit {

class Adam {
 public:
  Adam(std::span<Tensor* const> params, float lr, float beta1, float beta2, float epsilon);
  // param -= lr * m_hat / (sqrt(v_hat) + eps), with bias-corrected moments.
  void step(std::span<const Tensor> grads);
  void set_learning_rate(float lr) { lr_ = lr; }  // for schedules (QAT decays it)

 private:
  std::vector<Tensor*> params_;
  std::vector<Tensor> m_, v_;
  float lr_, beta1_, beta2_, epsilon_;
  int64_t t_ = 0;
};

}  // namespace lowbit
