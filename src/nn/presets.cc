// The named architectures: FC_NN, He et al.'s CIFAR ResNet-20 and a small VGG-style CIFAR net.
#include <functional>

#include "lowbit/error.h"
#include "lowbit/model.h"

namespace lowbit {
namespace {

using Json = nlohmann::json;

// Builds a node list; each add() returns the node's name for later inputs.
class Graph {
 public:
  std::string add(const std::string& name, const std::string& kind, std::vector<std::string> inputs,
                  Json settings = Json::object()) {
    Json node = {{"name", name}, {"kind", kind}, {"inputs", inputs}};
    node.update(settings);
    nodes_.push_back(node);
    return name;
  }
  std::string conv(const std::string& name, const std::string& input, int64_t channels, int64_t kernel,
                   int64_t stride) {
    return add(name, "conv2d", {input},
               {{"out_channels", channels}, {"kernel", kernel}, {"stride", stride},
                {"padding", kernel / 2}, {"bias", false}});
  }
  std::string bn(const std::string& name, const std::string& input) {
    return add(name, "batch_norm", {input});
  }
  std::string relu(const std::string& name, const std::string& input) {
    return add(name, "relu", {input});
  }
  Json description(const std::string& name, const Shape& input_shape) const {
    return {{"name", name}, {"input_shape", input_shape}, {"nodes", nodes_}};
  }

 private:
  Json nodes_ = Json::array();
};

Json fc_nn(const Shape& input_shape, int64_t classes) {
  return {{"name", "fc_nn"},
          {"input_shape", input_shape},
          {"layers",
           {{{"kind", "linear"}, {"out_features", 64}},
            {{"kind", "relu"}},
            {{"kind", "linear"}, {"out_features", 32}},
            {{"kind", "relu"}},
            {{"kind", "linear"}, {"out_features", classes}},
            {{"kind", "log_softmax"}}}}};
}

// He et al. 2016, section 4.2: a 3x3 conv of 16 channels, three stages of three basic blocks
// (16, 32, 64 channels; stride 2 first in stages 2 and 3), global average pooling, a Linear
// layer. Where a block changes the shape its shortcut is a 1x1 conv + batch norm (the paper's
// option B; its CIFAR runs used A, zero padding, which has no parameters).
Json resnet20(const Shape& input_shape, int64_t classes) {
  Graph g;
  std::string x = g.relu("relu", g.bn("bn", g.conv("conv", "input", 16, 3, 1)));
  int64_t channels = 16;
  for (int stage = 1; stage <= 3; ++stage) {
    const int64_t width = int64_t{16} << (stage - 1);
    for (int block = 1; block <= 3; ++block) {
      const std::string p = "stage" + std::to_string(stage) + ".block" + std::to_string(block) + ".";
      const int64_t stride = stage > 1 && block == 1 ? 2 : 1;
      std::string y = g.relu(p + "relu1", g.bn(p + "bn1", g.conv(p + "conv1", x, width, 3, stride)));
      y = g.bn(p + "bn2", g.conv(p + "conv2", y, width, 3, 1));
      std::string shortcut = x;
      if (stride != 1 || channels != width)
        shortcut = g.bn(p + "shortcut.bn", g.conv(p + "shortcut.conv", x, width, 1, stride));
      x = g.relu(p + "relu2", g.add(p + "add", "add", {y, shortcut}));
      channels = width;
    }
  }
  x = g.add("pool", "global_avg_pool", {x});
  x = g.add("fc", "linear", {x}, {{"out_features", classes}});
  g.add("log_softmax", "log_softmax", {x});
  return g.description("resnet20", input_shape);
}

// Three groups of [conv3x3 -> BN -> ReLU -> max-pool 2 -> conv3x3 -> BN -> ReLU] with 32, 64 and
// 128 channels, global max pooling, a Linear layer.
Json cifar_small(const Shape& input_shape, int64_t classes) {
  Graph g;
  std::string x = "input";
  for (int group = 1; group <= 3; ++group) {
    const int64_t width = int64_t{32} << (group - 1);
    const std::string p = "group" + std::to_string(group) + ".";
    x = g.relu(p + "relu1", g.bn(p + "bn1", g.conv(p + "conv1", x, width, 3, 1)));
    x = g.add(p + "pool", "max_pool2d", {x}, {{"kernel", 2}});
    x = g.relu(p + "relu2", g.bn(p + "bn2", g.conv(p + "conv2", x, width, 3, 1)));
  }
  x = g.add("pool", "global_max_pool", {x});
  x = g.add("fc", "linear", {x}, {{"out_features", classes}});
  g.add("log_softmax", "log_softmax", {x});
  return g.description("cifar_small", input_shape);
}

struct Builder {
  ModelPreset preset;
  std::function<Json(const Shape&, int64_t)> build;
};

const std::vector<Builder>& builders() {
  static const std::vector<Builder> all = {
      {{"fc_nn", "MLP 784-64-32-10 with ReLU (the study's FC_NN)", {1, 28, 28}}, fc_nn},
      {{"resnet20", "CIFAR ResNet-20 (He et al. 2016), 1x1 conv + BN shortcuts", {3, 32, 32}}, resnet20},
      {{"cifar_small", "3 groups of conv-BN-ReLU, max-pool, conv-BN-ReLU (32/64/128), global max pool",
        {3, 32, 32}},
       cifar_small},
  };
  return all;
}

}  // namespace

const std::vector<ModelPreset>& model_presets() {
  static const std::vector<ModelPreset> presets = [] {
    std::vector<ModelPreset> out;
    for (const Builder& b : builders()) out.push_back(b.preset);
    return out;
  }();
  return presets;
}

nlohmann::json preset_description(const std::string& name, const Shape& input_shape, int64_t classes) {
  std::string known;
  for (const Builder& b : builders()) {
    if (b.preset.name == name) return b.build(input_shape, classes);
    known += (known.empty() ? "" : ", ") + b.preset.name;
  }
  throw Error("unknown model preset \"" + name + "\" (presets: " + known + ")");
}

}  // namespace lowbit
