// One Linear layer of the integer engine: packed weights, int32 constants, kernel-ready layout.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/qlinear.h"

namespace lowbit {

struct IntegerLinear {
  int64_t in_features = 0, out_features = 0;
  int act_bits = 8;              // bits of the input codes
  int out_bits = 0;              // bits of the output codes; 0: int32 logits (last layer)
  // The weights as stored (in the file, and as the model's size): packed at their own bits.
  // Sign-binary layers (sign_weights) hold 1-bit codes q standing for scale * (2q - 1); the kernel
  // gets them expanded to 2-bit codes 2q with weight_zero_point 1, i.e. (2q - 1) exactly.
  kernels::PackedWeights weights;
  bool sign_weights = false;
  // acc = bias + 2^acc_shift * sum (qlinear.h): bias is at scale weight_scale[n] * input_scale /
  // 2^acc_shift, and the multipliers divide that 2^acc_shift back out.
  int32_t acc_shift = 0;              // 0..kernels::kMaxAccShift
  std::vector<int32_t> bias;          // [out] at scale weight_scale[n] * input_scale / 2^acc_shift
  std::vector<int32_t> weight_zero_point, multiplier, shift;  // [out]
  int32_t input_zero_point = 0, output_zero_point = 0, output_min = 0, output_max = 0;
  // Real-valued scales, for reports and dequantized outputs only; the engine never reads them.
  float input_scale = 1.0f, output_scale = 1.0f;
  std::vector<float> weight_scale;    // [out]
  std::unique_ptr<kernels::PreparedWeights> prepared;
  // The kernel that prepared `prepared` and runs the layer: kernels::qlinear_kernel_for its widths.
  const kernels::QLinearKernel* kernel = nullptr;
  // First layer only: the pixel kernel's layout (kernels/pixel_linear.h), which maps raw pixels to
  // input codes itself.
  std::unique_ptr<kernels::PreparedWeights> pixel_prepared;

  // The code width the kernel runs: weights.bits, or 2 for sign-binary weights.
  int kernel_weight_bits() const { return sign_weights ? 2 : weights.bits; }
  // How much coarser than the accumulator's unit an ONNX export's int32 bias is: the export's
  // uint8 weight codes carry 2^min(acc_shift, 8 - b) of the engine's 2^acc_shift
  // (onnx/qdq_builder.cc; --bias-grid onnx rounds the bias to it).
  int onnx_bias_shift() const { return acc_shift - std::min(acc_shift, 8 - kernel_weight_bits()); }
  // The weights as the kernels take them: `weights`, or sign-binary codes expanded to 2 bits.
  kernels::PackedWeights kernel_weights() const;
  // Picks `kernel` for (kernel_weight_bits(), act_bits) and builds `prepared` from kernel_weights().
  void prepare_kernel();
  // Runs the layer on `batch` rows: x [batch, x_stride] codes -> y [batch, y_stride].
  void run(const uint8_t* x, int64_t x_stride, int64_t batch, uint8_t* y_codes, int32_t* y_logits,
           int64_t y_stride) const;
  // The same from raw pixels [batch, x_stride] through the pixel table given to pixel_prepared.
  void run_pixels(const uint8_t* pixels, int64_t x_stride, int64_t batch, uint8_t* y_codes,
                  int32_t* y_logits, int64_t y_stride) const;
};

}  // namespace lowbit
