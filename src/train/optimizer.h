// What every optimizer shares: the parameters, per-parameter weight decay, the learning rate and
// the state a checkpoint keeps. make_optimizer picks one from TrainOptions.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "lowbit/tensor.h"
#include "lowbit/train.h"

namespace lowbit {

class Optimizer {
 public:
  explicit Optimizer(std::span<Tensor* const> params, float lr);
  virtual ~Optimizer() = default;
  // grads[i]: dLoss/d params[i], same shapes. Updates the parameters in place.
  virtual void step(std::span<const Tensor> grads) = 0;
  void set_learning_rate(float lr) { lr_ = lr; }  // for schedules
  float learning_rate() const { return lr_; }
  // decay[i]: the weight decay of params[i] (0 excludes it). Default: none.
  void set_weight_decay(std::vector<float> decay) { decay_ = std::move(decay); }

  // Everything a checkpoint needs to continue bit for bit: the moment or momentum tensors and
  // the number of steps taken.
  std::vector<Tensor>& state() { return state_; }
  int64_t steps() const { return t_; }
  void set_steps(int64_t t) { t_ = t; }

 protected:
  float decay(size_t i) const { return decay_.empty() ? 0.0f : decay_[i]; }
  std::vector<Tensor*> params_;
  std::vector<float> decay_;
  std::vector<Tensor> state_;
  float lr_;
  int64_t t_ = 0;
};

// The optimizer `options` names over `params`, with options.weight_decay on every parameter, or
// only on those of rank 2 and more when !options.decay_bias_and_norm.
std::unique_ptr<Optimizer> make_optimizer(const TrainOptions& options,
                                          std::span<Tensor* const> params);

}  // namespace lowbit
