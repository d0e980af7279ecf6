// Bit-serial qlinear micro-kernels on AVX-512 VPOPCNTDQ: vpandd + vpopcntd over 16 features x 32 k.
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vpopcntdq; runs only when dispatch.cc finds
// VPOPCNTDQ. The output stage is qlinear_simd256.h's, shared with the other SIMD kernels.
#include <immintrin.h>

#include <cstdint>

#include "kernels/qlinear_bitserial.h"
#include "kernels/qlinear_simd256.h"

namespace lowbit::kernels {
namespace {

// Rows [m0, m0 + G) of the tile against one 16-feature block: sum[g][s] collects the popcounts of
// every plane pair with i + j = s, so no shift sits in the loop; Horner's rule weighs them by 2^s
// at the end. Counts stay below 2^31: at most 4 pairs * 32 * kw <= 2^17 per s at K = 32768.
template <int B, int A, int G>
inline void rows_dot(const BitserialTile& t, const uint32_t* w, int m0, __m256i (&acc)[kTileRows][2]) {
  constexpr int S = A + B - 1;
  __m512i sum[G][S];
  for (int g = 0; g < G; ++g)
    for (int s = 0; s < S; ++s) sum[g][s] = _mm512_setzero_si512();
  const uint32_t* x = t.x_planes + m0 * A * t.kw;
  for (int64_t k = 0; k < t.kw; ++k, w += B * 16) {
    __m512i wp[B];
    for (int j = 0; j < B; ++j) wp[j] = _mm512_loadu_si512(w + j * 16);
    for (int g = 0; g < G; ++g)
      for (int i = 0; i < A; ++i) {
        const __m512i xb = _mm512_set1_epi32(static_cast<int>(x[(g * A + i) * t.kw + k]));
        for (int j = 0; j < B; ++j)
          sum[g][i + j] = _mm512_add_epi32(sum[g][i + j], _mm512_popcnt_epi32(_mm512_and_si512(wp[j], xb)));
      }
  }
  for (int g = 0; g < G; ++g) {
    __m512i total = sum[g][S - 1];
    for (int s = S - 2; s >= 0; --s) total = _mm512_add_epi32(_mm512_add_epi32(total, total), sum[g][s]);
    // Through memory rather than vextracti64x4: GCC 12's intrinsic trips -Wmaybe-uninitialized.
    alignas(64) int32_t lanes[16];
    _mm512_store_si512(lanes, total);
    acc[m0 + g][0] = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
    acc[m0 + g][1] = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes + 8));
  }
}

// The first MR rows of acc through the shared output stage.
template <int MR>
inline void finish(const BitserialTile& t, int64_t n0, const __m256i (&acc)[kTileRows][2]) {
  __m256i rows[MR][2];
  for (int m = 0; m < MR; ++m) rows[m][0] = acc[m][0], rows[m][1] = acc[m][1];
  output_stage<MR>(t.out, n0, rows);
}

template <int B, int A>
void tile_vpopcnt(const BitserialTile& t) {
  // Rows that share one load of the weight planes: as many as keep the sums in registers.
  constexpr int G = (A + B - 1) <= 4 ? 4 : 2;
  const uint32_t* w = t.w_planes;
  for (int64_t n0 = 0; n0 < t.out.n; n0 += kTileCols, w += t.kw * B * 16) {
    __m256i acc[kTileRows][2] = {};
    for (int m0 = 0; m0 < t.out.mr; m0 += G) rows_dot<B, A, G>(t, w, m0, acc);  // rows >= mr: zero planes
    switch (t.out.mr) {
      case 1: finish<1>(t, n0, acc); break;
      case 2: finish<2>(t, n0, acc); break;
      case 3: finish<3>(t, n0, acc); break;
      default: finish<4>(t, n0, acc); break;
    }
  }
}

template <int B, int A>
void entry(const BitserialTile& t) { tile_vpopcnt<B, A>(t); }

}  // namespace

BitserialUkernel qlinear_bitserial_ukernel_4x16__avx512vpopcnt(int bits, int act_bits) {
  static constexpr BitserialUkernel kTable[16] = {
      entry<1, 1>, entry<1, 2>, entry<1, 3>, entry<1, 4>, entry<2, 1>, entry<2, 2>, entry<2, 3>, entry<2, 4>,
      entry<3, 1>, entry<3, 2>, entry<3, 3>, entry<3, 4>, entry<4, 1>, entry<4, 2>, entry<4, 3>, entry<4, 4>};
  return kTable[(bits - 1) * 4 + (act_bits - 1)];
}

}  // namespace lowbit::kernels
