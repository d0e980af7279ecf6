// AVX-512 versions of the integer engine's operators besides the GEMM (contracts in integer_ops.h):
// 16-lane requantization for add and average pooling, 64-byte max and ReLU, masked tails instead of
// scalar ones. Compiled with -mavx512f -mavx512bw -mavx512vl; everything here except the exported
// functions has internal linkage.
// GCC 12 warns that the intrinsics' own "undefined" source vectors (_mm512_undefined_epi32 inside
// e.g. _mm512_cvtepu16_epi32) may be used uninitialized: a false positive of its headers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "kernels/integer_ops_simd.h"
#include "kernels/integer_ops_simd256.h"

namespace lowbit::kernels {
namespace {

inline __mmask64 first_bytes(int64_t n) { return n >= 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1; }
inline __mmask16 first_lanes(int64_t n) { return static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1); }

// 16 lanes of requantize() from requantize.h (the 8-lane requantize8 of qlinear_simd256.h, with mask
// registers for the selects).
inline __m512i requantize16(__m512i acc, __m512i multiplier, __m512i shift) {
  const __m512i zero = _mm512_setzero_si512();
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i int_max = _mm512_set1_epi32(INT32_MAX);
  const __m512i int_min = _mm512_set1_epi32(INT32_MIN);
  // Saturating left shift by max(e, 0): exact iff shifting back restores acc.
  const __m512i left = _mm512_max_epi32(shift, zero);
  const __m512i shifted = _mm512_sllv_epi32(acc, left);
  const __mmask16 exact = _mm512_cmpeq_epi32_mask(_mm512_srav_epi32(shifted, left), acc);
  const __m512i saturated = _mm512_xor_si512(int_max, _mm512_srai_epi32(acc, 31));
  const __m512i a = _mm512_mask_blend_epi32(exact, saturated, shifted);
  // (a*b + 2^30) >> 31, bits 31..62 of each 64-bit product (docs/kernels.md).
  const __m512i nudge = _mm512_set1_epi64(int64_t{1} << 30);
  const __m512i even = _mm512_add_epi64(_mm512_mul_epi32(a, multiplier), nudge);
  const __m512i odd =
      _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(a, 32), _mm512_srli_epi64(multiplier, 32)), nudge);
  __m512i high = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 31), _mm512_slli_epi64(odd, 1));
  const __mmask16 both_min = _mm512_cmpeq_epi32_mask(a, int_min) & _mm512_cmpeq_epi32_mask(multiplier, int_min);
  high = _mm512_mask_mov_epi32(high, both_min, int_max);
  // RoundingDivideByPOT by max(-e, 0): ties away from zero.
  const __m512i right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
  const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, right), one);
  const __m512i remainder = _mm512_and_si512(high, mask);
  const __m512i threshold = _mm512_add_epi32(_mm512_srli_epi32(mask, 1), _mm512_srli_epi32(high, 31));
  const __m512i quotient = _mm512_srav_epi32(high, right);
  return _mm512_mask_add_epi32(quotient, _mm512_cmpgt_epi32_mask(remainder, threshold), quotient, one);
}

// zero_point + r saturated to int32, then clamped to [lo, hi] within [0, 255]: 16 bytes.
inline __m128i finish16(__m512i r, __m512i zero_point, __m512i lo, __m512i hi) {
  const __m512i sum = _mm512_add_epi32(r, zero_point);
  const __mmask16 overflow = _mm512_cmplt_epi32_mask(
      _mm512_and_si512(_mm512_xor_si512(r, sum), _mm512_xor_si512(zero_point, sum)), _mm512_setzero_si512());
  const __m512i saturated = _mm512_xor_si512(_mm512_set1_epi32(INT32_MAX), _mm512_srai_epi32(r, 31));
  const __m512i v = _mm512_mask_blend_epi32(overflow, sum, saturated);
  return _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(v, lo), hi));
}

}  // namespace

void pixels_to_codes_u8__avx512(const uint8_t* pixels, int64_t batch, const ImageShape& shape,
                                const uint8_t* table, uint8_t* codes) {
  pixels_to_codes_u8_256(pixels, batch, shape, table, codes);
}

