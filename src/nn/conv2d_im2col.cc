// Convolution as im2col and one fixed-order GEMM (nn/gemm.h) per image and group: the reference
// the oneDNN path is tested against.
#include <algorithm>
#include <vector>

#include "nn/conv2d_backend.h"
#include "nn/gemm.h"

namespace lowbit {
namespace {

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

struct Sizes {
  int64_t group_in, group_out, depth, positions;
  bool direct;  // a 1x1 convolution without stride or padding reads the image as its columns
};

Sizes sizes_of(const ConvGeometry& g) {
  const Window2d& win = g.window;
  const int64_t group_in = g.channels / g.groups;
  return {group_in, g.out / g.groups, group_in * win.kernel_h * win.kernel_w, g.out_h * g.out_w,
          win.kernel_h == 1 && win.kernel_w == 1 && win.stride_h == 1 && win.stride_w == 1 &&
              win.pad_h == 0 && win.pad_w == 0};
}

// The GEMM operand of group k of image n: the input itself for a plain 1x1 convolution, else its
// im2col columns in `cols` ([depth, positions]).
const float* columns(const ConvGeometry& g, const Sizes& s, const float* x, int64_t n, int64_t k,
                     std::vector<float>& cols) {
  const float* image = x + (n * g.channels + k * s.group_in) * g.h * g.w;
  if (s.direct) return image;
  im2col(image, s.group_in, g.h, g.w, g.window, g.out_h, g.out_w, cols.data());
  return cols.data();
}

}  // namespace

void conv2d_forward_im2col(const ConvGeometry& g, const float* x, const float* weight, float* y) {
  const Sizes s = sizes_of(g);
  // Scratch per thread, reused across calls: the layer itself stays const and shared.
  thread_local std::vector<float> cols;
  if (!s.direct) cols.resize(s.depth * s.positions);
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t k = 0; k < g.groups; ++k)
      gemm(s.group_out, s.positions, s.depth, weight + k * s.group_out * s.depth, s.depth, false,
           columns(g, s, x, n, k, cols), s.positions, false,
           y + (n * g.out + k * s.group_out) * s.positions, s.positions, false);
}

void conv2d_backward_data_im2col(const ConvGeometry& g, const float* weight, const float* dy, float* dx) {
  const Sizes s = sizes_of(g);
  thread_local std::vector<float> dcols;
  if (!s.direct) dcols.resize(s.depth * s.positions);
  std::fill(dx, dx + g.batch * g.channels * g.h * g.w, 0.0f);
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t k = 0; k < g.groups; ++k) {
      const float* dy_group = dy + (n * g.out + k * s.group_out) * s.positions;
      float* dx_image = dx + (n * g.channels + k * s.group_in) * g.h * g.w;
      // dcols = W_g^T dY_g, then back onto the image.
      gemm(s.depth, s.positions, s.group_out, weight + k * s.group_out * s.depth, s.depth, true,
           dy_group, s.positions, false, s.direct ? dx_image : dcols.data(), s.positions, false);
      if (!s.direct) col2im_add(dcols.data(), s.group_in, g.h, g.w, g.window, g.out_h, g.out_w, dx_image);
    }
}

void conv2d_backward_weights_im2col(const ConvGeometry& g, const float* x, const float* dy, float* dweight) {
  const Sizes s = sizes_of(g);
  thread_local std::vector<float> cols;
  if (!s.direct) cols.resize(s.depth * s.positions);
  // Images in order: each weight gradient adds one image's GEMM at a time.
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t k = 0; k < g.groups; ++k) {
      // dW_g += dY_g cols^T
      gemm(s.group_out, s.depth, s.positions, dy + (n * g.out + k * s.group_out) * s.positions,
           s.positions, false, columns(g, s, x, n, k, cols), s.positions, true,
           dweight + k * s.group_out * s.depth, s.depth, true);
    }
}

}  // namespace lowbit
