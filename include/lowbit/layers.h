// The layers lowbit trains: Linear, Conv2d, BatchNorm2d, pooling, Flatten, Dropout, Add and the
// element-wise ReLU and LogSoftmax. Shapes are per sample (no batch dimension); images are [C, H, W].
#pragma once

#include <cstdint>
#include <random>
#include <utility>

#include "lowbit/layer.h"

namespace lowbit {

// y = x W^T + b.  x: [batch, in], W: [out, in], b: [out], y: [batch, out].
// Inputs of higher rank ([batch, C, H, W]) are read as [batch, C*H*W].
class Linear final : public UnaryLayer {
 public:
  Linear(int64_t in_features, int64_t out_features);

  std::string kind() const override { return "linear"; }
  nlohmann::json config() const override { return {{"out_features", out_features_}}; }
  Shape output_shape(const Shape& input) const override;
  void forward(const Tensor& x, Tensor& y) const override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                std::span<Tensor> param_grads) const override;
  std::span<Tensor> parameters() override { return params_; }
  using Layer::parameters;
  void init(std::mt19937_64& rng) override { init_uniform(rng); }
  int64_t multiply_adds(std::span<const Shape>) const override { return in_features_ * out_features_; }

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

// A window sliding over [H, W]: kernel, stride and zero padding per axis (dilation 1).
struct Window2d {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;

  // [OH, OW] for an [h, w] input: floor((size + 2 pad - kernel) / stride) + 1 per axis. Throws
  // lowbit::Error when the kernel is larger than the padded input.
  std::pair<int64_t, int64_t> output_size(int64_t h, int64_t w) const;
};

struct ConvGeometry;  // one call's shapes, batch included (src/nn/conv2d_backend.h)

struct Conv2dOptions {
  int64_t out_channels = 1;
  Window2d window;
  int64_t groups = 1;  // in and out channels split into this many independent groups
  bool bias = true;
};

// 2-D convolution (cross-correlation, as PyTorch and ONNX): x: [batch, C, H, W],
// W: [out, C / groups, kh, kw], b: [out] (when bias), y: [batch, out, OH, OW]. groups == C ==
// out is depthwise. Runs on oneDNN's convolution primitives, one thread per call (src/nn/conv2d_onednn.cc).
class Conv2d final : public UnaryLayer {
 public:
  // input: [C, H, W]. Throws lowbit::Error when the options do not fit it.
  Conv2d(const Shape& input, const Conv2dOptions& options);

  std::string kind() const override { return "conv2d"; }
  nlohmann::json config() const override;
  Shape output_shape(const Shape& input) const override;
  void forward(const Tensor& x, Tensor& y) const override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                std::span<Tensor> param_grads) const override;
  std::span<Tensor> parameters() override { return params_; }
  using Layer::parameters;
  // Kaiming normal, fan_out mode, gain sqrt(2) (torchvision's ResNet): std = sqrt(2 / (out * kh *
  // kw)); bias 0.
  void init(std::mt19937_64& rng) override;
  int64_t multiply_adds(std::span<const Shape>) const override;

  const Conv2dOptions& options() const { return options_; }
  int64_t in_channels() const { return input_[0]; }
  int64_t out_channels() const { return options_.out_channels; }
  Tensor& weight() { return params_[0]; }
  const Tensor& weight() const { return params_[0]; }
  bool has_bias() const { return options_.bias; }

 private:
  ConvGeometry geometry(const Tensor& x) const;  // throws unless x holds [batch, C, H, W]

  Shape input_;  // [C, H, W]
  int64_t out_h_, out_w_;
  Conv2dOptions options_;
  std::vector<Tensor> params_;  // weight, then bias when options_.bias
};

// Batch normalization (Ioffe & Szegedy 2015) per channel of [C, ...] (statistics over the batch
// and every axis after C): y = gamma (x - mean) / sqrt(var + epsilon) + beta. Training uses the
// shard's own mean and biased variance (each 32-row shard is its own batch: "ghost batch norm",
// Hoffer et al. 2017) and saves them; evaluation uses the running mean and variance, which
// update_running_statistics moves, once per step, towards the whole batch's mean and unbiased
// variance (PyTorch's momentum rule): running = (1 - momentum) running + momentum batch.
class BatchNorm2d final : public Layer {
 public:
  explicit BatchNorm2d(const Shape& input, float epsilon = 1e-5f, float momentum = 0.1f);

  std::string kind() const override { return "batch_norm"; }
  nlohmann::json config() const override;
  Shape node_output_shape(std::span<const Shape> inputs) const override;
  // Training saves {mean [C], biased variance [C], values per channel [1]}; evaluation saves nothing.
  void forward_node(std::span<const Tensor* const> inputs, Tensor& y, const ForwardMode& mode,
                    SavedTensors& saved) const override;
  void backward_node(std::span<const Tensor* const> inputs, const Tensor& y, const Tensor& dy,
                     std::span<Tensor* const> input_grads, std::span<Tensor> param_grads,
                     const SavedTensors& saved) const override;
  std::span<Tensor> parameters() override { return params_; }
  using Layer::parameters;
  std::span<Tensor> buffers() override { return buffers_; }
  using Layer::buffers;
  // gamma 1, beta 0, running mean 0, running variance 1.
  void init(std::mt19937_64& rng) override;
  void update_running_statistics(std::span<const SavedTensors* const> shards) override;

