// Bit-serial qlinear micro-kernels on AVX-512 VPOPCNTDQ: vpandd + vpopcntd over 16 features x 32 k.
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vpopcntdq; runs only when dispatch.cc finds
// VPOPCNTDQ. The output stage is qlinear_simd512.h's, shared with the VNNI and AMX kernels.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/qlinear_bitserial.h"
#include "kernels/qlinear_simd512.h"

namespace lowbit::kernels {
namespace {

// Rows [m0, m0 + G) of the tile against one 16-feature block: sum[g][s] collects the popcounts of
// every plane pair with i + j = s, so no shift sits in the loop; Horner's rule weighs them by 2^s
// at the end. Counts stay below 2^31: at most 4 pairs * 32 * kw <= 2^17 per s at K = 32768.
template <int B, int A, int G>
inline void rows_dot(const BitserialTile& t, const uint32_t* w, int m0, __m512i (&acc)[kTileRows]) {
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
    acc[m0 + g] = total;
  }
}

// The first MR rows of acc through the shared output stage.
template <int MR>
inline void finish(const BitserialTile& t, int64_t n0, const __m512i (&acc)[kTileRows]) {
  __m512i rows[MR];
  for (int m = 0; m < MR; ++m) rows[m] = acc[m];
  output_stage16<MR>(t.out, n0, rows);
}

template <int B, int A>
void tile_vpopcnt(const BitserialTile& t) {
  // Rows that share one load of the weight planes: as many as keep the sums in registers.
  constexpr int G = (A + B - 1) <= 4 ? 4 : 2;
  const uint32_t* w = t.w_planes;
  for (int64_t n0 = 0; n0 < t.out.n; n0 += kTileCols, w += t.kw * B * 16) {
    __m512i acc[kTileRows];
    for (__m512i& v : acc) v = _mm512_setzero_si512();
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

void qlinear_pack_x_planes__avx512(const uint8_t* x, int64_t x_stride, int64_t mr, int64_t K, int act_bits,
                                   int64_t kw, uint32_t* planes, int32_t* x_sum) {
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t m = 0; m < kTileRows; ++m) {
    uint32_t* p = planes + m * act_bits * kw;
    if (m >= mr) {
      std::memset(p, 0, sizeof(uint32_t) * static_cast<size_t>(act_bits * kw));
      x_sum[m] = 0;
      continue;
    }
    const uint8_t* row = x + m * x_stride;
    __m512i sum = zero;
    for (int64_t w = 0; w < kw; w += 2) {  // 64 codes: two words of every plane
      const int64_t rest = K - 32 * w;     // >= 1
      // A masked load reads no byte past K (and faults on none).
      const __mmask64 in_row = rest >= 64 ? ~__mmask64{0} : (__mmask64{1} << rest) - 1;
      const __m512i v = _mm512_maskz_loadu_epi8(in_row, row + 32 * w);
      sum = _mm512_add_epi64(sum, _mm512_sad_epu8(v, zero));
      for (int i = 0; i < act_bits; ++i) {
        const uint64_t bits = _mm512_test_epi8_mask(v, _mm512_set1_epi8(static_cast<char>(1 << i)));
        p[i * kw + w] = static_cast<uint32_t>(bits);
        if (w + 1 < kw) p[i * kw + w + 1] = static_cast<uint32_t>(bits >> 32);
      }
    }
    // Through memory, not _mm512_reduce_add_epi64: GCC 12's intrinsic trips -Wmaybe-uninitialized.
  alignas(64) int64_t lanes[8];
    _mm512_store_si512(lanes, sum);
    x_sum[m] = static_cast<int32_t>(lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7]);
  }
}

BitserialUkernel qlinear_bitserial_ukernel_4x16__avx512vpopcnt(int bits, int act_bits) {
  static constexpr BitserialUkernel kTable[16] = {
      entry<1, 1>, entry<1, 2>, entry<1, 3>, entry<1, 4>, entry<2, 1>, entry<2, 2>, entry<2, 3>, entry<2, 4>,
      entry<3, 1>, entry<3, 2>, entry<3, 3>, entry<3, 4>, entry<4, 1>, entry<4, 2>, entry<4, 3>, entry<4, 4>};
  return kTable[(bits - 1) * 4 + (act_bits - 1)];
}

}  // namespace lowbit::kernels
