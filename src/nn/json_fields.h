// Reading and writing the fields of a node in a model description.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace lowbit {

// A per-axis setting (kernel, stride, padding) as data: one number when both axes agree, else [h, w].
inline nlohmann::json pair_json(int64_t h, int64_t w) {
  if (h == w) return h;
  return nlohmann::json::array({h, w});
}

}  // namespace lowbit
