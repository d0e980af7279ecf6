// Random numbers that are the same on every platform and standard library.
#include <cmath>
#include <numbers>

#include "lowbit/layers.h"

namespace lowbit {

float uniform_float(std::mt19937_64& rng, float lo, float hi) {
  const float unit = static_cast<float>(rng() >> 40) * (1.0f / 16777216.0f);  // [0, 1)
  return lo + (hi - lo) * unit;
}

float normal_float(std::mt19937_64& rng) {
  const double u1 = (static_cast<double>(rng() >> 11) + 1.0) * 0x1p-53;  // (0, 1]
  const double u2 = static_cast<double>(rng() >> 11) * 0x1p-53;          // [0, 1)
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
}

uint64_t mix_seed(uint64_t seed, uint64_t value) {
  uint64_t z = seed ^ (value * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace lowbit
