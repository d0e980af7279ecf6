// Reference implementations of the integer engine's pixel, im2col, pooling, add and ReLU operators.
#include "kernels/integer_ops.h"

#include <algorithm>
#include <vector>

#include "kernels/requantize.h"

namespace lowbit::kernels {

void pixels_to_codes(const uint8_t* pixels, int64_t batch, const ImageShape& shape, const uint8_t* table,
                     uint8_t* codes) {
  const int64_t area = shape.h * shape.w, c = shape.c;
  for (int64_t n = 0; n < batch; ++n) {
    const uint8_t* image = pixels + n * area * c;
    uint8_t* out = codes + n * area * c;
    for (int64_t ch = 0; ch < c; ++ch) {
      const uint8_t* lookup = table + ch * 256;
      for (int64_t p = 0; p < area; ++p) out[p * c + ch] = lookup[image[ch * area + p]];
    }
  }
}

void im2col(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& win, const ImageShape& out,
            uint8_t pad_code, uint8_t* cols) {
  const int64_t c = in.c, row = win.kernel_h * win.kernel_w * c;
  for (int64_t n = 0; n < batch; ++n) {
    const uint8_t* image = x + n * in.size();
    for (int64_t oy = 0; oy < out.h; ++oy)
      for (int64_t ox = 0; ox < out.w; ++ox) {
        uint8_t* dst = cols + ((n * out.h + oy) * out.w + ox) * row;
        for (int64_t ky = 0; ky < win.kernel_h; ++ky) {
          const int64_t y = oy * win.stride_h - win.pad_h + ky;
          for (int64_t kx = 0; kx < win.kernel_w; ++kx, dst += c) {
            const int64_t xx = ox * win.stride_w - win.pad_w + kx;
            if (y < 0 || y >= in.h || xx < 0 || xx >= in.w) std::fill_n(dst, c, pad_code);
            else std::copy_n(image + (y * in.w + xx) * c, c, dst);
          }
        }
      }
  }
}

namespace {

// The window's rows and columns inside the image for output (oy, ox): [y0, y1) x [x0, x1).
struct Cells {
  int64_t y0, y1, x0, x1;
};
Cells cells_of(const ImageShape& in, const Window& win, int64_t oy, int64_t ox) {
  const int64_t y = oy * win.stride_h - win.pad_h, x = ox * win.stride_w - win.pad_w;
  return {std::max<int64_t>(y, 0), std::min(y + win.kernel_h, in.h), std::max<int64_t>(x, 0),
          std::min(x + win.kernel_w, in.w)};
}

}  // namespace

void max_pool(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& win, const ImageShape& out,
              uint8_t* y) {
  const int64_t c = in.c;
  for (int64_t n = 0; n < batch; ++n) {
    const uint8_t* image = x + n * in.size();
    for (int64_t oy = 0; oy < out.h; ++oy)
      for (int64_t ox = 0; ox < out.w; ++ox) {
        uint8_t* dst = y + n * out.size() + (oy * out.w + ox) * c;
        std::fill_n(dst, c, uint8_t{0});
        const Cells cells = cells_of(in, win, oy, ox);
        for (int64_t yy = cells.y0; yy < cells.y1; ++yy)
          for (int64_t xx = cells.x0; xx < cells.x1; ++xx) {
            const uint8_t* src = image + (yy * in.w + xx) * c;
            for (int64_t ch = 0; ch < c; ++ch) dst[ch] = std::max(dst[ch], src[ch]);
          }
      }
  }
}

void avg_pool(const uint8_t* x, int64_t batch, const ImageShape& in, const ImageShape& out,
              const AvgPoolArgs& a, uint8_t* y) {
  const int64_t c = in.c;
  std::vector<int32_t> sum(static_cast<size_t>(c));
  for (int64_t n = 0; n < batch; ++n) {
    const uint8_t* image = x + n * in.size();
    for (int64_t oy = 0; oy < out.h; ++oy)
      for (int64_t ox = 0; ox < out.w; ++ox) {
        const Cells cells = cells_of(in, a.window, oy, ox);
        std::fill(sum.begin(), sum.end(), 0);
        for (int64_t yy = cells.y0; yy < cells.y1; ++yy)
          for (int64_t xx = cells.x0; xx < cells.x1; ++xx) {
            const uint8_t* src = image + (yy * in.w + xx) * c;
            for (int64_t ch = 0; ch < c; ++ch) sum[ch] += src[ch];
          }
        const int32_t inside = static_cast<int32_t>((cells.y1 - cells.y0) * (cells.x1 - cells.x0));
        const int64_t d = a.count_include_pad ? a.window.kernel_h * a.window.kernel_w : inside;
        uint8_t* dst = y + n * out.size() + (oy * out.w + ox) * c;
        for (int64_t ch = 0; ch < c; ++ch) {
          const int32_t r = requantize((sum[ch] - inside * a.in_zero_point) * (int32_t{1} << a.sum_shift),
                                      a.multiplier[d - 1], a.shift[d - 1]);
          dst[ch] = clamp_to_u8(r, a.out_zero_point, a.out_min, a.out_max);
        }
      }
  }
}

void add(const AddArgs& a, int64_t n, uint8_t* y) {
  for (int64_t i = 0; i < n; ++i) {
    int32_t raw = 0;
    for (int k = 0; k < a.count; ++k)
      raw += requantize((int32_t{a.x[k][i]} - a.zero_point[k]) * (int32_t{1} << kAddLeftShift), a.multiplier[k],
                        a.shift[k]);
    y[i] = clamp_to_u8(requantize(raw, a.out_multiplier, a.out_shift), a.out_zero_point, a.out_min, a.out_max);
  }
}

void relu(const uint8_t* x, int64_t n, uint8_t zero_point, uint8_t* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::max(x[i], zero_point);
}

}  // namespace lowbit::kernels
