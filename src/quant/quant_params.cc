// Scale and zero point from a range, and the quantize/dequantize maps (docs/quantization.md).
#include "lowbit/quant_params.h"

#include <algorithm>
#include <cmath>

#include "lowbit/error.h"

namespace lowbit {

int32_t QuantParams::quantize(float x) const {
  if (sign) return x >= 0.0f ? 1 : 0;  // 0 goes to +scale, as in the QAT quantizer
  const float q = std::nearbyint(x / scale) + static_cast<float>(zero_point);
  return static_cast<int32_t>(std::clamp(q, static_cast<float>(qmin()), static_cast<float>(qmax())));
}

Range range_of(std::span<const float> values) {
  if (values.empty()) return {};
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  return {*lo, *hi};
}

QuantParams minmax_params(Range range, int bits) {
  if (bits < 1 || bits > 8) throw Error("bit width " + std::to_string(bits) + " is not in 1..8");
  if (!std::isfinite(range.min) || !std::isfinite(range.max) || range.min > range.max)
    throw Error("quantization range is not finite or has min > max");
  const float lo = std::min(range.min, 0.0f), hi = std::max(range.max, 0.0f);
  QuantParams p;
  p.bits = bits;
  if (hi - lo <= 0.0f) return p;  // all zeros: any scale represents them exactly
  p.scale = (hi - lo) / static_cast<float>(p.qmax());
  p.zero_point = static_cast<int32_t>(
      std::clamp(std::nearbyint(-lo / p.scale), 0.0f, static_cast<float>(p.qmax())));
  return p;
}

QuantParams sign_params(float scale) {
  QuantParams p;
  p.scale = scale;
  p.zero_point = 0;
  p.bits = 1;
  p.sign = true;
  return p;
}

}  // namespace lowbit
