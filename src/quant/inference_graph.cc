// Folding batch norm into convolutions, and the roles of an inference graph's nodes.
#include "quant/inference_graph.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "kernels/qlinear.h"
#include "lowbit/error.h"
#include "lowbit/layers.h"

namespace lowbit {
namespace {

std::string node_label(const Model& m, size_t i) {
  return "node \"" + m.node_name(i) + "\" (" + m.layer(i).kind() + ")";
}

// Per node, the nodes that read it.
std::vector<std::vector<int>> readers_of(const Model& m) {
  std::vector<std::vector<int>> readers(m.node_count());
  for (size_t i = 0; i < m.node_count(); ++i)
    for (int input : m.node_inputs(i))
      if (input != Model::kModelInput) readers[input].push_back(static_cast<int>(i));
  return readers;
}

}  // namespace

Model inference_graph(const Model& model) {
  const auto readers = readers_of(model);
  // Per node: dropped (a folded batch_norm or a dropout) and, if so, the node it stands for.
  std::vector<int> replaced_by(model.node_count(), -2);
  std::vector<bool> folds_bn(model.node_count(), false);
  auto resolve = [&](int input) {
    while (input != Model::kModelInput && replaced_by[input] != -2) input = replaced_by[input];
    return input;
  };
  for (size_t i = 0; i < model.node_count(); ++i) {
    const std::string kind = model.layer(i).kind();
    if (kind == "dropout") replaced_by[i] = model.node_inputs(i)[0];
    if (kind != "batch_norm") continue;
    const int conv = resolve(model.node_inputs(i)[0]);
    if (conv == Model::kModelInput || model.layer(conv).kind() != "conv2d" || readers[conv].size() != 1 ||
        folds_bn[conv])
      throw Error(node_label(model, i) + ": the integer engine folds batch norm into a conv2d read by "
                  "nothing else, and its input is not one");
    if (i + 1 == model.node_count()) throw Error(node_label(model, i) + ": a batch_norm cannot be the output");
    folds_bn[conv] = true;
    replaced_by[i] = conv;
  }
  if (replaced_by.back() != -2) throw Error(node_label(model, model.node_count() - 1) + ": cannot be the output");

  nlohmann::json nodes = nlohmann::json::array();
  for (size_t i = 0; i < model.node_count(); ++i) {
    if (replaced_by[i] != -2) continue;
    nlohmann::json spec = {{"name", model.node_name(i)}, {"kind", model.layer(i).kind()}};
    nlohmann::json inputs = nlohmann::json::array();
    for (int input : model.node_inputs(i)) {
      const int from = resolve(input);
      inputs.push_back(from == Model::kModelInput ? "input" : model.node_name(from));
    }
    spec["inputs"] = inputs;
    spec.update(model.layer(i).config());
    // Every conv gets a bias: folding and bias correction need one, zeros when it had none.
    if (spec["kind"] == "conv2d") spec["bias"] = true;
    nodes.push_back(spec);
  }
  nlohmann::json description = {{"input_shape", model.input_shape()}, {"nodes", nodes}};
  if (!model.name().empty()) description["name"] = model.name();
  Model folded = Model::from_description(description);
  folded.metadata = model.metadata;

  // Parameters: copied node by node (names are unique), convs folded with their batch norm.
  std::map<std::string, size_t> folded_index;
  for (size_t i = 0; i < folded.node_count(); ++i) folded_index[folded.node_name(i)] = i;
  for (size_t i = 0; i < model.node_count(); ++i) {
    if (replaced_by[i] != -2) continue;
    Layer& to = folded.layer(folded_index.at(model.node_name(i)));
    const Layer& from = model.layer(i);
    if (!folds_bn[i]) {
      // A conv without bias gains a zero one (the description above gave it one).
      for (size_t p = 0; p < from.parameters().size(); ++p) to.parameters()[p] = from.parameters()[p];
      for (size_t b = 0; b < from.buffers().size(); ++b) to.buffers()[b] = from.buffers()[b];
      continue;
    }
    const auto& conv = dynamic_cast<const Conv2d&>(from);
    const auto& bn = dynamic_cast<const BatchNorm2d&>(model.layer(readers[i][0]));
    auto& out = dynamic_cast<Conv2d&>(to);
    const int64_t channels = conv.out_channels(), per_channel = conv.weight().size() / channels;
    for (int64_t c = 0; c < channels; ++c) {
      const double g = double{bn.gamma()[c]} / std::sqrt(double{bn.running_var()[c]} + double{bn.epsilon()});
      for (int64_t k = 0; k < per_channel; ++k)
        out.weight()[c * per_channel + k] = static_cast<float>(double{conv.weight()[c * per_channel + k]} * g);
      const double bias = conv.has_bias() ? double{conv.parameters()[1][c]} : 0.0;
      out.parameters()[1][c] = static_cast<float>((bias - double{bn.running_mean()[c]}) * g + double{bn.beta()[c]});
    }
  }
  return folded;
}

QuantGraph analyze_graph(const Model& m, const std::string& where) {
  const std::string prefix = where.empty() ? "" : where + ": ";
  const size_t count = m.node_count();
  const auto readers = readers_of(m);
  QuantGraph g;
  g.role.assign(count, QuantRole::same_grid);
  g.weighted_index.assign(count, -1);
  g.stored_as.assign(count, -1);
  g.grid.assign(count, QuantGraph::kNoGrid);
  for (size_t i = 0; i < count; ++i) {
    const std::string kind = m.layer(i).kind();
    if (kind == "conv2d" || kind == "linear") {
      if (kind == "conv2d" && dynamic_cast<const Conv2d&>(m.layer(i)).options().groups != 1)
        throw Error(prefix + node_label(m, i) + ": the integer engine runs convolutions of groups 1 only");
      g.weighted_index[i] = static_cast<int>(g.weighted.size());
      g.weighted.push_back(static_cast<int>(i));
    } else if (kind != "relu" && kind != "add" && kind != "max_pool2d" && kind != "avg_pool2d" &&
               kind != "global_max_pool" && kind != "global_avg_pool" && kind != "flatten" &&
               kind != "log_softmax") {
      throw Error(prefix + "cannot quantize " + node_label(m, i) + ": the integer engine runs conv2d, linear, "
                  "batch_norm (folded), relu, add, max and average pooling, flatten, dropout and a final log_softmax");
    }
  }
  if (g.weighted.empty()) throw Error(prefix + "model has no Linear or Conv2d layer to quantize");
  g.logits = g.weighted.back();
  // After the logits only flatten and log_softmax, in a chain to the output.
  for (size_t i = g.logits + 1; i < count; ++i) {
    const std::string kind = m.layer(i).kind();
    if ((kind != "log_softmax" && kind != "flatten") || m.node_inputs(i) != std::vector<int>{static_cast<int>(i) - 1})
      throw Error(prefix + node_label(m, i) + ": after the last conv2d or linear layer the integer engine "
                  "allows only flatten and log_softmax (its output is the int32 logits)");
    g.role[i] = QuantRole::after_logits;
  }
  if (readers[g.logits].size() > 1)
    throw Error(prefix + node_label(m, g.logits) + ": the logits must be read by nothing but the output");
  const Shape& logits_shape = m.node_shape(g.logits);
  if (shape_numel(logits_shape) != logits_shape[0])
    throw Error(prefix + node_label(m, g.logits) + ": the logits must be one value per class, not " +
                shape_string(logits_shape));
  g.role[g.logits] = QuantRole::logits;

  for (size_t i = 0; i < static_cast<size_t>(g.logits); ++i) {
    const std::string kind = m.layer(i).kind();
    const auto& inputs = m.node_inputs(i);
    const int in_grid = g.grid_of(inputs[0]);
    if (g.weighted_index[i] >= 0 || kind == "add" || kind == "avg_pool2d" || kind == "global_avg_pool") {
      g.role[i] = g.weighted_index[i] >= 0 ? QuantRole::weighted
                  : kind == "add"          ? QuantRole::add
                                           : QuantRole::avg_pool;
      const bool fuse = readers[i].size() == 1 && m.layer(readers[i][0]).kind() == "relu";
      g.stored_as[i] = fuse ? readers[i][0] : static_cast<int>(i);
      g.grid[g.stored_as[i]] = g.stored_as[i];
      if (fuse) g.role[readers[i][0]] = QuantRole::fused_relu;
      if (kind == "add" && inputs.size() > 8)
        throw Error(prefix + node_label(m, i) + ": the integer engine adds at most 8 inputs");
    } else if (g.role[i] != QuantRole::fused_relu) {
      g.grid[i] = in_grid;  // same_grid
    }
  }
  for (int node : g.weighted) {
    const Layer& layer = m.layer(node);
    const Shape input = m.node_input_shapes(node)[0];
    int64_t k = shape_numel(input);
    if (const auto* conv = dynamic_cast<const Conv2d*>(&layer))
      k = conv->in_channels() * conv->options().window.kernel_h * conv->options().window.kernel_w;
    if (k > kernels::kMaxInFeatures)
      throw Error(prefix + node_label(m, node) + ": " + std::to_string(k) + " inputs per output, more than the " +
                  std::to_string(kernels::kMaxInFeatures) + " the integer kernels accept");
  }
  return g;
}

std::vector<int> stored_bits(const Model& m, const QuantGraph& g, const QuantOptions& o) {
  std::vector<int> bits(m.node_count() + 1, 0);
  // tensor + 1 for a node index (0: the model input).
  auto slot = [](int tensor) { return static_cast<size_t>(tensor + 1); };
  for (int node : g.weighted) {
    const int j = g.weighted_index[node];
    const int act = o.layer_act_bits.empty() ? o.act_bits : o.layer_act_bits[j];
    const int input = m.node_inputs(node)[0];
    const int tensor = g.grid_of(input);
    bits[slot(tensor)] = std::max(bits[slot(tensor)], act);
  }
  for (int& b : bits)
    if (b == 0) b = o.act_bits;
  return bits;
}

}  // namespace lowbit
