// Scalar fixed-point requantization, written from gemmlowp's definitions (fixedpoint.h).
#include "kernels/requantize.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "lowbit/error.h"

namespace lowbit::kernels {

int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  constexpr int32_t kMin = std::numeric_limits<int32_t>::min();
  if (a == kMin && b == kMin) return std::numeric_limits<int32_t>::max();
  const int64_t ab = int64_t{a} * int64_t{b};
  const int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : (1 - (int64_t{1} << 30));
  // C++ division truncates toward zero, as gemmlowp relies on.
  return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));
}

int32_t rounding_divide_by_pot(int32_t x, int exponent) {
  const int32_t mask = static_cast<int32_t>((int64_t{1} << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

int32_t requantize(int32_t acc, int32_t multiplier, int32_t shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  int64_t shifted = int64_t{acc} * (int64_t{1} << left);
  if (shifted > std::numeric_limits<int32_t>::max()) shifted = std::numeric_limits<int32_t>::max();
  if (shifted < std::numeric_limits<int32_t>::min()) shifted = std::numeric_limits<int32_t>::min();
  return rounding_divide_by_pot(
      saturating_rounding_doubling_high_mul(static_cast<int32_t>(shifted), multiplier), right);
}

int32_t add_saturate(int32_t r, int32_t out_zero_point) {
  int64_t sum = int64_t{r} + out_zero_point;
  if (sum > std::numeric_limits<int32_t>::max()) sum = std::numeric_limits<int32_t>::max();
  if (sum < std::numeric_limits<int32_t>::min()) sum = std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(sum);
}

uint8_t clamp_to_u8(int32_t r, int32_t out_zero_point, int32_t out_min, int32_t out_max) {
  int32_t v = add_saturate(r, out_zero_point);
  v = v < out_min ? out_min : v;
  v = v > out_max ? out_max : v;
  return static_cast<uint8_t>(v);
}

void quantize_multiplier(double real, int32_t* multiplier, int32_t* shift) {
  if (!std::isfinite(real) || real < 0.0 || real >= 2147483648.0)
    throw Error("quantize_multiplier: real multiplier " + std::to_string(real) +
                " is not in [0, 2^31)");
  if (real == 0.0) {
    *multiplier = 0;
    *shift = 0;
    return;
  }
  int exponent = 0;
  const double fraction = std::frexp(real, &exponent);  // real = fraction * 2^exponent, fraction in [0.5, 1)
  int64_t q = std::llround(fraction * 2147483648.0);
  if (q == (int64_t{1} << 31)) {  // fraction rounded up to 1.0
    q /= 2;
    ++exponent;
  }
  if (exponent < -31) {  // M0 * 2^(e-31) < 2^-32: every int32 acc requantizes to 0 or -0
    q = 0;
    exponent = 0;
  }
  if (exponent > 31)
    throw Error("quantize_multiplier: real multiplier " + std::to_string(real) + " needs shift > 31");
  *multiplier = static_cast<int32_t>(q);
  *shift = exponent;
}

}  // namespace lowbit::kernels
