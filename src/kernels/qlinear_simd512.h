// 512-bit output stage for the AVX-512 micro-kernels (VNNI, AMX, bit-serial VPOPCNTDQ): 16 lanes, one
// register per 16-feature block. The same arithmetic as qlinear_simd256.h's output_stage and as
// requantize.h (the specification), on zmm with mask registers. Needs AVX-512 F/BW/VL. Include only
// from ISA files: everything here has internal linkage so each file gets its own copy.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/qlinear_ukernel.h"

// GCC 12 warns -W(maybe-)uninitialized inside every unmasked AVX-512 intrinsic that these inline into
// (its _mm512_undefined_epi32 initialises a variable from itself; GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace lowbit::kernels {
namespace {

// Per 16-feature block, the parts of requantize() that depend only on the feature's shift and
// multiplier, computed once per block rather than once per row.
struct Requantize16 {
  __m512i multiplier, multiplier_odd;  // M0, and M0 of the odd lanes moved to the even ones
  __m512i left, right;                 // max(e, 0), max(-e, 0)
  __m512i mask, half_mask;             // 2^right - 1, (2^right - 1) >> 1
  __mmask16 multiplier_min;            // M0 == INT32_MIN (only reachable past the contract's range)
};

inline Requantize16 requantize16_setup(const int32_t* multiplier, const int32_t* shift) {
  const __m512i zero = _mm512_setzero_si512();
  Requantize16 q;
  q.multiplier = _mm512_loadu_si512(multiplier);
  q.multiplier_odd = _mm512_srli_epi64(q.multiplier, 32);
  const __m512i e = _mm512_loadu_si512(shift);
  q.left = _mm512_max_epi32(e, zero);
  q.right = _mm512_max_epi32(_mm512_sub_epi32(zero, e), zero);
  q.mask = _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), q.right), _mm512_set1_epi32(1));
  q.half_mask = _mm512_srli_epi32(q.mask, 1);
  q.multiplier_min = _mm512_cmpeq_epi32_mask(q.multiplier, _mm512_set1_epi32(INT32_MIN));
  return q;
}

// 16 lanes of requantize() from requantize.h; acc already includes the zero-point corrections.
inline __m512i requantize16(__m512i acc, const Requantize16& q) {
  const __m512i int_max = _mm512_set1_epi32(INT32_MAX);
  // Saturating left shift by max(e, 0): exact iff shifting back restores acc; else INT32_MAX or
  // INT32_MIN by acc's sign (int_max ^ (acc >> 31)).
  const __m512i shifted = _mm512_sllv_epi32(acc, q.left);
  const __mmask16 exact = _mm512_cmpeq_epi32_mask(_mm512_srav_epi32(shifted, q.left), acc);
  const __m512i a = _mm512_mask_blend_epi32(exact, _mm512_xor_si512(int_max, _mm512_srai_epi32(acc, 31)), shifted);
  // SaturatingRoundingDoublingHighMul as (a*b + 2^30) >> 31 (qlinear_simd256.h, docs/kernels.md).
  const __m512i nudge = _mm512_set1_epi64(int64_t{1} << 30);
  const __m512i even = _mm512_add_epi64(_mm512_mul_epi32(a, q.multiplier), nudge);
  const __m512i odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(a, 32), q.multiplier_odd), nudge);
  __m512i high = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 31), _mm512_slli_epi64(odd, 1));
  const __mmask16 both_min =
      _mm512_mask_cmpeq_epi32_mask(q.multiplier_min, a, _mm512_set1_epi32(INT32_MIN));
  high = _mm512_mask_mov_epi32(high, both_min, int_max);
  // RoundingDivideByPOT by max(-e, 0): ties away from zero (threshold + 1 for negative values).
  const __m512i remainder = _mm512_and_si512(high, q.mask);
  const __m512i threshold = _mm512_add_epi32(q.half_mask, _mm512_srli_epi32(high, 31));
  const __m512i quotient = _mm512_srav_epi32(high, q.right);
  return _mm512_mask_add_epi32(quotient, _mm512_cmpgt_epi32_mask(remainder, threshold), quotient,
                               _mm512_set1_epi32(1));
}