  int64_t channels() const { return input_[0]; }
  float epsilon() const { return epsilon_; }
  Tensor& gamma() { return params_[0]; }
  Tensor& beta() { return params_[1]; }
  Tensor& running_mean() { return buffers_[0]; }
  Tensor& running_var() { return buffers_[1]; }
  const Tensor& gamma() const { return params_[0]; }
  const Tensor& beta() const { return params_[1]; }
  const Tensor& running_mean() const { return buffers_[0]; }
  const Tensor& running_var() const { return buffers_[1]; }

 private:
  Shape input_;
  float epsilon_, momentum_;
  std::vector<Tensor> params_;   // gamma [C], beta [C]
  std::vector<Tensor> buffers_;  // running mean [C], running variance [C]
};

// Max or average over each window of each channel: x: [batch, C, H, W] -> [batch, C, OH, OW].
// Max pooling skips padding and takes the first maximum on ties; average pooling divides by the
// kernel area when count_include_pad (PyTorch's default), else by the window's cells inside the
// input. Padding is at most half the kernel (as PyTorch requires).
class Pool2d final : public UnaryLayer {
 public:
  enum class Op { max, average };
  Pool2d(Op op, const Shape& input, const Window2d& window, bool count_include_pad = true);

  std::string kind() const override { return op_ == Op::max ? "max_pool2d" : "avg_pool2d"; }
  Op op() const { return op_; }
  const Window2d& window() const { return window_; }
  bool count_include_pad() const { return count_include_pad_; }
  nlohmann::json config() const override;
  Shape output_shape(const Shape& input) const override;
  void forward(const Tensor& x, Tensor& y) const override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                std::span<Tensor> param_grads) const override;

 private:
  Op op_;
  Shape input_;  // [C, H, W]
  Window2d window_;
  bool count_include_pad_;
  int64_t out_h_, out_w_;
};

// Max or average over all of H and W: x: [batch, C, H, W] -> [batch, C, 1, 1] (ONNX's
// GlobalMaxPool / GlobalAveragePool; a Linear after it reads [C]).
class GlobalPool final : public UnaryLayer {
 public:
  GlobalPool(Pool2d::Op op, const Shape& input);

  std::string kind() const override {
    return op_ == Pool2d::Op::max ? "global_max_pool" : "global_avg_pool";
  }
  Shape output_shape(const Shape& input) const override;
  void forward(const Tensor& x, Tensor& y) const override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                std::span<Tensor> param_grads) const override;

 private:
  Pool2d::Op op_;
  Shape input_;  // [C, H, W]
};

// [batch, ...] -> [batch, product of ...] (ONNX Flatten, axis 1). The values do not move.
class Flatten final : public UnaryLayer {
 public:
  std::string kind() const override { return "flatten"; }
  Shape output_shape(const Shape& input) const override { return {shape_numel(input)}; }
  void forward(const Tensor& x, Tensor& y) const override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                std::span<Tensor> param_grads) const override;
};

// Training: each value is zeroed with probability p and the others scaled by 1 / (1 - p) (inverted
// dropout, as PyTorch). The keep/drop draw of value i is a hash of (mode.seed, i): the trainer
// makes mode.seed from (run seed, step, shard) and the model mixes in the node's index, so the
// mask never depends on the thread. Saves the mask (0 or 1 / (1 - p) per value). Evaluation: y = x.
class Dropout final : public Layer {
 public:
  explicit Dropout(float p);

  std::string kind() const override { return "dropout"; }
  nlohmann::json config() const override { return {{"p", p_}}; }
  Shape node_output_shape(std::span<const Shape> inputs) const override;
  void forward_node(std::span<const Tensor* const> inputs, Tensor& y, const ForwardMode& mode,
                    SavedTensors& saved) const override;
  void backward_node(std::span<const Tensor* const> inputs, const Tensor& y, const Tensor& dy,
                     std::span<Tensor* const> input_grads, std::span<Tensor> param_grads,
                     const SavedTensors& saved) const override;
  float p() const { return p_; }

 private:
  float p_;
};

// y = x_0 + x_1 + ... (inputs of one shape, added in input order): a residual block's sum.
class Add final : public Layer {
 public:
  // inputs: two or more identical shapes; throws lowbit::Error otherwise.
  explicit Add(const std::vector<Shape>& inputs);

  std::string kind() const override { return "add"; }
  size_t input_count() const override { return count_; }
  Shape node_output_shape(std::span<const Shape> inputs) const override;
  void forward_node(std::span<const Tensor* const> inputs, Tensor& y, const ForwardMode& mode,
                    SavedTensors& saved) const override;
  void backward_node(std::span<const Tensor* const> inputs, const Tensor& y, const Tensor& dy,
                     std::span<Tensor* const> input_grads, std::span<Tensor> param_grads,
                     const SavedTensors& saved) const override;

 private:
  size_t count_;
  Shape shape_;
};

// y = max(x, 0), any shape.
class ReLU final : public UnaryLayer {
 public:
  std::string kind() const override { return "relu"; }
  Shape output_shape(const Shape& input) const override { return input; }
  void forward(const Tensor& x, Tensor& y) const override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                std::span<Tensor> param_grads) const override;
};

// y = x - log(sum(exp(x))) over the last dimension. x, y: [batch, classes].
class LogSoftmax final : public UnaryLayer {
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
// A standard normal float by Box-Muller from two 53-bit uniforms (std::normal_distribution
// differs between libraries).
float normal_float(std::mt19937_64& rng);
// A 64-bit hash of (seed, value) (SplitMix64's finalizer): seeds for each step, shard and node
// that do not depend on the order in which anything ran.
uint64_t mix_seed(uint64_t seed, uint64_t value);

}  // namespace lowbit
