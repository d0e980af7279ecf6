// AVX-512 VNNI qlinear micro-kernel: the AVX2 tile (4 rows x 16 features) with vpdpbusd on ymm.
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni; only runs when dispatch.cc finds VNNI.
// acc_shift is applied by output_stage (qlinear_simd256.h), shared with AVX2 and tested there.
#include <immintrin.h>

#include <cstdint>

#include "kernels/qlinear_simd256.h"
#include "kernels/qlinear_ukernel.h"

namespace lowbit::kernels {
namespace {

// vpdpbusd adds 4 products u8 x * s8 wc to each int32 lane with no intermediate saturation.
template <int MR>
void tile_vnni(const QLinearTile& t) {
  const auto* x = static_cast<const uint8_t*>(t.x);
  const auto* w = static_cast<const int8_t*>(t.w);
  for (int64_t n0 = 0; n0 < t.n; n0 += kTileCols) {
    // Local sums, copied to acc at the end, so they stay in registers (as in qlinear_avx2.cc).
    __m256i sum[MR][2];
    for (int m = 0; m < MR; ++m) sum[m][0] = sum[m][1] = _mm256_setzero_si256();
    for (int64_t k = 0; k < t.kp; k += 4) {
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32));
      w += 64;
      for (int m = 0; m < MR; ++m) {
        const __m256i xb = broadcast_u32(x + m * t.kp + k);
        sum[m][0] = _mm256_dpbusd_epi32(sum[m][0], xb, w0);
        sum[m][1] = _mm256_dpbusd_epi32(sum[m][1], xb, w1);
      }
    }
    __m256i acc[MR][2];
    for (int m = 0; m < MR; ++m) acc[m][0] = sum[m][0], acc[m][1] = sum[m][1];
    output_stage<MR>(t, n0, acc);
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
