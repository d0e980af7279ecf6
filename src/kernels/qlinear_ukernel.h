// Internal to src/kernels: the blocked weight layouts and the micro-kernels that consume them.
//
// Micro-kernels are plain functions over raw pointers (no STL, no inline templates shared with other
// files), so the ISA flags of their file cannot leak into code the rest of the program links to.
#pragma once

#include <cstdint>

namespace lowbit::kernels {

inline constexpr int kTileRows = 4;       // MR: activation rows per tile
inline constexpr int kTileCols = 16;      // NR: output features per weight block
inline constexpr int kKAlign = 16;        // K is zero-padded to a multiple of this (kp)

// Blocked weight layouts, built once by prepare(). Weights are centred, wc = w - 2^(bits-1), so
// they fit int8 (except kU4x8, which keeps raw codes); features n >= N and k >= K are zero.
//   kS8x4:  int8  [ceil(N/16)][kp/4][16 n][4 k]   for vpmaddubsw / vpdpbusd
//   kS8x2:  int8  [ceil(N/16)][kp/2][16 n][2 k]   sign-extended to int16 in registers for vpmaddwd
//                                                 (8-bit weights x 8-bit activations)
//   kU4x8:  u4    [ceil(N/16)][kp/8][16 n][4 k] bytes, k-quads 2q and 2q+1 in the low and high
//                                                 nibbles; raw codes (not centred), bits <= 4
enum class WeightLayout { kS8x4, kS8x2, kU4x8 };

// One tile of rows through every output feature. Activations are packed by the caller into
// x: [mr][kp] (u8 for kS8x4, int16 for kS8x2), zero-padded past K. For row m and feature n:
//   acc = dot(wc[n], x[m]) * 2^acc_shift + col_const[n] + row_factor[n] * x_sum[m]   (int32, mod 2^32)
// where the caller has already shifted the zero-point cross terms inside col_const and row_factor
// (but not the bias), so one vpslld on the dot product is all the shift costs here.
// then requantize/clamp/store exactly as requantize.h specifies.
struct QLinearTile {
  int64_t mr = 0;                    // 1..kTileRows
  int64_t kp = 0;                    // padded K
  int64_t n = 0;                     // N
  int64_t k_chunk = 0;               // multiple of 4: k summed in int16 before widening (vpmaddubsw)
  const void* x = nullptr;           // [mr][kp]
  const int32_t* x_sum = nullptr;    // [mr], sum_k x[m][k]
  const void* w = nullptr;           // blocked weights
  const int32_t* col_const = nullptr;   // [N rounded up to 16], as below
  const int32_t* row_factor = nullptr;  // [N rounded up to 16]
  const int32_t* multiplier = nullptr;  // [N rounded up to 16]
  const int32_t* shift = nullptr;       // [N rounded up to 16]
  int32_t acc_shift = 0;                // 0..kMaxAccShift, as QLinearArgs::acc_shift
  int32_t out_zero_point = 0, out_min = 0, out_max = 255;
  // The threshold output stage (call_constants.h, fill_thresholds), read by the AVX-512 kernels only:
  // for y_u8, code = threshold_base[n] + #{j < levels : acc > thresholds[n / 16][j][n % 16]},
  // the same codes as requantize + clamp. Null: the full output stage.
  const int32_t* threshold_base = nullptr;  // [N rounded up to 16]
  const int32_t* thresholds = nullptr;      // [ceil(N/16)][levels][16]
  int32_t levels = 0;
  uint8_t* y_u8 = nullptr;           // [mr][y_stride] or null
  int32_t* y_i32 = nullptr;          // [mr][y_stride] or null
  int64_t y_stride = 0;
};

using QLinearUkernel = void (*)(const QLinearTile& tile);

// Activation tiles: rows [0, mr) of x: [mr][x_stride] -> out: [mr][kp] (u8 or int16), zero past k,
// and x_sum[m] = sum_k x[m][k]. Need AVX2 (every CPU with AVX-512 VNNI has it).
void qlinear_pack_x_u8__avx2(const uint8_t* x, int64_t x_stride, int64_t mr, int64_t k, int64_t kp,
                             uint8_t* out, int32_t* x_sum);
void qlinear_pack_x_s16__avx2(const uint8_t* x, int64_t x_stride, int64_t mr, int64_t k, int64_t kp,
                              int16_t* out, int32_t* x_sum);

// vpmaddubsw, summing in int16 over tile.k_chunk k before widening to int32 (exact when
// k_chunk / 2 * (2^act_bits - 1) * 2^(bits - 1) <= 32767, see docs/kernels.md).
void qlinear_ukernel_4x16c4__avx2(const QLinearTile& tile);
// As 4x16c4 with k_chunk = 4: vpmaddubsw then vpmaddwd every 4 k (8x7 and 7x8 bits).
void qlinear_ukernel_4x16c4__avx2_widen(const QLinearTile& tile);
// As 4x16c4, unpacking kU4x8 nibbles in registers (k_chunk a multiple of 8).
void qlinear_ukernel_4x16c8__avx2_u4(const QLinearTile& tile);
// vpmaddwd on int16 weights and activations: exact for 8-bit x 8-bit.
void qlinear_ukernel_4x16c2__avx2_s16(const QLinearTile& tile);
// vpdpbusd on 512-bit registers (one k-quad of 16 features a register): exact for every width.
void qlinear_ukernel_4x16c4__avx512vnni(const QLinearTile& tile);


// AMX-INT8 (qlinear_amx.cc): rows of x against weights in kS8x4 with kp a multiple of 64, which is
// exactly the B-tile layout of tdpbusd: the 16 x 64-byte tile of feature block b and k block j is
// the 1 KiB at w + (b * kp / 64 + j) * 1024. Blocks of 32 rows x 32 features accumulate in four C
// tiles (two A tiles of 16 rows x 64 k, two B tiles); a last odd block of 16 features uses two.
// A block of 32 rows whose every row may be read over [0, kp) is loaded straight from x (bytes past
// K meet zero weights); other blocks are copied into `pack`, zero-padded. The int32 dot products go
// through the C tiles to `c` and on to output_stage (qlinear_simd256.h), as in the other kernels.
// Configures the tiles on entry and releases them on return; the caller has obtained the process's
// permission to use AMX (cpu_has_amx()).
inline constexpr int kAmxBlockRows = 32;
inline constexpr int kAmxKBlock = 64;
struct QLinearAmxRows {
  int64_t rows = 0;                  // rows of x to run, from row 0
  const uint8_t* x = nullptr;        // [rows][x_stride], first k used
  int64_t x_stride = 0;
  int64_t k = 0;                     // K
  int64_t x_readable = 0;            // bytes from x on that may be read (at least (rows-1)*x_stride + k)
  uint8_t* pack = nullptr;           // scratch [kAmxBlockRows][kp], 64-byte aligned
  int32_t* c = nullptr;              // scratch [kAmxBlockRows][32], 64-byte aligned
  QLinearTile tile;                  // kp, n, w and the output stage; y at row 0; mr, x, x_sum unused
};
void qlinear_rows_32x32c64__amx(const QLinearAmxRows& args);
}  // namespace lowbit::kernels

