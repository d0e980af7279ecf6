// The integer engine's operators besides the GEMM, on uint8 codes in NHWC layout ([batch, h, w, c]):
// pixel lookup, im2col, max and average pooling, residual add and ReLU. The functions here are the
// scalar reference code: the specification (docs/quantization.md, "CNNs on the integer engine").
// The engine runs them through IntegerOpsKernel (below), which dispatch.cc picks by CPUID.
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit::kernels {

// A window over [h, w]: kernel, stride and padding per axis (dilation 1).
struct Window {
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

// An activation tensor of one image: [h, w, c] codes.
struct ImageShape {
  int64_t h = 1, w = 1, c = 1;
  int64_t size() const { return h * w * c; }
};

// pixels [batch, c, h * w] (an ImageSet's layout) -> codes [batch, h * w, c], each pixel p of
// channel ch mapped through table[ch * 256 + p].
void pixels_to_codes(const uint8_t* pixels, int64_t batch, const ImageShape& shape, const uint8_t* table,
                     uint8_t* codes);

// x [batch, h, w, c] -> cols [batch * oh * ow, kh * kw * c], the row of output position (oy, ox)
// holding x[oy * stride_h - pad_h + ky][ox * stride_w - pad_w + kx][c] in (ky, kx, c) order, and
// pad_code where that falls outside the image. (oh, ow) is `out`'s (h, w).
void im2col(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& window,
            const ImageShape& out, uint8_t pad_code, uint8_t* cols);

// y[oy][ox][c] = max of x over the window's cells inside the image (codes are monotone in the
// real values, so this is exact). x [batch, in], y [batch, out], out.c == in.c.
void max_pool(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& window,
              const ImageShape& out, uint8_t* y);

// Average pooling with a requantization:
//   y = clamp(out_zero_point + requantize(S * 2^sum_shift, multiplier[d - 1], shift[d - 1]),
//             out_min, out_max),   S = sum over the window's cells inside the image of (x - in_zero_point)
// with d the divisor: the kernel area when count_include_pad (padding is real 0, code
// in_zero_point, adding 0), else the cells inside the image. multiplier/shift: [kh * kw].
// S is a few codes' worth, so without the shift the requantization's two roundings (the high
// multiply's, then the shift's) would tip one output in eight by a code; with it the first is
// 2^-sum_shift of a code (docs/quantization.md). |S| * 2^sum_shift must fit int32: see
// avg_pool_sum_shift. Files from before the shift existed run with sum_shift 0.
struct AvgPoolArgs {
  Window window;
  bool count_include_pad = true;
  int32_t in_zero_point = 0, out_zero_point = 0, out_min = 0, out_max = 255;
  int32_t sum_shift = 0;
  const int32_t* multiplier = nullptr;
  const int32_t* shift = nullptr;
};
// The largest sum_shift <= kMaxAvgPoolSumShift with (kernel area * 255) * 2^sum_shift < 2^31:
// |S| <= cells * 255 for codes of up to 8 bits.
inline constexpr int kMaxAvgPoolSumShift = 16;
inline int32_t avg_pool_sum_shift(int64_t area) {
  int32_t shift = 0;
  while (shift < kMaxAvgPoolSumShift && ((area * 255) << (shift + 1)) <= INT32_MAX) ++shift;
  return shift;
}
void avg_pool(const uint8_t* x, int64_t batch, const ImageShape& in, const ImageShape& out,
              const AvgPoolArgs& args, uint8_t* y);

// Residual add of `count` tensors on their own grids onto the output's (TFLite's ADD):
//   y = clamp(out_zero_point + requantize(sum_k requantize((x_k - z_k) * 2^kAddLeftShift, M_k, e_k),
//             out_multiplier, out_shift), out_min, out_max)
// with M_k * 2^(e_k - 31) = s_k / (2 max_k s_k) and out_multiplier * 2^(out_shift - 31) =
// 2 max_k s_k / (2^kAddLeftShift s_out). |x - z| < 2^8, so each shifted term is below 2^28 and
// each requantized one at most 2^27: the sum of up to kMaxAddInputs fits int32.
inline constexpr int kAddLeftShift = 20;
inline constexpr int kMaxAddInputs = 8;
struct AddArgs {
  int count = 2;
  const uint8_t* const* x = nullptr;  // [count] tensors of n codes each
  const int32_t* zero_point = nullptr;
  const int32_t* multiplier = nullptr;
  const int32_t* shift = nullptr;
  int32_t out_multiplier = 0, out_shift = 0, out_zero_point = 0, out_min = 0, out_max = 255;
};
void add(const AddArgs& args, int64_t n, uint8_t* y);

// y = max(x, zero_point): ReLU on codes (real 0 is the code zero_point). n codes.
void relu(const uint8_t* x, int64_t n, uint8_t zero_point, uint8_t* y);

// One implementation of every operator above, named like the qlinear kernels
// ("integer_ops_u8_ref": the functions above; "integer_ops_u8_avx2", "integer_ops_u8_avx512").
// Each function has its reference's contract and gives the same bytes; outputs must not overlap
// inputs.
struct IntegerOpsKernel {
  const char* kernel_name;
  bool (*is_available)();  // this CPU can run it
  decltype(&::lowbit::kernels::pixels_to_codes) pixels_to_codes;
  decltype(&::lowbit::kernels::im2col) im2col;
  decltype(&::lowbit::kernels::max_pool) max_pool;
  decltype(&::lowbit::kernels::avg_pool) avg_pool;
  decltype(&::lowbit::kernels::add) add;
  decltype(&::lowbit::kernels::relu) relu;
  const char* name() const { return kernel_name; }
  bool available() const { return is_available(); }
};

// Every set compiled in, reference first (for tests and benchmarks).
const std::vector<const IntegerOpsKernel*>& all_integer_ops_kernels();
// The set to use on this CPU: the fastest available that passed the start-up probe, unless
// LOWBIT_OPS_KERNEL names one ("ref", "avx2", "avx512"); LOWBIT_KERNEL=ref also gives the reference.
const IntegerOpsKernel& best_integer_ops_kernel();

}  // namespace lowbit::kernels
