// Limits on the values a quantized model may hold, shared by the file loader and the graph checks
// (docs/model-format.md, "Limits").
#pragma once

#include <cstdint>

namespace lowbit {

// A scale is the real value of one code step: finite, positive, and far enough from float's
// limits that scale * int32 stays finite.
inline constexpr double kMinScale = 1e-30, kMaxScale = 1e18;
// A stored multiplier M0 * 2^(e - 31) must be the one the stored scales give (build() computes it
// so in double from the same floats); this much relative difference is allowed.
inline constexpr double kMultiplierTolerance = 1e-6;
// Graphs: nodes, and codes per image over all nodes.
inline constexpr int64_t kMaxGraphNodes = 4096;
inline constexpr int64_t kMaxGraphCodes = int64_t{1} << 22;

}  // namespace lowbit
