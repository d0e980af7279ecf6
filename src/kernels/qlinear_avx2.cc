// AVX2 qlinear micro-kernels: 4 rows x 16 features per tile, vpmaddubsw (or vpmaddwd for 8x8 bits).
// Compiled with -mavx2 -mfma -mbmi2; everything here except the exported functions has internal linkage.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/qlinear_simd256.h"
#include "kernels/qlinear_ukernel.h"

namespace lowbit::kernels {
namespace {

// acc += vpmaddubsw(x, w) in int16 / acc += vpmaddwd(x, w) in int32, updating acc in place. Written as
// asm because GCC 12 otherwise computes each sum into a fresh register and copies it back (one extra
// move per multiply) or spills an accumulator, which costs a third of the kernel's throughput.
inline void maddubs_accumulate(__m256i& acc, __m256i x, __m256i w) {
  __m256i product;
  __asm__("vpmaddubsw %[w], %[x], %[p]\n\tvpaddw %[p], %[acc], %[acc]"
          : [acc] "+x"(acc), [p] "=&x"(product)
          : [x] "x"(x), [w] "x"(w));
}

// acc += vpmaddwd(vpmaddubsw(x, w), ones): widening every 4 k, for when one pair is all int16 holds.
inline void maddubs_widen_accumulate(__m256i& acc, __m256i x, __m256i w, __m256i ones) {
  __m256i product;
  __asm__("vpmaddubsw %[w], %[x], %[p]\n\tvpmaddwd %[ones], %[p], %[p]\n\tvpaddd %[p], %[acc], %[acc]"
          : [acc] "+x"(acc), [p] "=&x"(product)
          : [x] "x"(x), [w] "x"(w), [ones] "x"(ones));
}

inline void madd_accumulate(__m256i& acc, __m256i x, __m256i w) {
  __m256i product;
  __asm__("vpmaddwd %[w], %[x], %[p]\n\tvpaddd %[p], %[acc], %[acc]"
          : [acc] "+x"(acc), [p] "=&x"(product)
          : [x] "x"(x), [w] "x"(w));
}

// vpmaddubsw(u8 x, s8 wc) gives int16 sums of 2 products. They are added up in int16 over chunks of
// t.k_chunk k, which prepare() sizes so the int16 sums cannot saturate, and only then widened to
// int32 by vpmaddwd with ones: 1- to 4-bit layers widen once or twice per row instead of every 4 k.
template <int MR>
void tile_s8(const QLinearTile& t) {
  const __m256i ones = _mm256_set1_epi16(1);
  const auto* x = static_cast<const uint8_t*>(t.x);
  const auto* w = static_cast<const int8_t*>(t.w);
  for (int64_t n0 = 0; n0 < t.n; n0 += kTileCols) {
    __m256i acc[MR][2];
    for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_si256();
    for (int64_t k0 = 0; k0 < t.kp; k0 += t.k_chunk) {
      const int64_t k_end = k0 + t.k_chunk < t.kp ? k0 + t.k_chunk : t.kp;
      __m256i sum16[MR][2];
      for (int m = 0; m < MR; ++m) sum16[m][0] = sum16[m][1] = _mm256_setzero_si256();
      for (int64_t k = k0; k < k_end; k += 4) {
        __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
        __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32));
        // Keeps the weights in registers: otherwise GCC folds them into every vpmaddubsw as a
        // memory operand, and the loads (not the multiplies) become the bottleneck.
        __asm__("" : "+x"(w0), "+x"(w1));
        w += 64;
        for (int m = 0; m < MR; ++m) {
          const __m256i xb = broadcast_u32(x + m * t.kp + k);
          maddubs_accumulate(sum16[m][0], xb, w0);
          maddubs_accumulate(sum16[m][1], xb, w1);
        }
      }
      for (int m = 0; m < MR; ++m) {
        acc[m][0] = _mm256_add_epi32(acc[m][0], _mm256_madd_epi16(sum16[m][0], ones));
        acc[m][1] = _mm256_add_epi32(acc[m][1], _mm256_madd_epi16(sum16[m][1], ones));
      }
    }
    output_stage<MR>(t, n0, acc);
  }
}

