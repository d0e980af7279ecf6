// SGD with momentum and Nesterov momentum as PyTorch's torch.optim.SGD (dampening 0).
#pragma once

#include <span>

#include "train/optimizer.h"

namespace lowbit {

class Sgd : public Optimizer {
 public:
  Sgd(std::span<Tensor* const> params, float lr, float momentum, bool nesterov);
  // d = g + wd p; buf = momentum buf + d (buf = d on the first step);
  // p -= lr (nesterov ? d + momentum buf : buf). momentum 0: p -= lr d.
  void step(std::span<const Tensor> grads) override;

 private:
  float momentum_;
  bool nesterov_;
};

}  // namespace lowbit
