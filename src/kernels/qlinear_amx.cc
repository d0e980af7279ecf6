// AMX-INT8 qlinear micro-kernel: 32 rows x 32 features per block in four C tiles (tdpbusd), finished
// by the 512-bit output stage of qlinear_simd512.h. Compiled with -mamx-tile -mamx-int8
// and AVX-512 F/BW/VL/VNNI (masked byte loads for the row sums); runs only when dispatch.cc found AMX
// and the kernel granted this process the tile data state (cpu_has_amx()).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/qlinear_simd512.h"
#include "kernels/qlinear_ukernel.h"

namespace lowbit::kernels {
namespace {

// The 64-byte operand of ldtilecfg (Intel SDM vol. 2, LDTILECFG): palette 1, then bytes per row and
// rows of each of the 8 tiles. Every tile here is 16 rows x 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles: C 0..3 (int32 [16 rows][16 features]), A 4, 5 (u8 [16 rows][64 k]), B 6, 7 (s8 [16 k-quads][16 n][4 k]).
void configure_tiles() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) config.colsb[t] = 64, config.rows[t] = 16;
  _tile_loadconfig(&config);
}

// sum_k x[k] over the first k bytes, modulo 2^32 as the call constants expect.
int32_t row_sum(const uint8_t* x, int64_t k) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i sum = zero;
  int64_t i = 0;
  for (; i + 64 <= k; i += 64) sum = _mm512_add_epi64(sum, _mm512_sad_epu8(_mm512_loadu_si512(x + i), zero));
  if (i < k) {
    const __mmask64 tail = ~uint64_t{0} >> (64 - (k - i));  // masked-off bytes are never read
    sum = _mm512_add_epi64(sum, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(tail, x + i), zero));
  }
  return static_cast<int32_t>(_mm512_reduce_add_epi64(sum));
}

// Rows [0, 32) of a (row stride a_stride, kp bytes each) against feature block w0 and, if
// kTwoBlocks, the next one -> c: int32 [32 rows][32], features of w0 in columns 0..15.
template <bool kTwoBlocks>
void dot_block(const uint8_t* a, int64_t a_stride, const int8_t* w0, int64_t kp, int32_t* c) {
  const int8_t* w1 = w0 + kp * kTileCols;  // one block is [kp/4][16 n][4 k]
  _tile_zero(0);
  _tile_zero(2);
  if (kTwoBlocks) {
    _tile_zero(1);
    _tile_zero(3);
  }
  const uint8_t* a1 = a + 16 * a_stride;
  for (int64_t k = 0; k < kp; k += kAmxKBlock) {
    _tile_loadd(4, a + k, a_stride);
    _tile_loadd(6, w0 + k * kTileCols, 64);
    _tile_loadd(5, a1 + k, a_stride);
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(2, 5, 6);
    if (kTwoBlocks) {
      _tile_loadd(7, w1 + k * kTileCols, 64);
      _tile_dpbusd(1, 4, 7);
      _tile_dpbusd(3, 5, 7);
    }
  }
  constexpr int64_t kStride = 2 * kTileCols * sizeof(int32_t);
  _tile_stored(0, c, kStride);
  _tile_stored(2, c + 16 * 2 * kTileCols, kStride);
  if (kTwoBlocks) {
    _tile_stored(1, c + kTileCols, kStride);
    _tile_stored(3, c + 16 * 2 * kTileCols + kTileCols, kStride);
  }
}

// Rows [m0, m0 + MR) of the block, feature block n0 (c's columns col..col+15), through output_stage.
template <int MR>
void finish(const QLinearTile& block, const int32_t* c, const int32_t* x_sum, int64_t m0, int64_t n0, int col) {
  QLinearTile t = block;
  t.x_sum = x_sum + m0;
  if (t.y_u8) t.y_u8 += m0 * t.y_stride;
  if (t.y_i32) t.y_i32 += m0 * t.y_stride;
  __m512i acc[MR];
  for (int m = 0; m < MR; ++m) acc[m] = _mm512_load_si512(c + (m0 + m) * 2 * kTileCols + col);
  output_stage16<MR>(t, n0, acc);
}

void finish_rows(const QLinearTile& block, const int32_t* c, const int32_t* x_sum, int64_t mr, int64_t n0, int col) {
  int64_t m = 0;
  for (; m + 8 <= mr; m += 8) finish<8>(block, c, x_sum, m, n0, col);
  if (m + 4 <= mr) finish<4>(block, c, x_sum, m, n0, col), m += 4;
  switch (mr - m) {
    case 3: return finish<3>(block, c, x_sum, m, n0, col);
    case 2: return finish<2>(block, c, x_sum, m, n0, col);
    case 1: return finish<1>(block, c, x_sum, m, n0, col);
    default: return;
  }
}

}  // namespace

void qlinear_rows_32x32c64__amx(const QLinearAmxRows& r) {
  configure_tiles();
  const QLinearTile& t = r.tile;
  const int64_t kp = t.kp;
  const auto* w = static_cast<const int8_t*>(t.w);
  const int64_t feature_blocks = (t.n + kTileCols - 1) / kTileCols;
  int32_t x_sum[kAmxBlockRows];
  for (int64_t m0 = 0; m0 < r.rows; m0 += kAmxBlockRows) {
    const int64_t mr = r.rows - m0 < kAmxBlockRows ? r.rows - m0 : kAmxBlockRows;
    const uint8_t* x = r.x + m0 * r.x_stride;
    for (int64_t m = 0; m < mr; ++m) x_sum[m] = row_sum(x + m * r.x_stride, r.k);
    const uint8_t* a = x;
    int64_t a_stride = r.x_stride;
    // Straight from x when all 32 rows may be read to kp: bytes past k then meet zero weights.
    if (mr < kAmxBlockRows || (m0 + kAmxBlockRows - 1) * r.x_stride + kp > r.x_readable) {
      for (int64_t m = 0; m < kAmxBlockRows; ++m) {
        uint8_t* out = r.pack + m * kp;
        const int64_t copied = m < mr ? r.k : 0;
        if (copied) std::memcpy(out, x + m * r.x_stride, static_cast<size_t>(copied));
        std::memset(out + copied, 0, static_cast<size_t>(kp - copied));
      }
      a = r.pack;
      a_stride = kp;
    }
    QLinearTile block = t;
    if (block.y_u8) block.y_u8 += m0 * t.y_stride;
    if (block.y_i32) block.y_i32 += m0 * t.y_stride;
    for (int64_t b = 0; b < feature_blocks; b += 2) {
      const int8_t* wb = w + b * kp * kTileCols;
      if (b + 1 < feature_blocks) {
        dot_block<true>(a, a_stride, wb, kp, r.c);
        finish_rows(block, r.c, x_sum, mr, b * kTileCols, 0);
        finish_rows(block, r.c, x_sum, mr, (b + 1) * kTileCols, kTileCols);
      } else {
        dot_block<false>(a, a_stride, wb, kp, r.c);
        finish_rows(block, r.c, x_sum, mr, b * kTileCols, 0);
      }
    }
  }
  _tile_release();
}

}  // namespace lowbit::kernels