// kS8x4 when only one vpmaddubsw pair fits int16 (8x7, 7x8 bits): widen every 4 k. Three
// instructions per 32 products, against four (and int16 activations) on the vpmaddwd path.
template <int MR>
void tile_s8_widen(const QLinearTile& t) {
  const __m256i ones = _mm256_set1_epi16(1);
  const auto* x = static_cast<const uint8_t*>(t.x);
  const auto* w = static_cast<const int8_t*>(t.w);
  for (int64_t n0 = 0; n0 < t.n; n0 += kTileCols) {
    __m256i sum[MR][2];
    for (int m = 0; m < MR; ++m) sum[m][0] = sum[m][1] = _mm256_setzero_si256();
    for (int64_t k = 0; k < t.kp; k += 4) {
      __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
      __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32));
      __asm__("" : "+x"(w0), "+x"(w1));
      w += 64;
      for (int m = 0; m < MR; ++m) {
        const __m256i xb = broadcast_u32(x + m * t.kp + k);
        maddubs_widen_accumulate(sum[m][0], xb, w0, ones);
        maddubs_widen_accumulate(sum[m][1], xb, w1, ones);
      }
    }
    __m256i acc[MR][2];
    for (int m = 0; m < MR; ++m) acc[m][0] = sum[m][0], acc[m][1] = sum[m][1];
    output_stage<MR>(t, n0, acc);
  }
}

// kU4x8: each 64 bytes hold two k-quads as nibbles; unpacking costs 3 ALU ops per 64 weights but
// halves the bytes read, which is what bounds small batches.
template <int MR>
void tile_u4(const QLinearTile& t) {
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
  const auto* x = static_cast<const uint8_t*>(t.x);
  const auto* w = static_cast<const int8_t*>(t.w);
  for (int64_t n0 = 0; n0 < t.n; n0 += kTileCols) {
    __m256i acc[MR][2];
    for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_si256();
    for (int64_t k0 = 0; k0 < t.kp; k0 += t.k_chunk) {
      const int64_t k_end = k0 + t.k_chunk < t.kp ? k0 + t.k_chunk : t.kp;
      __m256i sum16[MR][2];
      for (int m = 0; m < MR; ++m) sum16[m][0] = sum16[m][1] = _mm256_setzero_si256();
      for (int64_t k = k0; k < k_end; k += 8) {
        const __m256i packed0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
        const __m256i packed1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32));
        w += 64;
        __m256i a0 = _mm256_and_si256(packed0, low_nibbles);
        __m256i a1 = _mm256_and_si256(packed1, low_nibbles);
        __m256i b0 = _mm256_and_si256(_mm256_srli_epi16(packed0, 4), low_nibbles);
        __m256i b1 = _mm256_and_si256(_mm256_srli_epi16(packed1, 4), low_nibbles);
        __asm__("" : "+x"(a0), "+x"(a1), "+x"(b0), "+x"(b1));
        for (int m = 0; m < MR; ++m) {
          const __m256i xa = broadcast_u32(x + m * t.kp + k);
          maddubs_accumulate(sum16[m][0], xa, a0);
          maddubs_accumulate(sum16[m][1], xa, a1);
          const __m256i xb = broadcast_u32(x + m * t.kp + k + 4);
          maddubs_accumulate(sum16[m][0], xb, b0);
          maddubs_accumulate(sum16[m][1], xb, b1);
        }
      }
      for (int m = 0; m < MR; ++m) {
        acc[m][0] = _mm256_add_epi32(acc[m][0], _mm256_madd_epi16(sum16[m][0], ones));
        acc[m][1] = _mm256_add_epi32(acc[m][1], _mm256_madd_epi16(sum16[m][1], ones));
      }
    }
    output_stage<MR>(t, n0, acc);
  }
}

