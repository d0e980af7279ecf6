// Scalar fixed-point requantization (gemmlowp fixedpoint.h rules): the specification SIMD kernels match.
#pragma once

#include <cstdint>

namespace lowbit::kernels {

// round(a * b / 2^31), ties toward +infinity (gemmlowp's nudge followed by a truncating division
// works out to exactly that); the one overflowing case INT32_MIN * INT32_MIN saturates to INT32_MAX.
int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b);

// x / 2^exponent rounded to nearest, ties away from zero. exponent in [0, 31].
int32_t rounding_divide_by_pot(int32_t x, int exponent);

// acc * M0 * 2^(e - 31): left shift by max(e, 0) saturating to int32, then
// rounding_divide_by_pot(saturating_rounding_doubling_high_mul(., M0), max(-e, 0)).
// M0 in [0, 2^31), e in [-31, 31].
int32_t requantize(int32_t acc, int32_t multiplier, int32_t shift);

// out_zero_point + r saturated to int32 (the y_i32 output).
int32_t add_saturate(int32_t r, int32_t out_zero_point);

// The y_u8 output: clamp(add_saturate(r, out_zero_point), out_min, out_max); 0 <= out_min <= out_max <= 255.
uint8_t clamp_to_u8(int32_t r, int32_t out_zero_point, int32_t out_min, int32_t out_max);

// Splits a real multiplier into M0 * 2^(e - 31) with M0 in [2^30, 2^31) (TFLite's QuantizeMultiplier).
// real == 0, or real so small that it rounds to 0 (e < -31), gives M0 = 0, e = 0.
// Throws lowbit::Error for a negative, non-finite or too large (>= 2^31) real.
void quantize_multiplier(double real, int32_t* multiplier, int32_t* shift);

}  // namespace lowbit::kernels