void im2col_u8__avx512(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& win,
                       const ImageShape& out, uint8_t pad_code, uint8_t* cols) {
  // As im2col_u8_256, with each run of bytes copied in 64-byte pieces and a masked last piece.
  const __m512i pad = _mm512_set1_epi8(static_cast<char>(pad_code));
  auto copy = [](uint8_t* d, const uint8_t* s, int64_t n) {
    for (; n > 64; n -= 64, d += 64, s += 64) _mm512_storeu_si512(d, _mm512_loadu_si512(s));
    const __mmask64 lanes = first_bytes(n);
    _mm512_mask_storeu_epi8(d, lanes, _mm512_maskz_loadu_epi8(lanes, s));
  };
  auto fill = [&pad](uint8_t* d, int64_t n) {
    for (; n > 64; n -= 64, d += 64) _mm512_storeu_si512(d, pad);
    _mm512_mask_storeu_epi8(d, first_bytes(n), pad);
  };
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
            fill(dst, segment);
          } else if (columns_inside) {  // the kernel's row is contiguous in NHWC
            copy(dst, image + (y * in.w + x0) * c, segment);
          } else {
            for (int64_t kx = 0; kx < win.kernel_w; ++kx) {
              const int64_t xx = x0 + kx;
              if (xx < 0 || xx >= in.w) fill(dst + kx * c, c);
              else copy(dst + kx * c, image + (y * in.w + xx) * c, c);
            }
          }
        }
      }
  }
}

void max_pool_u8__avx512(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& win,
                         const ImageShape& out, uint8_t* y) {
  const int64_t c = in.c, in_size = in.h * in.w * c, out_size = out.h * out.w * c;
  for (int64_t n = 0; n < batch; ++n) {
    const uint8_t* image = x + n * in_size;
    for (int64_t oy = 0; oy < out.h; ++oy)
      for (int64_t ox = 0; ox < out.w; ++ox) {
        uint8_t* dst = y + n * out_size + (oy * out.w + ox) * c;
        const Cells cells = cells_of(in, win, oy, ox);
        for (int64_t j = 0; j < c; j += 64) {
          const __mmask64 lanes = first_bytes(c - j);
          __m512i m = _mm512_setzero_si512();
          for (int64_t yy = cells.y0; yy < cells.y1; ++yy)
            for (int64_t xx = cells.x0; xx < cells.x1; ++xx)
              m = _mm512_max_epu8(m, _mm512_maskz_loadu_epi8(lanes, image + (yy * in.w + xx) * c + j));
          _mm512_mask_storeu_epi8(dst + j, lanes, m);
        }
      }
  }
}