namespace lowbit::kernels {

// The sparse first layer (pixel_linear.h): rows of raw pixels against weights blocked as
//   int8 [ceil(np / 64) blocks][pairs = ceil(K / 2)][width of the block: 64, or the rest][2 k]
// holding wc = w - centre, in [-2^(b-1), 2^(b-1)) (zero for k >= K and n >= N). For each row it lists
// the pixel pairs (2j, 2j + 1) with a non-zero pixel and their code deltas d = x - bg packed as two
// int16 (d0 | d1 << 16), starts every feature at background_dot[n] = dot(wc[n], bg), adds
// vpmaddwd(d pair, wc pair) per listed pair (the weights sign-extended to int16 on load), and hands
// the dot products with x_sum = background_sum + sum(d) to the output stage. With byte_chunk > 0 it
// uses vpmaddubsw on the two deltas as bytes instead, 16 features a multiply instead of 8, and packs
// a pair as d0 | d1 << 8 | (d0 + d1) << 16.
struct PixelRowsArgs {
  int64_t rows = 0;
  const uint8_t* pixels = nullptr;   // [rows][pixel_stride]
  int64_t pixel_stride = 0;
  int64_t K = 0;
  int64_t channels = 1;
  int64_t per_channel = 0;           // pixels per channel
  // Pixels p < ink_from have the background code in every channel; the listing works on the shifted
  // pixel q = max(p - (ink_from - 1), 0), and delta_table[c][q] is the delta of pixel q + ink_from - 1
  // (0 for q = 0).
  int ink_from = 1;
  const int16_t* delta_table = nullptr;      // [channels][256]
  // One channel: a pair's packed deltas are pair_delta_low[q0] + pair_delta_high[q1].
  const int32_t* pair_delta_low = nullptr;   // [256]
  const int32_t* pair_delta_high = nullptr;  // [256]
  bool identity_deltas = false;      // one channel and delta q = p for every pixel p (ink_from = 1)
  const int8_t* w = nullptr;
  // 0: vpmaddwd on int16 deltas. Otherwise vpmaddubsw on byte deltas (all deltas >= 0, act_bits <= 7),
  // summed in int16 over byte_chunk pairs at a time before widening.
  int64_t byte_chunk = 0;
  int64_t pairs = 0;
  const int32_t* background_dot = nullptr;  // [np]
  int32_t background_sum = 0;
  int32_t* pair_index = nullptr;     // scratch, [pairs + 8]
  int32_t* pair_delta = nullptr;     // scratch, [pairs + 8]
  QLinearTile tile;                  // the output stage's fields; y_u8 / y_i32 point at row 0
};

void pixel_linear_rows__avx2_sparse(const PixelRowsArgs& args);
// How many pixel pairs (2j, 2j + 1), j < ceil(K / 2), hold a non-zero pixel, over `rows` rows of
// pixels [rows][stride].
int64_t pixel_pairs_active__avx2(const uint8_t* pixels, int64_t stride, int64_t rows, int64_t K);

}  // namespace lowbit::kernels
