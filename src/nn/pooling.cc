// Max and average pooling over windows and over whole images, forward and backward.
#include <algorithm>
#include <limits>
#include <tuple>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "nn/json_fields.h"

namespace lowbit {
namespace {

void check_image(const Shape& input, const std::string& kind) {
  if (input.size() != 3) throw Error(kind + " needs a [C, H, W] input, got " + shape_string(input));
}

void check_rows(const Tensor& x, const Shape& input, const std::string& kind) {
  if (x.row_size() != shape_numel(input))
    throw Error(kind + " expects " + shape_string(input) + " inputs, got " + shape_string(x.shape()));
}

}  // namespace

Pool2d::Pool2d(Op op, const Shape& input, const Window2d& window, bool count_include_pad)
    : op_(op), input_(input), window_(window), count_include_pad_(count_include_pad) {
  check_image(input, kind());
  if (window.pad_h * 2 > window.kernel_h || window.pad_w * 2 > window.kernel_w)
    throw Error(kind() + " padding must be at most half the kernel");
  std::tie(out_h_, out_w_) = window.output_size(input[1], input[2]);
}

nlohmann::json Pool2d::config() const {
  nlohmann::json config = {{"kernel", pair_json(window_.kernel_h, window_.kernel_w)},
                           {"stride", pair_json(window_.stride_h, window_.stride_w)},
                           {"padding", pair_json(window_.pad_h, window_.pad_w)}};
  if (op_ == Op::average) config["count_include_pad"] = count_include_pad_;
  return config;
}

Shape Pool2d::output_shape(const Shape& input) const {
  if (input != input_)
    throw Error(kind() + " built for input " + shape_string(input_) + " given " + shape_string(input));
  return {input_[0], out_h_, out_w_};
}

// Visits every output (n, c, oh, ow) in order with the window's bounds clipped to the image.
template <typename Visit>
void for_each_window(int64_t planes, int64_t h, int64_t w, int64_t out_h, int64_t out_w,
                     const Window2d& win, Visit&& visit) {
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t oh = 0; oh < out_h; ++oh)
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const int64_t h0 = oh * win.stride_h - win.pad_h, w0 = ow * win.stride_w - win.pad_w;
        visit(plane, (plane * out_h + oh) * out_w + ow, std::max<int64_t>(h0, 0),
              std::min(h0 + win.kernel_h, h), std::max<int64_t>(w0, 0), std::min(w0 + win.kernel_w, w));
      }
}

namespace {

// Max pooling over 2x2 windows at stride 2 without padding (the presets' only pooling), the
// window's cells in the general loop's order, so both give the same bits; a third of the time.
bool is_max_2x2(Pool2d::Op op, const Window2d& win) {
  return op == Pool2d::Op::max && win.kernel_h == 2 && win.kernel_w == 2 && win.stride_h == 2 &&
         win.stride_w == 2 && win.pad_h == 0 && win.pad_w == 0;
}

void max_2x2_forward(const float* x, int64_t planes, int64_t h, int64_t w, int64_t out_h, int64_t out_w, float* y) {
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const float* top = x + (plane * h + 2 * oh) * w;
      const float* bottom = top + w;
      float* out = y + (plane * out_h + oh) * out_w;
      for (int64_t ow = 0; ow < out_w; ++ow) {
        float best = std::max(-std::numeric_limits<float>::infinity(), top[2 * ow]);
        best = std::max(best, top[2 * ow + 1]);
        best = std::max(best, bottom[2 * ow]);
        out[ow] = std::max(best, bottom[2 * ow + 1]);
      }
    }
}

// The first maximum of each window gets the output's gradient (dx is zero on entry).
void max_2x2_backward(const float* x, const float* dy, int64_t planes, int64_t h, int64_t w, int64_t out_h,
                      int64_t out_w, float* dx) {
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const int64_t row = (plane * h + 2 * oh) * w;
      const float* g = dy + (plane * out_h + oh) * out_w;
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const int64_t cells[4] = {row + 2 * ow, row + 2 * ow + 1, row + w + 2 * ow, row + w + 2 * ow + 1};
        int64_t best = cells[0];
        for (int k = 1; k < 4; ++k) best = x[cells[k]] > x[best] ? cells[k] : best;
        dx[best] += g[ow];
      }
    }
}

}  // namespace

