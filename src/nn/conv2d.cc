// 2-D convolution as im2col and one GEMM (nn/gemm.h) per image and group, forward and backward.
#include <cmath>
#include <tuple>
#include <vector>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "nn/gemm.h"
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

// The image x: [C, H, W] unrolled for one group's channels [c0, c0 + channels): row (c, i, j) of
// cols ([channels * kh * kw, OH * OW]) holds x[c0 + c, oh * sh - ph + i, ow * sw - pw + j], 0 in
// the padding.
void im2col(const float* x, int64_t channels, int64_t h, int64_t w, const Window2d& win,
            int64_t out_h, int64_t out_w, float* cols) {
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < win.kernel_h; ++i)
      for (int64_t j = 0; j < win.kernel_w; ++j) {
        float* row = cols + ((c * win.kernel_h + i) * win.kernel_w + j) * out_h * out_w;
        for (int64_t oh = 0; oh < out_h; ++oh) {
          const int64_t ih = oh * win.stride_h - win.pad_h + i;
          float* out = row + oh * out_w;
          if (ih < 0 || ih >= h) {
            std::fill(out, out + out_w, 0.0f);
            continue;
          }
          const float* in = x + (c * h + ih) * w;
          for (int64_t ow = 0; ow < out_w; ++ow) {
            const int64_t iw = ow * win.stride_w - win.pad_w + j;
            out[ow] = iw >= 0 && iw < w ? in[iw] : 0.0f;
          }
        }
      }
}

// The adjoint of im2col: adds each entry of cols back to the input value it was read from, rows
// in order, so every input gradient sums its terms in a fixed order.
void col2im_add(const float* cols, int64_t channels, int64_t h, int64_t w, const Window2d& win,
                int64_t out_h, int64_t out_w, float* dx) {
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < win.kernel_h; ++i)
      for (int64_t j = 0; j < win.kernel_w; ++j) {
        const float* row = cols + ((c * win.kernel_h + i) * win.kernel_w + j) * out_h * out_w;
        for (int64_t oh = 0; oh < out_h; ++oh) {
          const int64_t ih = oh * win.stride_h - win.pad_h + i;
          if (ih < 0 || ih >= h) continue;
          float* out = dx + (c * h + ih) * w;
          for (int64_t ow = 0; ow < out_w; ++ow) {
            const int64_t iw = ow * win.stride_w - win.pad_w + j;
            if (iw >= 0 && iw < w) out[iw] += row[oh * out_w + ow];
          }
        }
      }
}

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

void Conv2d::forward(const Tensor& x, Tensor& y) const {
  const int64_t batch = x.dim(0), channels = input_[0], h = input_[1], w = input_[2];
  if (x.row_size() != channels * h * w)
    throw Error("conv2d expects " + shape_string(input_) + " inputs, got " + shape_string(x.shape()));
  const int64_t out = options_.out_channels, groups = options_.groups;
  const int64_t group_in = channels / groups, group_out = out / groups;
  const int64_t depth = weight().size() / out, positions = out_h_ * out_w_;
  const Window2d& win = options_.window;
  // A 1x1 convolution without stride or padding reads the image itself as its columns.
  const bool direct = win.kernel_h == 1 && win.kernel_w == 1 && win.stride_h == 1 &&
                      win.stride_w == 1 && win.pad_h == 0 && win.pad_w == 0;
  // Scratch per thread, reused across calls: the layer itself stays const and shared.
  thread_local std::vector<float> cols;
  if (!direct) cols.resize(depth * positions);
  y.resize({batch, out, out_h_, out_w_});
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t g = 0; g < groups; ++g) {
      const float* image = x.data() + (n * channels + g * group_in) * h * w;
      if (!direct) im2col(image, group_in, h, w, win, out_h_, out_w_, cols.data());
      gemm(group_out, positions, depth, weight().data() + g * group_out * depth, depth, false,
           direct ? image : cols.data(), positions, false,
           y.data() + (n * out + g * group_out) * positions, positions, false);
    }
  if (options_.bias)
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t o = 0; o < out; ++o) {
        float* plane = y.data() + (n * out + o) * positions;
        const float b = params_[1][o];
        for (int64_t p = 0; p < positions; ++p) plane[p] += b;
      }
}

void Conv2d::backward(const Tensor& x, const Tensor& /*y*/, const Tensor& dy, Tensor* dx,
                      std::span<Tensor> param_grads) const {
  const int64_t batch = x.dim(0), channels = input_[0], h = input_[1], w = input_[2];
  const int64_t out = options_.out_channels, groups = options_.groups;
  const int64_t group_in = channels / groups, group_out = out / groups;
  const int64_t depth = weight().size() / out, positions = out_h_ * out_w_;
  const Window2d& win = options_.window;
  const bool direct = win.kernel_h == 1 && win.kernel_w == 1 && win.stride_h == 1 &&
                      win.stride_w == 1 && win.pad_h == 0 && win.pad_w == 0;
  thread_local std::vector<float> cols, dcols;
  if (!direct) {
    cols.resize(depth * positions);
    if (dx) dcols.resize(depth * positions);
  }
  if (dx) {
    dx->resize(x.shape());
    dx->fill(0.0f);
  }
  float* dw = param_grads[0].data();
  // Images in order: each weight gradient adds one image's GEMM at a time.
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t g = 0; g < groups; ++g) {
      const float* image = x.data() + (n * channels + g * group_in) * h * w;
      const float* dy_group = dy.data() + (n * out + g * group_out) * positions;
      const float* weight_group = weight().data() + g * group_out * depth;
      if (!direct) im2col(image, group_in, h, w, win, out_h_, out_w_, cols.data());
      // dW_g += dY_g cols^T
      gemm(group_out, depth, positions, dy_group, positions, false, direct ? image : cols.data(),
           positions, true, dw + g * group_out * depth, depth, true);
      if (!dx) continue;
      // dcols = W_g^T dY_g, then back onto the image.
      float* dx_image = dx->data() + (n * channels + g * group_in) * h * w;
      gemm(depth, positions, group_out, weight_group, depth, true, dy_group, positions, false,
           direct ? dx_image : dcols.data(), positions, false);
      if (!direct) col2im_add(dcols.data(), group_in, h, w, win, out_h_, out_w_, dx_image);
    }
  if (options_.bias)
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t o = 0; o < out; ++o) {
        const float* plane = dy.data() + (n * out + o) * positions;
        float sum = 0;
        for (int64_t p = 0; p < positions; ++p) sum += plane[p];
        param_grads[1][o] += sum;
      }
}

}  // namespace lowbit