inline __m512i add_saturate16(__m512i r, __m512i zero_point) {
  const __m512i sum = _mm512_add_epi32(r, zero_point);
  // Overflow iff r and zero_point share a sign that sum lacks: sign bit of (r ^ sum) & (zp ^ sum).
  // (vpmovd2m would need AVX-512DQ, which these files are not compiled with.)
  const __mmask16 overflow = _mm512_cmplt_epi32_mask(
      _mm512_and_si512(_mm512_xor_si512(r, sum), _mm512_xor_si512(zero_point, sum)), _mm512_setzero_si512());
  const __m512i saturated = _mm512_xor_si512(_mm512_set1_epi32(INT32_MAX), _mm512_srai_epi32(r, 31));
  return _mm512_mask_blend_epi32(overflow, sum, saturated);
}

// Finishes rows [0, MR) x features [n0, n0 + 16) of t from their raw dot products (one register a
// row): acc = dot * 2^acc_shift + col_const + row_factor * x_sum, requantize, add the zero point, then
// store int32 or clamp to [out_min, out_max] and store bytes. Lanes past t.n are computed, not stored.
template <int MR>
inline void output_stage16(const QLinearTile& t, int64_t n0, const __m512i (&acc)[MR]) {
  const int64_t nr = t.n - n0 < kTileCols ? t.n - n0 : kTileCols;
  const __mmask16 store = static_cast<__mmask16>((1u << nr) - 1);
  const __m512i zero_point = _mm512_set1_epi32(t.out_zero_point);
  const __m512i out_min = _mm512_set1_epi32(t.out_min);
  const __m512i out_max = _mm512_set1_epi32(t.out_max);
  const __m128i acc_shift = _mm_cvtsi32_si128(t.acc_shift);
  const __m512i col_const = _mm512_loadu_si512(t.col_const + n0);
  const __m512i row_factor = _mm512_loadu_si512(t.row_factor + n0);
  if (t.thresholds) {  // y_u8 on a grid of t.levels steps: count the thresholds acc passes
    const __m512i base = _mm512_loadu_si512(t.threshold_base + n0);
    const int32_t* levels = t.thresholds + n0 * t.levels;  // this block's [levels][16]
    const __m512i one = _mm512_set1_epi32(1);
    for (int m = 0; m < MR; ++m) {
      __m512i a = _mm512_add_epi32(_mm512_sll_epi32(acc[m], acc_shift), col_const);
      a = _mm512_add_epi32(a, _mm512_mullo_epi32(row_factor, _mm512_set1_epi32(t.x_sum[m])));
      __m512i code = base;
      for (int j = 0; j < t.levels; ++j)
        code = _mm512_mask_add_epi32(code, _mm512_cmpgt_epi32_mask(a, _mm512_loadu_si512(levels + 16 * j)), code, one);
      _mm512_mask_cvtepi32_storeu_epi8(t.y_u8 + m * t.y_stride + n0, store, code);
    }
    return;
  }
  const Requantize16 q = requantize16_setup(t.multiplier + n0, t.shift + n0);
  for (int m = 0; m < MR; ++m) {
    // vpslld: the dot product alone; col_const and row_factor arrive pre-shifted.
    __m512i a = _mm512_add_epi32(_mm512_sll_epi32(acc[m], acc_shift), col_const);
    a = _mm512_add_epi32(a, _mm512_mullo_epi32(row_factor, _mm512_set1_epi32(t.x_sum[m])));
    const __m512i y = add_saturate16(requantize16(a, q), zero_point);
    if (t.y_i32) {
      _mm512_mask_storeu_epi32(t.y_i32 + m * t.y_stride + n0, store, y);
    } else {
      // Clamped to [out_min, out_max] within [0, 255]: the truncating vpmovdb is exact.
      const __m512i c = _mm512_min_epi32(_mm512_max_epi32(y, out_min), out_max);
      _mm512_mask_cvtepi32_storeu_epi8(t.y_u8 + m * t.y_stride + n0, store, c);
    }
  }
}

}  // namespace
}  // namespace lowbit::kernels

#pragma GCC diagnostic pop
