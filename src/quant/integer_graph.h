// The integer engine's graph for CNNs: one node per node of the inference graph, codes in NHWC.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/integer_ops.h"

namespace lowbit {

struct IntegerNode {
  enum class Op {
    conv,      // im2col (unless 1x1, stride 1, no padding) + the qlinear kernel of layers[layer]
    linear,    // the qlinear kernel of layers[layer] on the flattened [h, w, c] input
    add,       // kernels::add
    max_pool,  // kernels::max_pool (global max pooling: a window over the whole input)
    avg_pool,  // kernels::avg_pool (global average pooling likewise)
    relu,      // kernels::relu on codes
    alias,     // flatten, a ReLU fused into the node before, and the nodes after the logits
  };
  Op op = Op::alias;
  std::vector<int> inputs;        // node indices; kInput for the input codes
  static constexpr int kInput = -1;
  kernels::ImageShape shape;      // of one image's output ([h, w, c]; a linear's: [1, 1, out])
  // The grid of the output codes (for the logits node: unused).
  int bits = 8;
  int32_t zero_point = 0;
  float scale = 1.0f;
  int layer = -1;                 // conv, linear: the index in QuantizedModel's layers
  kernels::Window window;         // conv, pools
  bool count_include_pad = true;  // avg_pool
  // add: per input; avg_pool: per divisor 1..kh*kw.
  std::vector<int32_t> multiplier, shift;
  int32_t sum_shift = 0;                      // avg_pool: kernels::AvgPoolArgs::sum_shift
  int32_t out_multiplier = 0, out_shift = 0;  // add
  int32_t out_min = 0, out_max = 255;         // add, avg_pool

  const char* name() const;  // "conv", "add", ...
};

// An avg_pool node's kernel arguments; `in_zero_point` is its input's. The node's multiplier and
// shift vectors must outlive the result.
kernels::AvgPoolArgs avg_pool_args(const IntegerNode& n, int32_t in_zero_point);

}  // namespace lowbit
