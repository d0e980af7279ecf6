// The optimizer base and the choice of optimizer from the training options.
#include "train/optimizer.h"

#include "train/adam.h"
#include "train/sgd.h"

namespace lowbit {

Optimizer::Optimizer(std::span<Tensor* const> params, float lr)
    : params_(params.begin(), params.end()), lr_(lr) {}

std::unique_ptr<Optimizer> make_optimizer(const TrainOptions& options,
                                          std::span<Tensor* const> params) {
  std::unique_ptr<Optimizer> optimizer;
  if (options.optimizer == OptimizerKind::sgd)
    optimizer = std::make_unique<Sgd>(params, options.learning_rate, options.momentum, options.nesterov);
  else
    optimizer = std::make_unique<Adam>(params, options.learning_rate, options.beta1, options.beta2,
                                       options.epsilon, options.optimizer == OptimizerKind::adamw);
  if (options.weight_decay != 0.0f) {
    std::vector<float> decay;
    for (Tensor* p : params)
      decay.push_back(options.decay_bias_and_norm || p->rank() >= 2 ? options.weight_decay : 0.0f);
    optimizer->set_weight_decay(std::move(decay));
  }
  return optimizer;
}

}  // namespace lowbit
