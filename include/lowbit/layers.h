// The layers lowbit trains and quantizes: Linear, ReLU, LogSoftmax.
#pragma once

#include <cstdint>
#include <random>

#include "lowbit/layer.h"

namespace lowbit {

// y = x W^T + b.  x: [batch, in], W: [out, in], b: [out], y: [batch, out].
// Inputs of higher rank ([batch, C, H, W]) are read as [batch, C*H*W].
class Linear final : public Layer {
 public:
  Linear(int64_t in_features, int64_t out_features);

  std::string kind() const override { return "linear"; }
  nlohmann::json config() const override { return {{"out_features", out_features_}}; }
  Shape output_shape(const Shape& input) const override;
  void forward(const Tensor& x, Tensor& y) const override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                std::span<Tensor> param_grads) const override;
  std::span<Tensor> parameters() override { return params_; }

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  Tensor& weight() { return params_[0]; }  // [out, in]
  Tensor& bias() { return params_[1]; }    // [out]
  const Tensor& weight() const { return params_[0]; }
  const Tensor& bias() const { return params_[1]; }

  // PyTorch's default: weight and bias uniform in [-1/sqrt(in), 1/sqrt(in)].
  void init_uniform(std::mt19937_64& rng);

 private:
  int64_t in_features_, out_features_;
  std::vector<Tensor> params_;
};

// y = max(x, 0), any shape.
class ReLU final : public Layer {
 public:
  std::string kind() const override { return "relu"; }
  Shape output_shape(const Shape& input) const override { return input; }
  void forward(const Tensor& x, Tensor& y) const override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                std::span<Tensor> param_grads) const override;
};

// y = x - log(sum(exp(x))) over the last dimension. x, y: [batch, classes].
class LogSoftmax final : public Layer {
 public:
  std::string kind() const override { return "log_softmax"; }
  Shape output_shape(const Shape& input) const override { return input; }
  void forward(const Tensor& x, Tensor& y) const override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                std::span<Tensor> param_grads) const override;
};

// A uniform float in [lo, hi) from 24 random bits: the same on every platform and library,
// unlike std::uniform_real_distribution.
float uniform_float(std::mt19937_64& rng, float lo, float hi);

}  // namespace lowbit
