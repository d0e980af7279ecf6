// Integer-only inference: weights packed at b bits, activations as b-bit codes, int32
// accumulators and fixed-point requantization from raw pixels to int32 logits (Jacob et al. 2018).
// Loading, running and saving are the engine (lowbit::engine: no Eigen, no training code);
// build(), log_probabilities() and evaluate() need lowbit::lowbit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/dataset.h"
#include "lowbit/model.h"
#include "lowbit/quantize.h"
#include "lowbit/train.h"

namespace lowbit {

struct IntegerLinear;  // one layer's integer constants and kernel-ready weights (src/quant)
struct IntegerNode;    // one operator of a CNN's integer graph (src/quant/integer_graph.h)

// One step of the engine's forward pass, as `lowbit bench --layers` reports it.
struct EngineStep {
  std::string op;              // "pixels", "im2col", "conv", "linear", "pixel_linear", "max_pool", ...
  int node = -1;               // the graph node (chains: the layer); -1 for the pixel lookup
  std::vector<int64_t> shape;  // one image's output: [h, w, c] (im2col: [oh, ow, kh*kw*c]; chains: [features])
  int64_t macs = 0;            // multiply-adds per image
};

class QuantizedModel {
 public:
  QuantizedModel();
  ~QuantizedModel();
  QuantizedModel(QuantizedModel&&) noexcept;
  QuantizedModel& operator=(QuantizedModel&&) noexcept;

  // Builds the integer model from a plan. The float model's metadata must hold the
  // normalization ("mean", "std"), which is folded with input quantization into a pixel table.
  // (lowbit::lowbit)
  static QuantizedModel build(const Model& model, const QuantPlan& plan);

  // pixels: [batch, features] raw 8-bit pixels (as in an ImageSet: [batch, C, H, W] for images)
  // -> logits: [batch, classes].
  void logits(const uint8_t* pixels, int64_t batch, int32_t* logits) const;
  // The steps logits() runs, in order: per graph node that does work, its im2col (if any) and its
  // operator, after the pixel lookup; per layer of a chain. Aliases do no work and are not steps.
  std::vector<EngineStep> engine_steps() const;
  // logits() that also adds each step's wall time, summed over the threads that ran it, to
  // seconds[s] (engine_steps() order; resized to fit). Same logits as logits().
  void timed_logits(const uint8_t* pixels, int64_t batch, int32_t* logits, std::vector<double>& seconds) const;
  // Dequantized log-probabilities of int32 logits: [batch, classes]. (lowbit::lowbit)
  Tensor log_probabilities(const int32_t* logits, int64_t batch) const;
  // Accuracy, mean NLL (from dequantized logits) and predictions on a whole image set.
  // (lowbit::lowbit)
  Evaluation evaluate(const ImageSet& images) const;

  int64_t input_size() const;
  const Shape& input_shape() const { return input_shape_; }  // [C, H, W] for images
  int64_t num_classes() const;
  int weight_bits() const;  // of the first layer (all layers, unless mixed)
  int act_bits() const;
  int64_t weight_bytes() const;  // packed weights only
  int64_t macs_per_image() const;  // multiply-accumulates of one forward pass
  // Per layer, in order: multiply-accumulates per image (a conv's once per output position).
  std::vector<int64_t> layer_macs_per_image() const;
  // Bit-operations per image, the cost model of mixed-precision papers (e.g. HAQ, HAWQ-V3):
  // sum over layers of multiply-adds x weight bits x activation bits.
  int64_t bit_operations() const;
  // A CNN (any graph model): run as a graph of integer operators on NHWC codes. Else a chain of
  // Linear layers (FC_NN), whose first layer reads the pixels itself.
  bool is_graph() const;
  // The kernels this CPU runs (chosen once per process, after the start-up probe).
  static const char* kernel_name();        // the qlinear kernel of every layer after the first
  static const char* input_kernel_name();  // the first layer's, which reads raw pixels
  static const char* ops_kernel_name();    // a graph's other operators (pixels, im2col, pools, add, relu)
  // Read-only views of the integer constants, for exporters (lowbit/onnx.h): the Linear layers
  // in order (src/quant/integer_linear.h) and the pixel table, [channels, 256] input codes.
  size_t layer_count() const { return layers_.size(); }
  const IntegerLinear& layer(size_t i) const { return *layers_.at(i); }
  const std::vector<uint8_t>& input_table() const { return input_table_; }
  int64_t input_channels() const { return channels_; }
  // Graphs only: the integer operators in order (src/quant/integer_graph.h), and the grid of the
  // input codes the pixel table gives (bits, zero point, scale).
  const std::vector<IntegerNode>& graph_nodes() const { return nodes_; }
  int graph_input_bits() const { return input_bits_; }
  int32_t graph_input_zero_point() const { return input_zero_point_; }
  float graph_input_scale() const { return input_scale_; }
  nlohmann::json metadata;       // copied from the float model, plus quantization facts
  nlohmann::json summary() const;  // per layer: shapes, bits, scales, zero points

  void save(const std::string& path) const;
  static QuantizedModel load(const std::string& path);  // validates everything
  // The same from the bytes of a .lbq file held in memory; errors name `name`.
  static QuantizedModel load_from_memory(const void* data, size_t size,
                                         const std::string& name = "model buffer");

 private:
  friend struct QuantizedModelAccess;
  void prepare_input_layer();  // the first layer's pixel-kernel layout; after build and load
  // Graphs: checks every node against its inputs and the layers (docs/model-format.md) and fills
  // storage_; after build and load. Throws lowbit::Error naming `where` and the node.
  void prepare_graph(const std::string& where);
  // seconds: null, or per engine_steps() step (timed_logits).
  void graph_logits(const uint8_t* pixels, int64_t batch, int32_t* logits, double* seconds) const;
  class GraphRun;  // one chunk of images through the graph (integer_graph.cc)
  void chain_logits(const uint8_t* pixels, int64_t batch, int32_t* logits, double* seconds) const;
  // Graphs: engine_steps(), and per node the index of its step and of its im2col step (-1: none).
  std::vector<EngineStep> graph_steps(std::vector<int>* step_of, std::vector<int>* im2col_step_of) const;
  Shape input_shape_;
  int64_t channels_ = 1;
  std::vector<uint8_t> input_table_;  // [channels, 256]: pixel value -> first layer's input code
  float logit_scale_ = 1.0f;
  std::vector<std::unique_ptr<IntegerLinear>> layers_;
  int64_t max_width_ = 0;
  std::vector<IntegerNode> nodes_;  // graphs only; empty for a chain
  std::vector<int> storage_;        // per node: the node whose buffer holds its codes
  int logits_node_ = -1;
  // Graphs: the grid of the input codes input_table_ gives.
  int input_bits_ = 8;
  int32_t input_zero_point_ = 0;
  float input_scale_ = 1.0f;
};

}  // namespace lowbit
