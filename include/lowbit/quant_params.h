// Asymmetric b-bit quantization parameters: real = scale * (q - zero_point), q in [0, 2^b - 1].
#pragma once

#include <cstdint>
#include <span>

namespace lowbit {

struct QuantParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
  int bits = 8;

  int32_t qmin() const { return 0; }
  int32_t qmax() const { return (1 << bits) - 1; }
  // q = clamp(round_half_even(x / scale) + zero_point, 0, 2^b - 1)
  int32_t quantize(float x) const;
  float dequantize(int32_t q) const { return scale * static_cast<float>(q - zero_point); }
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

}  // namespace lowbit
