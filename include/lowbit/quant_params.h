// Asymmetric b-bit quantization parameters: real = scale * (q - zero_point), q in [0, 2^b - 1];
// and sign-binary weights: real = scale * (2q - 1), q in {0, 1}.
#pragma once

#include <cstdint>
#include <span>

namespace lowbit {

struct QuantParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
  int bits = 8;
  // Sign-binary weights (bits 1, zero_point unused and 0): code q stands for scale * (2q - 1), so
  // the levels are {-scale, +scale}. The affine form cannot hold them at 1 bit (it would need a
  // zero point of 1/2); the integer engine runs them as 2-bit codes 2q with zero point 1
  // (docs/quantization.md, "Sign-binary weights").
  bool sign = false;

  int32_t qmin() const { return 0; }
  int32_t qmax() const { return (1 << bits) - 1; }
  // q = clamp(round_half_even(x / scale) + zero_point, 0, 2^b - 1); sign: q = (x >= 0).
  int32_t quantize(float x) const;
  float dequantize(int32_t q) const {
    return scale * static_cast<float>(sign ? 2 * q - 1 : q - zero_point);
  }
  float fake_quantize(float x) const { return dequantize(quantize(x)); }
};

struct Range {
  float min = 0, max = 0;
};
Range range_of(std::span<const float> values);  // empty: {0, 0}

// The study's method ("minmax"). The range is first widened to include 0, as PyTorch's observers
// do, so that real zero is exact (ReLU and padding need it); then
//   scale = (max - min) / (2^b - 1), zero_point = clamp(round(-min / scale), 0, 2^b - 1).
// A zero-width range (all zeros) gets scale 1, zero_point 0 instead of dividing by zero.
QuantParams minmax_params(Range range, int bits);
// Sign-binary parameters with the given scale: {scale, 0, 1, sign = true}.
QuantParams sign_params(float scale);

}  // namespace lowbit
