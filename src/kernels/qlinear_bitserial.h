// Internal to src/kernels: bit-plane layouts and micro-kernels of the bit-serial qlinear kernels.
//
// For weight codes w < 2^B and activation codes x < 2^A (B, A <= 4), with bit planes w_j, x_i:
//   sum_k w[k] * x[k] = sum_i sum_j 2^(i+j) * popcount(w_j & x_i)
// over words of 32 (SIMD) or 64 (portable) k. The kernels hold raw codes (centre 0), so the
// zero-point cross terms and the output stage are call_constants.h's and qlinear_simd256.h's.
#pragma once

#include <cstdint>

#include "kernels/qlinear_ukernel.h"

namespace lowbit::kernels {

inline constexpr int kMaxBitserialBits = 4;  // weights and activations of 1..4 bits

// SIMD weight planes, built once by prepare(): uint32 [ceil(N/16)][kw][B][16 n], kw = ceil(K/32);
// bit t of word (block, w, j, lane) is bit j of code w[16 * block + lane][32 * w + t], zero past N
// and K. Activation planes, packed per tile of rows at run time: uint32 [kTileRows][A][kw], bit t of
// word (m, i, w) is bit i of x[m][32 * w + t]; zero past K and for rows m >= mr.
struct BitserialTile {
  int64_t kw = 0;                      // 32-bit words per plane
  const uint32_t* x_planes = nullptr;  // [kTileRows][A][kw]
  const uint32_t* w_planes = nullptr;  // [ceil(N/16)][kw][B][16]
  QLinearTile out;                     // mr, n, x_sum and the output stage (qlinear_ukernel.h)
};

// One micro-kernel per (B, A) pair; index (B - 1) * 4 + (A - 1).
using BitserialUkernel = void (*)(const BitserialTile& tile);
// vpandd + vpopcntd on zmm (AVX-512 VPOPCNTDQ): 16 features x 32 k a pair of planes.
BitserialUkernel qlinear_bitserial_ukernel_4x16__avx512vpopcnt(int bits, int act_bits);
// vpand + vpshufb nibble-table popcount on ymm, byte counts widened with vpmaddubsw/vpmaddwd.
BitserialUkernel qlinear_bitserial_ukernel_4x16__avx2(int bits, int act_bits);

// Rows [0, mr) of x: [mr][x_stride] codes -> planes [kTileRows][act_bits][kw] (rows >= mr zero),
// and x_sum[m] = sum_k x[m][k] (rows >= mr: 0). Bits of a code at act_bits and above are dropped
// from the planes (codes out of range give unspecified outputs, qlinear.h). Needs AVX2.
void qlinear_pack_x_planes__avx2(const uint8_t* x, int64_t x_stride, int64_t mr, int64_t K, int act_bits,
                                 int64_t kw, uint32_t* planes, int32_t* x_sum);
// The same with AVX-512BW: 64 codes a masked load, vptestmb for each plane (measured 2x faster).
void qlinear_pack_x_planes__avx512(const uint8_t* x, int64_t x_stride, int64_t mr, int64_t K, int act_bits,
                                   int64_t kw, uint32_t* planes, int32_t* x_sum);

}  // namespace lowbit::kernels
