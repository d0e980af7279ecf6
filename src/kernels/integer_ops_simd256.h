// 256-bit versions of the integer engine's operators besides the GEMM (contracts in integer_ops.h),
// shared by integer_ops_avx2.cc and integer_ops_avx512.cc. Include only from ISA files: everything
// here has internal linkage on purpose, so each file gets its own copy compiled with its own flags.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/integer_ops.h"
#include "kernels/qlinear_simd256.h"
#include "kernels/requantize.h"

namespace lowbit::kernels {
namespace {

inline __m256i load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline void store32(uint8_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
inline __m128i load16(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline void store16(uint8_t* p, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// n bytes from s to d, reading and writing nothing outside them: full vectors, then one vector
// ending at n (overlapping what was already copied), down to 8-, 4-byte pairs and single bytes.
inline void copy_bytes(uint8_t* d, const uint8_t* s, int64_t n) {
  if (n >= 32) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) store32(d + i, load32(s + i));
    if (i < n) store32(d + n - 32, load32(s + n - 32));
  } else if (n >= 16) {
    const __m128i a = load16(s), b = load16(s + n - 16);
    store16(d, a), store16(d + n - 16, b);
  } else if (n >= 8) {
    uint64_t a, b;
    std::memcpy(&a, s, 8), std::memcpy(&b, s + n - 8, 8);
    std::memcpy(d, &a, 8), std::memcpy(d + n - 8, &b, 8);
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, s, 4), std::memcpy(&b, s + n - 4, 4);
    std::memcpy(d, &a, 4), std::memcpy(d + n - 4, &b, 4);
  } else {
    for (int64_t i = 0; i < n; ++i) d[i] = s[i];
  }
}

inline void fill_bytes(uint8_t* d, uint8_t v, int64_t n) {
  if (n >= 32) {
    const __m256i b = _mm256_set1_epi8(static_cast<char>(v));
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) store32(d + i, b);
    if (i < n) store32(d + n - 32, b);
  } else {
    std::memset(d, v, static_cast<size_t>(n));
  }
}

// The window's cells inside the image for output (oy, ox): [y0, y1) x [x0, x1).
struct Cells {
  int64_t y0, y1, x0, x1;
};
inline Cells cells_of(const ImageShape& in, const Window& w, int64_t oy, int64_t ox) {
  const int64_t y = oy * w.stride_h - w.pad_h, x = ox * w.stride_w - w.pad_w;
  return {max64(y, 0), min64(y + w.kernel_h, in.h), max64(x, 0), min64(x + w.kernel_w, in.w)};
}

// Four groups of 8 int32 (each within [0, 255]) -> 32 bytes in order.
inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i bytes = _mm256_packus_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  // Per 128-bit lane the packs interleave 4-lane pieces: a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7.
  return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline void pixels_to_codes_u8_256(const uint8_t* pixels, int64_t batch, const ImageShape& shape,
                              const uint8_t* table, uint8_t* codes) {
  // A byte lookup in a 256-entry table has no AVX2 instruction; the work is the interleave, done
  // here a pixel at a time over all channels so each output byte is written once, in order.
  const int64_t area = shape.h * shape.w, c = shape.c;
  for (int64_t n = 0; n < batch; ++n) {
    const uint8_t* image = pixels + n * area * c;
    uint8_t* out = codes + n * area * c;
    if (c == 3) {
      const uint8_t *r = image, *g = image + area, *b = image + 2 * area;
      const uint8_t *tr = table, *tg = table + 256, *tb = table + 512;
      for (int64_t p = 0; p < area; ++p, out += 3) {
        out[0] = tr[r[p]];
        out[1] = tg[g[p]];
        out[2] = tb[b[p]];
      }
      continue;
    }
    for (int64_t p = 0; p < area; ++p, out += c)
      for (int64_t ch = 0; ch < c; ++ch) out[ch] = table[ch * 256 + image[ch * area + p]];
  }
}

inline void im2col_u8_256(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& win,
                     const ImageShape& out, uint8_t pad_code, uint8_t* cols) {
  const int64_t c = in.c, image_size = in.h * in.w * c, segment = win.kernel_w * c;
  uint8_t* dst = cols;
  for (int64_t n = 0; n < batch; ++n) {
    const uint8_t* image = x + n * image_size;
    for (int64_t oy = 0; oy < out.h; ++oy)
      for (int64_t ox = 0; ox < out.w; ++ox) {
        const int64_t x0 = ox * win.stride_w - win.pad_w;
        const bool columns_inside = x0 >= 0 && x0 + win.kernel_w <= in.w;
        for (int64_t ky = 0; ky < win.kernel_h; ++ky, dst += segment) {
          const int64_t y = oy * win.stride_h - win.pad_h + ky;
          if (y < 0 || y >= in.h) {
            fill_bytes(dst, pad_code, segment);
          } else if (columns_inside) {  // the kernel's row is contiguous in NHWC
            copy_bytes(dst, image + (y * in.w + x0) * c, segment);
          } else {
            for (int64_t kx = 0; kx < win.kernel_w; ++kx) {
              const int64_t xx = x0 + kx;
              if (xx < 0 || xx >= in.w) fill_bytes(dst + kx * c, pad_code, c);
              else copy_bytes(dst + kx * c, image + (y * in.w + xx) * c, c);
            }
          }
        }
      }
  }
}

inline void max_pool_u8_256(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& win,
                       const ImageShape& out, uint8_t* y) {
  const int64_t c = in.c, in_size = in.h * in.w * c, out_size = out.h * out.w * c;
  for (int64_t n = 0; n < batch; ++n) {
    const uint8_t* image = x + n * in_size;
    for (int64_t oy = 0; oy < out.h; ++oy)
      for (int64_t ox = 0; ox < out.w; ++ox) {
        uint8_t* dst = y + n * out_size + (oy * out.w + ox) * c;
        const Cells cells = cells_of(in, win, oy, ox);
        // Channels in vectors of 32 (16), the last one ending at c and overlapping the one before:
        // recomputing a max gives the same byte.
        if (c >= 16) {
          const int64_t step = c >= 32 ? 32 : 16;
          for (int64_t j = 0;; j += step) {
            if (j + step > c) j = c - step;
            __m256i m = _mm256_setzero_si256();
            for (int64_t yy = cells.y0; yy < cells.y1; ++yy)
              for (int64_t xx = cells.x0; xx < cells.x1; ++xx) {
                const uint8_t* src = image + (yy * in.w + xx) * c + j;
                m = _mm256_max_epu8(m, step == 32 ? load32(src) : _mm256_castsi128_si256(load16(src)));
              }
            if (step == 32) store32(dst + j, m);
            else store16(dst + j, _mm256_castsi256_si128(m));
            if (j + step >= c) break;
          }
          continue;
        }
        for (int64_t ch = 0; ch < c; ++ch) dst[ch] = 0;
        for (int64_t yy = cells.y0; yy < cells.y1; ++yy)
          for (int64_t xx = cells.x0; xx < cells.x1; ++xx) {
            const uint8_t* src = image + (yy * in.w + xx) * c;
            for (int64_t ch = 0; ch < c; ++ch) dst[ch] = dst[ch] > src[ch] ? dst[ch] : src[ch];
          }
      }
  }
}

inline void avg_pool_u8_256(const uint8_t* x, int64_t batch, const ImageShape& in, const ImageShape& out,
                       const AvgPoolArgs& a, uint8_t* y) {
  const int64_t c = in.c, in_size = in.h * in.w * c, out_size = out.h * out.w * c;
  const __m256i out_zero = _mm256_set1_epi32(a.out_zero_point);
  const __m256i out_min = _mm256_set1_epi32(a.out_min), out_max = _mm256_set1_epi32(a.out_max);
  for (int64_t n = 0; n < batch; ++n) {
    const uint8_t* image = x + n * in_size;
    for (int64_t oy = 0; oy < out.h; ++oy)
      for (int64_t ox = 0; ox < out.w; ++ox) {
        const Cells cells = cells_of(in, a.window, oy, ox);
        const int32_t inside = static_cast<int32_t>((cells.y1 - cells.y0) * (cells.x1 - cells.x0));
        const int64_t d = a.count_include_pad ? a.window.kernel_h * a.window.kernel_w : inside;
        const int32_t multiplier = a.multiplier[d - 1], shift = a.shift[d - 1];
        const int32_t offset = inside * a.in_zero_point;
        uint8_t* dst = y + n * out_size + (oy * out.w + ox) * c;
        if (c < 16) {
          for (int64_t ch = 0; ch < c; ++ch) {
            int32_t sum = 0;
            for (int64_t yy = cells.y0; yy < cells.y1; ++yy)
              for (int64_t xx = cells.x0; xx < cells.x1; ++xx) sum += image[(yy * in.w + xx) * c + ch];
            dst[ch] = clamp_to_u8(requantize((sum - offset) * (int32_t{1} << a.sum_shift), multiplier, shift),
                                  a.out_zero_point, a.out_min, a.out_max);
          }
          continue;
        }
        const __m256i m = _mm256_set1_epi32(multiplier), e = _mm256_set1_epi32(shift);
        const __m256i off = _mm256_set1_epi32(offset);
        const __m128i sum_shift = _mm_cvtsi32_si128(a.sum_shift);
        // 16 channels at a time (the last 16 ending at c, overlapping: the same bytes again). Sums
        // of up to 257 codes fit uint16; longer windows add into int32 every 256 cells.
        for (int64_t j = 0;; j += 16) {
          if (j + 16 > c) j = c - 16;
          __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256(), s16 = _mm256_setzero_si256();
          int cells_in_s16 = 0;
          for (int64_t yy = cells.y0; yy < cells.y1; ++yy)
            for (int64_t xx = cells.x0; xx < cells.x1; ++xx) {
              s16 = _mm256_add_epi16(s16, _mm256_cvtepu8_epi16(load16(image + (yy * in.w + xx) * c + j)));
              if (++cells_in_s16 == 256) {
                lo = _mm256_add_epi32(lo, _mm256_cvtepu16_epi32(_mm256_castsi256_si128(s16)));
                hi = _mm256_add_epi32(hi, _mm256_cvtepu16_epi32(_mm256_extracti128_si256(s16, 1)));
                s16 = _mm256_setzero_si256(), cells_in_s16 = 0;
              }
            }
          lo = _mm256_add_epi32(lo, _mm256_cvtepu16_epi32(_mm256_castsi256_si128(s16)));
          hi = _mm256_add_epi32(hi, _mm256_cvtepu16_epi32(_mm256_extracti128_si256(s16, 1)));
          __m256i r[2] = {lo, hi};
          for (__m256i& v : r) {
            v = add_saturate8(requantize8(_mm256_sll_epi32(_mm256_sub_epi32(v, off), sum_shift), m, e), out_zero);
            v = _mm256_min_epi32(_mm256_max_epi32(v, out_min), out_max);
          }
          const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(r[0]), _mm256_extracti128_si256(r[0], 1));
          const __m128i words2 = _mm_packs_epi32(_mm256_castsi256_si128(r[1]), _mm256_extracti128_si256(r[1], 1));
          store16(dst + j, _mm_packus_epi16(words, words2));
          if (j + 16 >= c) break;
        }
      }
  }
}

