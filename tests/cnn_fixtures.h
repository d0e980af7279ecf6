// Test helpers for CNN tests: a tiny ResNet description (both block shapes of a ResNet).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lowbit::testing_models {

inline nlohmann::json node(const std::string& name, const std::string& kind, std::vector<std::string> inputs,
          nlohmann::json settings = nlohmann::json::object()) {
  nlohmann::json n = {{"name", name}, {"kind", kind}, {"inputs", inputs}};
  n.update(settings);
  return n;
}

inline nlohmann::json conv(int64_t out, int64_t kernel, int64_t stride) {
  return {{"out_channels", out}, {"kernel", kernel}, {"stride", stride}, {"padding", kernel / 2},
          {"bias", false}};
}

// A stem, a block with an identity shortcut and a block whose 1x1 conv + BN shortcut halves the
// image: the two shapes a ResNet's blocks take.
inline nlohmann::json residual_description(int64_t size = 6, int64_t width_a = 4, int64_t width_b = 6) {
  const int64_t classes = 3;
  nlohmann::json nodes = nlohmann::json::array({
      node("stem", "conv2d", {"input"}, conv(width_a, 3, 1)),
      node("stem_bn", "batch_norm", {"stem"}),
      node("stem_relu", "relu", {"stem_bn"}),
      node("a.conv1", "conv2d", {"stem_relu"}, conv(width_a, 3, 1)),
      node("a.bn1", "batch_norm", {"a.conv1"}),
      node("a.relu1", "relu", {"a.bn1"}),
      node("a.conv2", "conv2d", {"a.relu1"}, conv(width_a, 3, 1)),
      node("a.bn2", "batch_norm", {"a.conv2"}),
      node("a.add", "add", {"a.bn2", "stem_relu"}),
      node("a.relu2", "relu", {"a.add"}),
      node("b.conv1", "conv2d", {"a.relu2"}, conv(width_b, 3, 2)),
      node("b.bn1", "batch_norm", {"b.conv1"}),
      node("b.relu1", "relu", {"b.bn1"}),
      node("b.conv2", "conv2d", {"b.relu1"}, conv(width_b, 3, 1)),
      node("b.bn2", "batch_norm", {"b.conv2"}),
      node("b.shortcut", "conv2d", {"a.relu2"}, conv(width_b, 1, 2)),
      node("b.shortcut_bn", "batch_norm", {"b.shortcut"}),
      node("b.add", "add", {"b.bn2", "b.shortcut_bn"}),
      node("b.relu2", "relu", {"b.add"}),
  });
  nodes.push_back(node("drop", "dropout", {"b.relu2"}, {{"p", 0.2}}));
  nodes.push_back(node("pool", "global_avg_pool", {"drop"}));
  nodes.push_back(node("fc", "linear", {"pool"}, {{"out_features", classes}}));
  nodes.push_back(node("out", "log_softmax", {"fc"}));
  return {{"name", "tiny_resnet"}, {"input_shape", {2, size, size}}, {"nodes", nodes}};
}

}  // namespace lowbit::testing_models
