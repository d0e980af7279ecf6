// Bit-serial qlinear on AVX2: activation bit-plane packing (vpmovmskb), shared with the AVX-512
// kernel, and micro-kernels that count bits with the vpshufb nibble table. Compiled with -mavx2
// -mfma -mbmi2; runs only when dispatch.cc finds AVX2.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/qlinear_bitserial.h"
#include "kernels/qlinear_simd256.h"

namespace lowbit::kernels {

void qlinear_pack_x_planes__avx2(const uint8_t* x, int64_t x_stride, int64_t mr, int64_t K, int act_bits,
                                 int64_t kw, uint32_t* planes, int32_t* x_sum) {
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t m = 0; m < kTileRows; ++m) {
    uint32_t* p = planes + m * act_bits * kw;
    if (m >= mr) {
      std::memset(p, 0, sizeof(uint32_t) * static_cast<size_t>(act_bits * kw));
      x_sum[m] = 0;
      continue;
    }
    const uint8_t* row = x + m * x_stride;
    __m256i sum = zero;
    for (int64_t w = 0; w < kw; ++w) {
      const int64_t k0 = 32 * w;
      __m256i v;
      if (k0 + 32 <= K) {
        v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k0));
      } else {  // the row's tail: never read past K
        alignas(32) uint8_t tail[32] = {};
        std::memcpy(tail, row + k0, static_cast<size_t>(K - k0));
        v = _mm256_load_si256(reinterpret_cast<const __m256i*>(tail));
      }
      sum = _mm256_add_epi64(sum, _mm256_sad_epu8(v, zero));
      // Bit i of every byte to its top bit: a 16-bit shift moves bit i of both bytes of a word to
      // bits 7 and 15, and vpmovmskb collects the top bits of the 32 bytes, k in order.
      for (int i = 0; i < act_bits; ++i)
        p[i * kw + w] = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_sll_epi16(v, _mm_cvtsi32_si128(7 - i))));
    }
    const __m128i half = _mm_add_epi64(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    x_sum[m] = static_cast<int32_t>(_mm_cvtsi128_si64(half) + _mm_extract_epi64(half, 1));
  }
}

namespace {

template <int MR>
inline void finish(const BitserialTile& t, int64_t n0, const __m256i (&acc)[kTileRows][2]) {
  __m256i rows[MR][2];
  for (int m = 0; m < MR; ++m) rows[m][0] = acc[m][0], rows[m][1] = acc[m][1];
  output_stage<MR>(t.out, n0, rows);
}

// 8 features (half h of a 16-feature block) of one row: per chunk of words, byte counts per
// s = i + j, then Horner's rule in int16 (vpmaddubsw pairs the 4 bytes of a 32-bit lane two by
// two) and vpmaddwd into int32.
template <int B, int A>
inline __m256i row_dot(const BitserialTile& t, const uint32_t* w, const uint32_t* x, int h) {
  constexpr int S = A + B - 1;
  // A byte of bs[s] gains at most 8 per pair with i + j = s (at most min(A, B) pairs) a word, so
  // chunk * 8 * min(A, B) <= 255; the int16 Horner sum of two bytes is at most
  // 2 * chunk * 8 * (2^A - 1) * (2^B - 1) <= 32767.
  constexpr int64_t kChunk = std::min<int64_t>(255 / (8 * std::min(A, B)), 2047 / (((1 << A) - 1) * ((1 << B) - 1)));
  const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256i total = _mm256_setzero_si256();
  for (int64_t k0 = 0; k0 < t.kw; k0 += kChunk) {
    const int64_t k_end = std::min(t.kw, k0 + kChunk);
    __m256i bs[S];
    for (int s = 0; s < S; ++s) bs[s] = _mm256_setzero_si256();
    for (int64_t k = k0; k < k_end; ++k) {
      __m256i wp[B];
      for (int j = 0; j < B; ++j)
        wp[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + (k * B + j) * 16 + 8 * h));
      for (int i = 0; i < A; ++i) {
        const __m256i xb = _mm256_set1_epi32(static_cast<int>(x[i * t.kw + k]));
        for (int j = 0; j < B; ++j) {
          const __m256i v = _mm256_and_si256(wp[j], xb);
          const __m256i low = _mm256_shuffle_epi8(table, _mm256_and_si256(v, nibble));
          const __m256i high = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
          bs[i + j] = _mm256_add_epi8(bs[i + j], _mm256_add_epi8(low, high));
        }
      }
    }
    __m256i t16 = _mm256_maddubs_epi16(bs[S - 1], ones8);
    for (int s = S - 2; s >= 0; --s)
      t16 = _mm256_add_epi16(_mm256_slli_epi16(t16, 1), _mm256_maddubs_epi16(bs[s], ones8));
    total = _mm256_add_epi32(total, _mm256_madd_epi16(t16, ones16));
  }
  return total;
}

template <int B, int A>
void tile_avx2(const BitserialTile& t) {
  const uint32_t* w = t.w_planes;
  for (int64_t n0 = 0; n0 < t.out.n; n0 += kTileCols, w += t.kw * B * 16) {
    __m256i acc[kTileRows][2];
    for (int m = 0; m < kTileRows; ++m)
      for (int h = 0; h < 2; ++h)
        acc[m][h] = m < t.out.mr ? row_dot<B, A>(t, w, t.x_planes + m * A * t.kw, h) : _mm256_setzero_si256();
    switch (t.out.mr) {
      case 1: finish<1>(t, n0, acc); break;
      case 2: finish<2>(t, n0, acc); break;
      case 3: finish<3>(t, n0, acc); break;
      default: finish<4>(t, n0, acc); break;
    }
  }
}

template <int B, int A>
void entry(const BitserialTile& t) { tile_avx2<B, A>(t); }

}  // namespace

BitserialUkernel qlinear_bitserial_ukernel_4x16__avx2(int bits, int act_bits) {
  static constexpr BitserialUkernel kTable[16] = {
      entry<1, 1>, entry<1, 2>, entry<1, 3>, entry<1, 4>, entry<2, 1>, entry<2, 2>, entry<2, 3>, entry<2, 4>,
      entry<3, 1>, entry<3, 2>, entry<3, 3>, entry<3, 4>, entry<4, 1>, entry<4, 2>, entry<4, 3>, entry<4, 4>};
  return kTable[(bits - 1) * 4 + (act_bits - 1)];
}

}  // namespace lowbit::kernels
