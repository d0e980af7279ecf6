// The float model as the integer engine sees it: batch norm folded into the conv before it,
// dropout removed, and which node stores codes with which quantization parameters.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/model.h"
#include "lowbit/quantize.h"

namespace lowbit {

// The inference form of `model` (docs/quantization.md, "CNNs"): every batch_norm whose input is a
// conv2d read by nothing else is folded into that conv (W' = W g / sqrt(v + eps) per output
// channel, b' = (b - m) g / sqrt(v + eps) + beta, in double, then rounded to float), and every
// dropout (the identity at inference) is removed. Node names are kept. Throws lowbit::Error naming
// the node for a batch_norm that cannot be folded.
Model inference_graph(const Model& model);

// What each node of an inference graph is to the integer engine.
enum class QuantRole {
  weighted,    // conv2d or linear with codes out: plan.layers[weighted_index[i]]
  logits,      // the last conv2d or linear: int32 logits
  add,         // requantizes its inputs onto its own output grid (TFLite's ADD)
  avg_pool,    // avg_pool2d or global_avg_pool: sums codes, requantizes onto its own grid
  fused_relu,  // a relu folded into the clamp of the node before it (which stores its output)
  same_grid,   // max pools, flatten, a relu on codes: the output keeps its input's grid
  after_logits,  // log_softmax (and flatten) after the logits: the engine stops at the logits
};

struct QuantGraph {
  std::vector<QuantRole> role;    // per node
  std::vector<int> weighted;      // node indices of the conv2d and linear nodes, in order
  std::vector<int> weighted_index;  // per node: its index in `weighted`, or -1
  // Per node whose role is weighted, add or avg_pool: the node whose output is its stored output,
  // i.e. the relu after it when that relu is fused, else the node itself; -1 for other roles.
  std::vector<int> stored_as;
  // Per node: the node whose stored parameters its output codes carry (itself when it stores
  // them; Model::kModelInput for codes still on the input's grid; kNoGrid for logits and after).
  static constexpr int kNoGrid = -2;
  std::vector<int> grid;
  int logits = -1;  // node index of the last weighted node

  // The grid of the codes a node reads from `input` (a node index or Model::kModelInput).
  int grid_of(int input) const { return input == Model::kModelInput ? input : grid[input]; }
};

// Throws lowbit::Error naming the node for anything the integer engine cannot run (`where`, when
// given, prefixes the message): kinds other than conv2d (groups 1), linear, relu, add, max and
// average pooling, flatten and a final log_softmax; a conv2d or linear of more than
// kernels::kMaxInFeatures inputs; logits that are not the model's output.
QuantGraph analyze_graph(const Model& inference, const std::string& where = "");

// The bits of every stored tensor: index node + 1 (0 for the model input). A tensor read by
// weighted layers gets the largest of their activation bits (options.layer_act_bits or act_bits),
// any other the global act_bits.
std::vector<int> stored_bits(const Model& inference, const QuantGraph& graph, const QuantOptions& options);

}  // namespace lowbit