inline void add_u8_256(const AddArgs& a, int64_t n, uint8_t* y) {
  __m256i zero_point[kMaxAddInputs], multiplier[kMaxAddInputs], shift[kMaxAddInputs];
  for (int k = 0; k < a.count; ++k) {
    zero_point[k] = _mm256_set1_epi32(a.zero_point[k]);
    multiplier[k] = _mm256_set1_epi32(a.multiplier[k]);
    shift[k] = _mm256_set1_epi32(a.shift[k]);
  }
  const __m256i out_m = _mm256_set1_epi32(a.out_multiplier), out_e = _mm256_set1_epi32(a.out_shift);
  const __m256i out_zero = _mm256_set1_epi32(a.out_zero_point);
  const __m256i out_min = _mm256_set1_epi32(a.out_min), out_max = _mm256_set1_epi32(a.out_max);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i group[4];
    for (int g = 0; g < 4; ++g) {
      __m256i raw = _mm256_setzero_si256();
      for (int k = 0; k < a.count; ++k) {
        const __m256i codes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a.x[k] + i + 8 * g)));
        const __m256i shifted = _mm256_slli_epi32(_mm256_sub_epi32(codes, zero_point[k]), kAddLeftShift);
        raw = _mm256_add_epi32(raw, requantize8(shifted, multiplier[k], shift[k]));
      }
      const __m256i v = add_saturate8(requantize8(raw, out_m, out_e), out_zero);
      group[g] = _mm256_min_epi32(_mm256_max_epi32(v, out_min), out_max);
    }
    store32(y + i, pack32(group[0], group[1], group[2], group[3]));
  }
  for (; i < n; ++i) {
    int32_t raw = 0;
    for (int k = 0; k < a.count; ++k)
      raw += requantize((int32_t{a.x[k][i]} - a.zero_point[k]) * (int32_t{1} << kAddLeftShift), a.multiplier[k],
                        a.shift[k]);
    y[i] = clamp_to_u8(requantize(raw, a.out_multiplier, a.out_shift), a.out_zero_point, a.out_min, a.out_max);
  }
}

inline void relu_u8_256(const uint8_t* x, int64_t n, uint8_t zero_point, uint8_t* y) {
  const __m256i z = _mm256_set1_epi8(static_cast<char>(zero_point));
  int64_t i = 0;
  for (; i + 128 <= n; i += 128)
    for (int j = 0; j < 128; j += 32) store32(y + i + j, _mm256_max_epu8(load32(x + i + j), z));
  for (; i + 32 <= n; i += 32) store32(y + i, _mm256_max_epu8(load32(x + i), z));
  for (; i < n; ++i) y[i] = x[i] > zero_point ? x[i] : zero_point;
}

}  // namespace
}  // namespace lowbit::kernels