void avg_pool_u8__avx512(const uint8_t* x, int64_t batch, const ImageShape& in, const ImageShape& out,
                         const AvgPoolArgs& a, uint8_t* y) {
  const int64_t c = in.c, in_size = in.h * in.w * c, out_size = out.h * out.w * c;
  const __m512i out_zero = _mm512_set1_epi32(a.out_zero_point);
  const __m512i out_min = _mm512_set1_epi32(a.out_min), out_max = _mm512_set1_epi32(a.out_max);
  for (int64_t n = 0; n < batch; ++n) {
    const uint8_t* image = x + n * in_size;
    for (int64_t oy = 0; oy < out.h; ++oy)
      for (int64_t ox = 0; ox < out.w; ++ox) {
        const Cells cells = cells_of(in, a.window, oy, ox);
        const int32_t inside = static_cast<int32_t>((cells.y1 - cells.y0) * (cells.x1 - cells.x0));
        const int64_t d = a.count_include_pad ? a.window.kernel_h * a.window.kernel_w : inside;
        const __m512i m = _mm512_set1_epi32(a.multiplier[d - 1]), e = _mm512_set1_epi32(a.shift[d - 1]);
        const __m512i offset = _mm512_set1_epi32(inside * a.in_zero_point);
        const __m128i sum_shift = _mm_cvtsi32_si128(a.sum_shift);
        uint8_t* dst = y + n * out_size + (oy * out.w + ox) * c;
        // 32 channels at a time in uint16 (sums of up to 257 codes fit), into int32 every 256 cells.
        for (int64_t j = 0; j < c; j += 32) {
          const __mmask32 lanes = static_cast<__mmask32>(first_bytes(c - j < 32 ? c - j : 32));
          __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512(), s16 = _mm512_setzero_si512();
          int cells_in_s16 = 0;
          for (int64_t yy = cells.y0; yy < cells.y1; ++yy)
            for (int64_t xx = cells.x0; xx < cells.x1; ++xx) {
              const __m256i codes = _mm256_maskz_loadu_epi8(lanes, image + (yy * in.w + xx) * c + j);
              s16 = _mm512_add_epi16(s16, _mm512_cvtepu8_epi16(codes));
              if (++cells_in_s16 == 256) {
                lo = _mm512_add_epi32(lo, _mm512_cvtepu16_epi32(_mm512_castsi512_si256(s16)));
                hi = _mm512_add_epi32(hi, _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(s16, 1)));
                s16 = _mm512_setzero_si512(), cells_in_s16 = 0;
              }
            }
          lo = _mm512_add_epi32(lo, _mm512_cvtepu16_epi32(_mm512_castsi512_si256(s16)));
          hi = _mm512_add_epi32(hi, _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(s16, 1)));
          const __m128i b0 = finish16(requantize16(_mm512_sll_epi32(_mm512_sub_epi32(lo, offset), sum_shift), m, e), out_zero, out_min, out_max);
          const __m128i b1 = finish16(requantize16(_mm512_sll_epi32(_mm512_sub_epi32(hi, offset), sum_shift), m, e), out_zero, out_min, out_max);
          _mm256_mask_storeu_epi8(dst + j, lanes, _mm256_inserti128_si256(_mm256_castsi128_si256(b0), b1, 1));
        }
      }
  }
}

void add_u8__avx512(const AddArgs& a, int64_t n, uint8_t* y) {
  __m512i zero_point[kMaxAddInputs], multiplier[kMaxAddInputs], shift[kMaxAddInputs];
  for (int k = 0; k < a.count; ++k) {
    zero_point[k] = _mm512_set1_epi32(a.zero_point[k]);
    multiplier[k] = _mm512_set1_epi32(a.multiplier[k]);
    shift[k] = _mm512_set1_epi32(a.shift[k]);
  }
  const __m512i out_m = _mm512_set1_epi32(a.out_multiplier), out_e = _mm512_set1_epi32(a.out_shift);
  const __m512i out_zero = _mm512_set1_epi32(a.out_zero_point);
  const __m512i out_min = _mm512_set1_epi32(a.out_min), out_max = _mm512_set1_epi32(a.out_max);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 lanes = first_lanes(n - i);
    __m512i raw = _mm512_setzero_si512();
    for (int k = 0; k < a.count; ++k) {
      const __m512i codes = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(lanes, a.x[k] + i));
      const __m512i shifted = _mm512_slli_epi32(_mm512_sub_epi32(codes, zero_point[k]), kAddLeftShift);
      raw = _mm512_add_epi32(raw, requantize16(shifted, multiplier[k], shift[k]));
    }
    _mm_mask_storeu_epi8(y + i, lanes, finish16(requantize16(raw, out_m, out_e), out_zero, out_min, out_max));
  }
}

void relu_u8__avx512(const uint8_t* x, int64_t n, uint8_t zero_point, uint8_t* y) {
  const __m512i z = _mm512_set1_epi8(static_cast<char>(zero_point));
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    _mm512_storeu_si512(y + i, _mm512_max_epu8(_mm512_loadu_si512(x + i), z));
  if (i < n) {
    const __mmask64 lanes = first_bytes(n - i);
    _mm512_mask_storeu_epi8(y + i, lanes, _mm512_max_epu8(_mm512_maskz_loadu_epi8(lanes, x + i), z));
  }
}

}  // namespace lowbit::kernels
