// The quantized linear layer operation that every low-bit kernel computes, and its dispatch.
//
// For activations x (codes in [0, 2^act_bits - 1]) and weights w (codes in [0, 2^weight_bits - 1]):
//   acc[m][n] = bias[n] + 2^acc_shift * sum_k (w[n][k] - w_zero_point[n]) * (x[m][k] - x_zero_point)
//                                                                               (int32, acc_shift in 0..24)
// then either
//   y_u8[m][n]  = clamp(out_zero_point + requantize(acc, multiplier[n], shift[n]), out_min, out_max)
// or, when y_i32 is given instead,
//   y_i32[m][n] = out_zero_point + requantize(acc, multiplier[n], shift[n])   (saturating)
// requantize(acc, M0, e) multiplies by M0 * 2^(e - 31), M0 in [0, 2^31), e in [-31, 31], as gemmlowp
// does:
//   left  = max(e, 0), right = max(-e, 0)
//   r     = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(saturate(acc * 2^left), M0), right)
// and out_zero_point + r saturates to int32 before the u8 clamp. requantize.h has these functions and
// quantize_multiplier(real, &M0, &e); docs/kernels.md has the rounding rules and bounds.
//
// acc_shift scales the sum, not the bias: it gives the bias (and so the accumulator) a finer grid than
// one product of codes, which low bit widths need (docs/quantization.md, "Accumulator shift").
//
// Preconditions (kernels pick their exact path from them): x codes < 2^act_bits as given to
// prepare(); zero points within their code ranges; K <= kMaxInFeatures; 0 <= acc_shift <= 24;
// |bias| <= 2^31 - 1 - 2^acc_shift * K * (2^bits - 1) * (2^act_bits - 1) (at most 16,744,447 at
// K = 32768, 8x8 bits, acc_shift 0), so acc is exact; 0 <= out_min <= out_max <= 255. Past the K,
// bias and shift bounds acc is still defined, modulo 2^32 (the sum is taken modulo 2^32, then
// shifted, then added to the bias), and every kernel agrees with the reference bit for bit; codes
// out of range give unspecified outputs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::kernels {

// The largest K the kernels accept: keeps |acc| < 2^31 for every bit width at acc_shift 0 (see docs).
inline constexpr int64_t kMaxInFeatures = 32768;
// The largest acc_shift the kernels accept (QLinearArgs::acc_shift).
inline constexpr int32_t kMaxAccShift = 24;

// Weights [N, K] in the canonical packed format: each row starts on a byte boundary; element k of
// a row sits at bits [(k*bits) % 8, ...) of byte (k*bits)/8 of the row, least significant bit first,
// spilling into the next byte when it crosses a boundary. Row stride = ceil(K*bits/8) bytes.
struct PackedWeights {
  int64_t rows = 0;  // N, output features
  int64_t cols = 0;  // K, input features
  int bits = 8;
  std::vector<uint8_t> data;
  int64_t row_bytes() const { return (cols * bits + 7) / 8; }
};

PackedWeights pack_weights(const uint8_t* codes, int64_t rows, int64_t cols, int bits);  // codes: [N, K]
void unpack_weights(const PackedWeights& packed, uint8_t* codes);                        // codes: [N, K]

// Kernel-ready weights: whatever layout the chosen kernel wants, built once at load time.
struct PreparedWeights {
  virtual ~PreparedWeights() = default;
  int64_t rows = 0, cols = 0;
  int bits = 8;
};


// Everything one call needs. Shapes: x [batch, x_stride] (first K used), y [batch, y_stride].
struct QLinearArgs {
  int64_t batch = 0;
  const uint8_t* x = nullptr;
  int64_t x_stride = 0;
  int32_t x_zero_point = 0;
  const int32_t* bias = nullptr;          // [N], on the grid of the shifted sum (not shifted itself)
  const int32_t* w_zero_point = nullptr;  // [N] (per tensor: all equal)
  const int32_t* multiplier = nullptr;    // [N], Q31 in [2^30, 2^31)
  const int32_t* shift = nullptr;         // [N], exponent e
  int32_t acc_shift = 0;                  // acc = bias + sum * 2^acc_shift, 0..kMaxAccShift
  int32_t out_zero_point = 0;
  int32_t out_min = 0, out_max = 255;     // for y_u8
  uint8_t* y_u8 = nullptr;                // exactly one of y_u8 / y_i32
  int32_t* y_i32 = nullptr;
  int64_t y_stride = 0;
};

// One implementation of the operation, named in XNNPACK style ("qlinear_u8_ref",
// "qlinear_u8_avx2", "qlinear_u8_avx512vnni", "qlinear_u8_amx").
class QLinearKernel {
 public:
  virtual ~QLinearKernel() = default;
  virtual const char* name() const = 0;
  virtual bool available() const = 0;  // this CPU can run it
  // It runs weights of `bits` with activations of `act_bits` (prepare() refuses the others).
  // General kernels run every pair in 1..8; the bit-serial ones only 1..4 x 1..4.
  virtual bool supports(int bits, int act_bits) const {
    return bits >= 1 && bits <= 8 && act_bits >= 1 && act_bits <= 8;
  }
  // Builds the kernel's own layout from packed weights, once, at load time.
  virtual std::unique_ptr<PreparedWeights> prepare(const PackedWeights& w, int act_bits) const = 0;
  virtual void run(const PreparedWeights& w, const QLinearArgs& args) const = 0;
};

// Every kernel compiled in, reference first (for tests and benchmarks).
const std::vector<const QLinearKernel*>& all_qlinear_kernels();
// The kernel to use on this CPU: the fastest available, unless LOWBIT_KERNEL names one
// ("ref", "avx2", "avx512vnni", "amx") — then that one, or an error if this CPU lacks it.
const QLinearKernel& best_qlinear_kernel();
// The kernel for one layer of `bits`-bit weights and `act_bits`-bit activations: a bit-serial kernel
// where it measured faster than best_qlinear_kernel() for that pair (docs/kernels.md, "Bit-serial
// kernels"), else best_qlinear_kernel(); each is probed before its first use. With LOWBIT_KERNEL set,
// the forced kernel for every layer, or lowbit::Error naming the pair when it cannot run it.
const QLinearKernel& qlinear_kernel_for(int bits, int act_bits);

}  // namespace lowbit::kernels
