// AVX2 qlinear micro-kernels: 4 rows x 16 features per tile, vpmaddubsw (or vpmaddwd for 8x8 bits).
// Compiled with -mavx2 -mfma -mbmi2; everything here except the exported ukernels has internal linkage.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/qlinear_simd256.h"
#include "kernels/qlinear_ukernel.h"

namespace lowbit::kernels {
namespace {

// vpmaddubsw(u8 x, s8 wc) gives int16 sums of 2 products; GROUP of them (GROUP * 4 k) are added in
// int16 before vpmaddwd widens to int32. prepare() picks GROUP so the int16 sums cannot saturate.
template <int MR, int GROUP>
void tile_s8(const QLinearTile& t) {
  const __m256i ones = _mm256_set1_epi16(1);
  const auto* x = static_cast<const uint8_t*>(t.x);
  const auto* w = static_cast<const int8_t*>(t.w);
  for (int64_t n0 = 0; n0 < t.n; n0 += kTileCols) {
    __m256i acc[MR][2];
    for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_si256();
    for (int64_t k = 0; k < t.kp; k += 4 * GROUP) {
      __m256i sum16[MR][2];
      for (int g = 0; g < GROUP; ++g) {
        const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
        const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32));
        w += 64;
        for (int m = 0; m < MR; ++m) {
          const __m256i xb = broadcast_u32(x + m * t.kp + k + 4 * g);
          const __m256i p0 = _mm256_maddubs_epi16(xb, w0);
          const __m256i p1 = _mm256_maddubs_epi16(xb, w1);
          sum16[m][0] = g == 0 ? p0 : _mm256_add_epi16(sum16[m][0], p0);
          sum16[m][1] = g == 0 ? p1 : _mm256_add_epi16(sum16[m][1], p1);
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

// int16 path: vpmaddwd(x, wc) sums 2 products of at most 255 * 128 exactly in int32.
template <int MR>
void tile_s16(const QLinearTile& t) {
  const auto* x = static_cast<const int16_t*>(t.x);
  const auto* w = static_cast<const int16_t*>(t.w);
  for (int64_t n0 = 0; n0 < t.n; n0 += kTileCols) {
    __m256i acc[MR][2];
    for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_si256();
    for (int64_t k = 0; k < t.kp; k += 2) {
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16));
      w += 32;
      for (int m = 0; m < MR; ++m) {
        const __m256i xb = broadcast_u32(x + m * t.kp + k);
        acc[m][0] = _mm256_add_epi32(acc[m][0], _mm256_madd_epi16(xb, w0));
        acc[m][1] = _mm256_add_epi32(acc[m][1], _mm256_madd_epi16(xb, w1));
      }
    }
    output_stage<MR>(t, n0, acc);
  }
}

template <int GROUP>
void dispatch_s8(const QLinearTile& t) {
  switch (t.mr) {
    case 1: return tile_s8<1, GROUP>(t);
    case 2: return tile_s8<2, GROUP>(t);
    case 3: return tile_s8<3, GROUP>(t);
    default: return tile_s8<4, GROUP>(t);
  }
}

}  // namespace

void qlinear_ukernel_4x16c4__avx2(const QLinearTile& t) { dispatch_s8<1>(t); }
void qlinear_ukernel_4x16c8__avx2(const QLinearTile& t) { dispatch_s8<2>(t); }
void qlinear_ukernel_4x16c16__avx2(const QLinearTile& t) { dispatch_s8<4>(t); }

void qlinear_ukernel_4x16c2__avx2_s16(const QLinearTile& t) {
  switch (t.mr) {
    case 1: return tile_s16<1>(t);
    case 2: return tile_s16<2>(t);
    case 3: return tile_s16<3>(t);
    default: return tile_s16<4>(t);
  }
}

}  // namespace lowbit::kernels
