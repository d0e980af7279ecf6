// 256-bit helpers shared by the AVX2 and AVX-512 VNNI micro-kernel files: 8-lane requantization and
// the output stage. Include only from ISA files: everything here has internal linkage on purpose, so
// each file gets its own copy compiled with its own flags and none can leak into another.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/qlinear_ukernel.h"

namespace lowbit::kernels {
namespace {

inline __m256i broadcast_u32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm256_set1_epi32(v);
}

// 8 lanes of requantize() from requantize.h; acc already includes the zero-point corrections.
inline __m256i requantize8(__m256i acc, __m256i multiplier, __m256i shift) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i int_max = _mm256_set1_epi32(INT32_MAX);
  const __m256i int_min = _mm256_set1_epi32(INT32_MIN);
  // Saturating left shift by max(e, 0): it is exact iff shifting back restores acc.
  // Select with the un-inverted mask. GCC 12 miscompiles blendv(a, b, cmpeq ^ -1) when AVX-512BW
  // and VL are on (it drops the inversion without swapping a and b; docs/kernels.md), so no kernel
  // file may blend on an inverted compare.
  const __m256i left = _mm256_max_epi32(shift, zero);
  const __m256i shifted = _mm256_sllv_epi32(acc, left);
  const __m256i exact = _mm256_cmpeq_epi32(_mm256_srav_epi32(shifted, left), acc);
  const __m256i saturated = _mm256_xor_si256(int_max, _mm256_srai_epi32(acc, 31));
  const __m256i a = _mm256_blendv_epi8(saturated, shifted, exact);
  // SaturatingRoundingDoublingHighMul: (a*b + 2^30) >> 31 equals gemmlowp's nudge-and-truncate for
  // both signs (docs/kernels.md); only bits 31..62 of the sum are kept, so a logical shift works.
  const __m256i nudge = _mm256_set1_epi64x(int64_t{1} << 30);
  const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(a, multiplier), nudge);
  const __m256i odd = _mm256_add_epi64(
      _mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(multiplier, 32)), nudge);
  __m256i high = _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
  const __m256i both_min = _mm256_and_si256(_mm256_cmpeq_epi32(a, int_min),
                                            _mm256_cmpeq_epi32(multiplier, int_min));
  high = _mm256_blendv_epi8(high, int_max, both_min);
  // RoundingDivideByPOT by max(-e, 0): ties away from zero.
  const __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
  const __m256i remainder = _mm256_and_si256(high, mask);
  const __m256i threshold = _mm256_add_epi32(_mm256_srli_epi32(mask, 1), _mm256_srli_epi32(high, 31));
  return _mm256_sub_epi32(_mm256_srav_epi32(high, right), _mm256_cmpgt_epi32(remainder, threshold));
}

inline __m256i add_saturate8(__m256i r, __m256i zero_point) {
  const __m256i sum = _mm256_add_epi32(r, zero_point);
  const __m256i overflow = _mm256_srai_epi32(
      _mm256_and_si256(_mm256_xor_si256(r, sum), _mm256_xor_si256(zero_point, sum)), 31);
  const __m256i saturated = _mm256_xor_si256(_mm256_set1_epi32(INT32_MAX), _mm256_srai_epi32(r, 31));
  return _mm256_blendv_epi8(sum, saturated, overflow);
}

// Stores the first nr < 16 of the 16 int32 in y[0], y[1] as 8-, 4-, 2- and 1-lane pieces: nr is
// fixed per layer, so the branches predict; vpmaskmovd cost 2.7 % of FC_NN's engine time for its
// 10 logits, and a memcpy call about 1.5 %.
inline void store_first_i32(int32_t* out, const __m256i (&y)[2], int64_t nr) {
  __m256i v = y[0];
  if (nr >= 8) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), v);
    out += 8, nr -= 8, v = y[1];
  }
  __m128i h = _mm256_castsi256_si128(v);
  if (nr >= 4) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), h);
    out += 4, nr -= 4, h = _mm256_extracti128_si256(v, 1);
  }
  if (nr >= 2) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), h);
    out += 2, nr -= 2, h = _mm_srli_si128(h, 8);
  }
  if (nr >= 1) *out = _mm_cvtsi128_si32(h);
}

// The same for the first nr < 16 of 16 bytes.
inline void store_first_u8(uint8_t* out, __m128i bytes, int64_t nr) {
  if (nr >= 8) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), bytes);
    out += 8, nr -= 8, bytes = _mm_srli_si128(bytes, 8);
  }
  uint64_t rest = static_cast<uint64_t>(_mm_cvtsi128_si64(bytes));
  for (; nr > 0; --nr, rest >>= 8) *out++ = static_cast<uint8_t>(rest);
}

// Finishes rows [0, MR) x features [n0, n0 + 16) from their raw dot products.
template <int MR>
inline void output_stage(const QLinearTile& t, int64_t n0, const __m256i (&acc)[MR][2]) {
  const int64_t nr = t.n - n0 < kTileCols ? t.n - n0 : kTileCols;
  const __m256i zero_point = _mm256_set1_epi32(t.out_zero_point);
  const __m256i out_min = _mm256_set1_epi32(t.out_min);
  const __m256i out_max = _mm256_set1_epi32(t.out_max);
  const __m128i acc_shift = _mm_cvtsi32_si128(t.acc_shift);
  __m256i col_const[2], row_factor[2], multiplier[2], shift[2];
  for (int j = 0; j < 2; ++j) {
    col_const[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.col_const + n0 + 8 * j));
    row_factor[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.row_factor + n0 + 8 * j));
    multiplier[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.multiplier + n0 + 8 * j));
    shift[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.shift + n0 + 8 * j));
  }
  for (int m = 0; m < MR; ++m) {
    const __m256i x_sum = _mm256_set1_epi32(t.x_sum[m]);
    __m256i y[2];
    for (int j = 0; j < 2; ++j) {
      // vpslld: the dot product alone; col_const and row_factor arrive pre-shifted.
      __m256i a = _mm256_add_epi32(_mm256_sll_epi32(acc[m][j], acc_shift), col_const[j]);
      a = _mm256_add_epi32(a, _mm256_mullo_epi32(row_factor[j], x_sum));
      y[j] = add_saturate8(requantize8(a, multiplier[j], shift[j]), zero_point);
    }
    if (t.y_i32) {
      int32_t* out = t.y_i32 + m * t.y_stride + n0;
      if (nr == kTileCols) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), y[0]);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8), y[1]);
      } else {
        store_first_i32(out, y, nr);
      }
    } else {
      // Clamped to [out_min, out_max] within [0, 255], so both packs are exact.
      for (int j = 0; j < 2; ++j) y[j] = _mm256_min_epi32(_mm256_max_epi32(y[j], out_min), out_max);
      const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(y[0], y[1]), 0xD8);
      const __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(words),
                                             _mm256_extracti128_si256(words, 1));
      uint8_t* out = t.y_u8 + m * t.y_stride + n0;
      if (nr == kTileCols) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), bytes);
      } else {
        store_first_u8(out, bytes, nr);
      }
    }
  }
}

}  // namespace
}  // namespace lowbit::kernels