void Pool2d::forward(const Tensor& x, Tensor& y) const {
  check_rows(x, input_, kind());
  const int64_t batch = x.dim(0), h = input_[1], w = input_[2];
  y.resize({batch, input_[0], out_h_, out_w_});
  if (is_max_2x2(op_, window_)) {
    max_2x2_forward(x.data(), batch * input_[0], h, w, out_h_, out_w_, y.data());
    return;
  }
  const float area = static_cast<float>(window_.kernel_h * window_.kernel_w);
  for_each_window(batch * input_[0], h, w, out_h_, out_w_, window_,
                  [&](int64_t plane, int64_t at, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
                    const float* in = x.data() + plane * h * w;
                    if (op_ == Op::max) {
                      float best = -std::numeric_limits<float>::infinity();
                      for (int64_t i = h0; i < h1; ++i)
                        for (int64_t j = w0; j < w1; ++j) best = std::max(best, in[i * w + j]);
                      y[at] = best;
                    } else {
                      float sum = 0;
                      for (int64_t i = h0; i < h1; ++i)
                        for (int64_t j = w0; j < w1; ++j) sum += in[i * w + j];
                      y[at] = sum / (count_include_pad_ ? area : static_cast<float>((h1 - h0) * (w1 - w0)));
                    }
                  });
}

// Max: each output's gradient goes to the first maximum of its window (found again from x).
// Average: spread evenly over the window. Outputs in order, so overlapping windows add in order.
void Pool2d::backward(const Tensor& x, const Tensor& /*y*/, const Tensor& dy, Tensor* dx,
                      std::span<Tensor>) const {
  if (!dx) return;
  const int64_t batch = x.dim(0), h = input_[1], w = input_[2];
  dx->resize(x.shape());
  dx->fill(0.0f);
  if (is_max_2x2(op_, window_)) {
    max_2x2_backward(x.data(), dy.data(), batch * input_[0], h, w, out_h_, out_w_, dx->data());
    return;
  }
  const float area = static_cast<float>(window_.kernel_h * window_.kernel_w);
  for_each_window(batch * input_[0], h, w, out_h_, out_w_, window_,
                  [&](int64_t plane, int64_t at, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
                    const float* in = x.data() + plane * h * w;
                    float* out = dx->data() + plane * h * w;
                    if (op_ == Op::max) {
                      // Selects rather than branches: on real activations the comparison is a
                      // coin toss, and mispredictions made this loop a sixth of cifar_small's step.
                      int64_t best = h0 * w + w0;
                      float best_value = in[best];
                      for (int64_t i = h0; i < h1; ++i)
                        for (int64_t j = w0; j < w1; ++j) {
                          const float v = in[i * w + j];
                          const bool greater = v > best_value;
                          best = greater ? i * w + j : best;
                          best_value = greater ? v : best_value;
                        }
                      out[best] += dy[at];
                    } else {
                      const float g = dy[at] / (count_include_pad_ ? area
                                                                   : static_cast<float>((h1 - h0) * (w1 - w0)));
                      for (int64_t i = h0; i < h1; ++i)
                        for (int64_t j = w0; j < w1; ++j) out[i * w + j] += g;
                    }
                  });
}

GlobalPool::GlobalPool(Pool2d::Op op, const Shape& input) : op_(op), input_(input) {
  check_image(input, kind());
}

Shape GlobalPool::output_shape(const Shape& input) const {
  if (input != input_)
    throw Error(kind() + " built for input " + shape_string(input_) + " given " + shape_string(input));
  return {input_[0], 1, 1};
}

void GlobalPool::forward(const Tensor& x, Tensor& y) const {
  check_rows(x, input_, kind());
  const int64_t batch = x.dim(0), channels = input_[0], area = input_[1] * input_[2];
  y.resize({batch, channels, 1, 1});
  for (int64_t plane = 0; plane < batch * channels; ++plane) {
    const float* in = x.data() + plane * area;
    if (op_ == Pool2d::Op::max) {
      y[plane] = *std::max_element(in, in + area);
    } else {
      float sum = 0;
      for (int64_t i = 0; i < area; ++i) sum += in[i];
      y[plane] = sum / static_cast<float>(area);
    }
  }
}

void GlobalPool::backward(const Tensor& x, const Tensor& /*y*/, const Tensor& dy, Tensor* dx,
                          std::span<Tensor>) const {
  if (!dx) return;
  const int64_t batch = x.dim(0), channels = input_[0], area = input_[1] * input_[2];
  dx->resize(x.shape());
  dx->fill(0.0f);
  for (int64_t plane = 0; plane < batch * channels; ++plane) {
    const float* in = x.data() + plane * area;
    float* out = dx->data() + plane * area;
    if (op_ == Pool2d::Op::max) {
      out[std::max_element(in, in + area) - in] = dy[plane];  // the first maximum
    } else {
      const float g = dy[plane] / static_cast<float>(area);
      for (int64_t i = 0; i < area; ++i) out[i] = g;
    }
  }
}

}  // namespace lowbit
