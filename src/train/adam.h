// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019) as PyTorch's torch.optim.Adam and
// torch.optim.AdamW compute them.
#pragma once

#include <span>
#include <vector>

#include "train/optimizer.h"

namespace lowbit {

class Adam : public Optimizer {
 public:
  // decoupled: AdamW's decay, p -= lr * wd * p before the update; else L2, g += wd * p.
  Adam(std::span<Tensor* const> params, float lr, float beta1, float beta2, float epsilon,
       bool decoupled = false);
  // m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
  // param -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
  void step(std::span<const Tensor> grads) override;

 private:
  float beta1_, beta2_, epsilon_;
  bool decoupled_;
  std::vector<float> decayed_;  // scratch: g + wd * p for L2 decay
};

}  // namespace lowbit
