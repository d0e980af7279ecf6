// 2-D convolution: shapes, parameters and bias here; the convolutions through oneDNN
// (nn/conv2d_onednn.cc).
#include <cmath>
#include <tuple>
#include <vector>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "nn/conv2d_backend.h"
#include "nn/json_fields.h"

namespace lowbit {

std::pair<int64_t, int64_t> Window2d::output_size(int64_t h, int64_t w) const {
  if (kernel_h <= 0 || kernel_w <= 0 || stride_h <= 0 || stride_w <= 0 || pad_h < 0 || pad_w < 0)
    throw Error("kernel and stride must be positive and padding not negative");
  if (kernel_h > h + 2 * pad_h || kernel_w > w + 2 * pad_w)
    throw Error("kernel " + std::to_string(kernel_h) + "x" + std::to_string(kernel_w) +
                " is larger than the padded input " + std::to_string(h + 2 * pad_h) + "x" +
                std::to_string(w + 2 * pad_w));
  return {(h + 2 * pad_h - kernel_h) / stride_h + 1, (w + 2 * pad_w - kernel_w) / stride_w + 1};
}

namespace {

// Largest weight tensor and per-sample activation a description may ask for (2^28 floats, 1 GiB).
constexpr int64_t kMaxValues = int64_t{1} << 28;

}  // namespace

Conv2d::Conv2d(const Shape& input, const Conv2dOptions& options) : input_(input), options_(options) {
  if (input.size() != 3)
    throw Error("conv2d needs a [C, H, W] input, got " + shape_string(input));
  const int64_t channels = input[0], out = options.out_channels, groups = options.groups;
  if (out <= 0 || out > (1 << 20))
    throw Error("conv2d out_channels " + std::to_string(out) + " is out of range");
  if (groups <= 0 || channels % groups != 0 || out % groups != 0)
    throw Error("conv2d groups " + std::to_string(groups) + " must divide both the " +
                std::to_string(channels) + " input channels and the " + std::to_string(out) +
                " output channels");
  const Window2d& win = options.window;
  std::tie(out_h_, out_w_) = win.output_size(input[1], input[2]);
  if (win.kernel_h > 1024 || win.kernel_w > 1024 || win.stride_h > 1024 || win.stride_w > 1024 ||
      win.pad_h > 1024 || win.pad_w > 1024)
    throw Error("conv2d kernel, stride or padding is out of range");
  const int64_t weights = out * (channels / groups) * win.kernel_h * win.kernel_w;
  if (weights > kMaxValues || out * out_h_ * out_w_ > kMaxValues ||
      (channels / groups) * win.kernel_h * win.kernel_w * out_h_ * out_w_ > kMaxValues)
    throw Error("conv2d is too large");
  params_.emplace_back(Shape{out, channels / groups, win.kernel_h, win.kernel_w});
  if (options.bias) params_.emplace_back(Shape{out});
}

nlohmann::json Conv2d::config() const {
  const Window2d& w = options_.window;
  return {{"out_channels", options_.out_channels},
          {"kernel", pair_json(w.kernel_h, w.kernel_w)},
          {"stride", pair_json(w.stride_h, w.stride_w)},
          {"padding", pair_json(w.pad_h, w.pad_w)},
          {"groups", options_.groups},
          {"bias", options_.bias}};
}

Shape Conv2d::output_shape(const Shape& input) const {
  if (input != input_)
    throw Error("conv2d built for input " + shape_string(input_) + " given " + shape_string(input));
  return {options_.out_channels, out_h_, out_w_};
}

int64_t Conv2d::multiply_adds(std::span<const Shape>) const {
  return options_.out_channels * out_h_ * out_w_ * (weight().size() / options_.out_channels);
}

void Conv2d::init(std::mt19937_64& rng) {
  const Window2d& w = options_.window;
  const float std = std::sqrt(2.0f / static_cast<float>(options_.out_channels * w.kernel_h * w.kernel_w));
  for (float& v : weight().values()) v = std * normal_float(rng);
  if (options_.bias) params_[1].fill(0.0f);
}

ConvGeometry Conv2d::geometry(const Tensor& x) const {
  const int64_t channels = input_[0], h = input_[1], w = input_[2];
  if (x.rank() < 1 || x.row_size() != channels * h * w)
    throw Error("conv2d expects " + shape_string(input_) + " inputs, got " + shape_string(x.shape()));
  return {x.dim(0), channels, h, w, options_.out_channels, out_h_, out_w_, options_.groups, options_.window};
}

void Conv2d::forward(const Tensor& x, Tensor& y) const {
  const ConvGeometry g = geometry(x);
  y.resize({g.batch, g.out, g.out_h, g.out_w});
  conv2d_forward_onednn(g, x.data(), weight().data(), y.data());
  if (!options_.bias) return;
  const int64_t positions = g.out_h * g.out_w;
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t o = 0; o < g.out; ++o) {
      float* plane = y.data() + (n * g.out + o) * positions;
      const float b = params_[1][o];
      for (int64_t p = 0; p < positions; ++p) plane[p] += b;
    }
}

void Conv2d::backward(const Tensor& x, const Tensor& /*y*/, const Tensor& dy, Tensor* dx,
                      std::span<Tensor> param_grads) const {
  const ConvGeometry g = geometry(x);
  if (dx) dx->resize(x.shape());
  conv2d_backward_onednn(g, x.data(), weight().data(), dy.data(), dx ? dx->data() : nullptr,
                         param_grads[0].data());
  if (!options_.bias) return;
  const int64_t positions = g.out_h * g.out_w;
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t o = 0; o < g.out; ++o) {
      const float* plane = dy.data() + (n * g.out + o) * positions;
      float sum = 0;
      for (int64_t p = 0; p < positions; ++p) sum += plane[p];
      param_grads[1][o] += sum;
    }
}

}  // namespace lowbit
