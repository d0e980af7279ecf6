// AVX-512 VNNI qlinear micro-kernel: the AVX2 tile (4 rows x 16 features) with vpdpbusd on zmm.
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni; only runs when dispatch.cc finds VNNI.
// The 512-bit output stage (qlinear_simd256.h's arithmetic on 16 lanes) is qlinear_simd512.h's.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/qlinear_simd512.h"
#include "kernels/qlinear_ukernel.h"

namespace lowbit::kernels {
namespace {

// vpdpbusd adds 4 products u8 x * s8 wc to each int32 lane with no intermediate saturation. On zmm,
// one 64-byte k-quad of a 16-feature block is one register: each k-quad is one weight load and one
// vpdpbusd per row (on ymm it was two of each, and measured 5-15 % slower on Sapphire Rapids,
// docs/kernels.md); each sum goes whole to the 16-lane output stage.
template <int MR>
void tile_vnni(const QLinearTile& t) {
  const auto* x = static_cast<const uint8_t*>(t.x);
  const auto* w = static_cast<const int8_t*>(t.w);
  for (int64_t n0 = 0; n0 < t.n; n0 += kTileCols) {
    __m512i sum[MR];
    for (int m = 0; m < MR; ++m) sum[m] = _mm512_setzero_si512();
    for (int64_t k = 0; k < t.kp; k += 4) {
      const __m512i w0 = _mm512_loadu_si512(w);
      w += 64;
      for (int m = 0; m < MR; ++m) {
        int32_t quad;
        std::memcpy(&quad, x + m * t.kp + k, sizeof quad);
        sum[m] = _mm512_dpbusd_epi32(sum[m], _mm512_set1_epi32(quad), w0);
      }
    }
    output_stage16<MR>(t, n0, sum);
  }
}

}  // namespace

void qlinear_ukernel_4x16c4__avx512vnni(const QLinearTile& t) {
  switch (t.mr) {
    case 1: return tile_vnni<1>(t);
    case 2: return tile_vnni<2>(t);
    case 3: return tile_vnni<3>(t);
    default: return tile_vnni<4>(t);
  }
}

}  // namespace lowbit::kernels
