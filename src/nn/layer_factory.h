// The one place that maps a description's "kind" to a layer class.
#pragma once

#include <memory>
#include <span>

#include <nlohmann/json.hpp>

#include "lowbit/layer.h"

namespace lowbit {

// Builds the layer a node describes for these input shapes (one sample each). Throws
// lowbit::Error (without the node's name; the caller adds it) on an unknown kind, a field that
// is missing, of the wrong type, out of range or unknown to the kind, or shapes that do not fit.
// `budget` is how many parameter and buffer values the model may still hold: a layer that needs
// more is refused before anything is allocated, and what it takes is subtracted.
std::unique_ptr<Layer> make_layer(const nlohmann::json& spec, std::span<const Shape> inputs,
                                  int64_t& budget);

// The kinds make_layer knows, in the order docs/model-format.md lists them.
const std::vector<std::string>& layer_kinds();

}  // namespace lowbit