// int16 path (kS8x2): vpmaddwd(x, wc) sums 2 products of at most 255 * 128 exactly in int32.
template <int MR>
void tile_s16(const QLinearTile& t) {
  const auto* x = static_cast<const int16_t*>(t.x);
  const auto* w = static_cast<const int8_t*>(t.w);
  for (int64_t n0 = 0; n0 < t.n; n0 += kTileCols) {
    // Local sums, copied to acc at the end, so GCC keeps them in registers.
    __m256i sum[MR][2];
    for (int m = 0; m < MR; ++m) sum[m][0] = sum[m][1] = _mm256_setzero_si256();
    for (int64_t k = 0; k < t.kp; k += 2) {
      // Weights stay int8 in memory (half the cache traffic) and are sign-extended on load.
      __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
      __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16)));
      __asm__("" : "+x"(w0), "+x"(w1));  // in registers, as in tile_s8
      w += 32;
      for (int m = 0; m < MR; ++m) {
        const __m256i xb = broadcast_u32(x + m * t.kp + k);
        madd_accumulate(sum[m][0], xb, w0);
        madd_accumulate(sum[m][1], xb, w1);
      }
    }
    __m256i acc[MR][2];
    for (int m = 0; m < MR; ++m) acc[m][0] = sum[m][0], acc[m][1] = sum[m][1];
    output_stage<MR>(t, n0, acc);
  }
}

// Sum of the 32 bytes of v into 4 64-bit lanes (vpsadbw against zero: no multiplier needed).
inline __m256i sum_bytes(__m256i v) { return _mm256_sad_epu8(v, _mm256_setzero_si256()); }

inline int32_t horizontal_sum64(__m256i v) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return static_cast<int32_t>(_mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1));
}

}  // namespace

void qlinear_pack_x_u8__avx2(const uint8_t* x, int64_t x_stride, int64_t mr, int64_t k, int64_t kp,
                             uint8_t* out, int32_t* x_sum) {
  for (int64_t m = 0; m < mr; ++m, x += x_stride, out += kp) {
    __m256i sum = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 32 <= k; i += 32) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), v);
      sum = _mm256_add_epi64(sum, sum_bytes(v));
    }
    int32_t tail = 0;
    for (; i < k; ++i) tail += out[i] = x[i];
    for (; i < kp; ++i) out[i] = 0;
    x_sum[m] = horizontal_sum64(sum) + tail;
  }
}

void qlinear_pack_x_s16__avx2(const uint8_t* x, int64_t x_stride, int64_t mr, int64_t k, int64_t kp,
                              int16_t* out, int32_t* x_sum) {
  for (int64_t m = 0; m < mr; ++m, x += x_stride, out += kp) {
    __m256i sum = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 32 <= k; i += 32) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_cvtepu8_epi16(_mm256_castsi256_si128(v)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i + 16),
                          _mm256_cvtepu8_epi16(_mm256_extracti128_si256(v, 1)));
      sum = _mm256_add_epi64(sum, sum_bytes(v));
    }
    int32_t tail = 0;
    for (; i < k; ++i) tail += out[i] = x[i];
    for (; i < kp; ++i) out[i] = 0;
    x_sum[m] = horizontal_sum64(sum) + tail;
  }
}

void qlinear_ukernel_4x16c4__avx2(const QLinearTile& t) {
  switch (t.mr) {
    case 1: return tile_s8<1>(t);
    case 2: return tile_s8<2>(t);
    case 3: return tile_s8<3>(t);
    default: return tile_s8<4>(t);
  }
}

void qlinear_ukernel_4x16c4__avx2_widen(const QLinearTile& t) {
  switch (t.mr) {
    case 1: return tile_s8_widen<1>(t);
    case 2: return tile_s8_widen<2>(t);
    case 3: return tile_s8_widen<3>(t);
    default: return tile_s8_widen<4>(t);
  }
}

void qlinear_ukernel_4x16c8__avx2_u4(const QLinearTile& t) {
  switch (t.mr) {
    case 1: return tile_u4<1>(t);
    case 2: return tile_u4<2>(t);
    case 3: return tile_u4<3>(t);
    default: return tile_u4<4>(t);
  }
}

void qlinear_ukernel_4x16c2__avx2_s16(const QLinearTile& t) {
  switch (t.mr) {
    case 1: return tile_s16<1>(t);
    case 2: return tile_s16<2>(t);
    case 3: return tile_s16<3>(t);
    default: return tile_s16<4>(t);
  }
}

}  // namespace lowbit::kernels
