// Post-training quantization: from a float model and calibration images to a quantization plan,
// the single source from which both the simulated and the integer models are built.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/layers.h"
#include "lowbit/model.h"
#include "lowbit/quant_params.h"
#include "lowbit/tensor.h"

namespace lowbit {

// How a clipping range is chosen from observed values (docs/quantization.md, "Calibration and
// rounding methods").
enum class Calibration {
  minmax,      // [min, max]
  percentile,  // [(100 - p)-th, p-th] percentile
  mse,         // the range, shrunk from [min, max], with the least mean squared error
  kl,          // TensorRT entropy calibration: least KL divergence on a 2048-bin histogram
  output_mse,  // the range, shrunk from [min, max], with the least MSE of the layer's output
               // X W^T (the error the next computation actually sees), for X or for W
};
enum class Rounding {
  nearest,  // round each weight to its nearest code
  gptq,     // Frantar et al. 2022: column by column, error fed back through the inverse Hessian
  adaround, // Nagel et al. 2020: up or down per weight, learned to reconstruct the layer's output
};

struct QuantOptions {
  int weight_bits = 8;
  int act_bits = 8;
  std::string method = "minmax";  // the preset's name, for reports; see quantization_methods()
  bool per_channel = false;       // weights: one scale and zero point per output channel
  bool symmetric = false;         // weights: range [-a, a], see symmetric_params()
  Calibration calibration = Calibration::minmax;         // activations
  Calibration weight_calibration = Calibration::minmax;  // weights: minmax, mse or output_mse
  double percentile = 99.99;      // for Calibration::percentile
  bool bias_correction = false;   // fold each layer's mean output error into its float bias
  // The integer engine keeps each bias up to 2^16 finer than one unit s_x * s_w of the code
  // products (acc_shift; docs/quantization.md, "Choice of S"). ONNX Runtime adds an int32 bias on
  // that unit of the codes an export stores, which carry 2^(8 - b) of it for b-bit weights. True
  // rounds each bias to that grid (the accumulator keeps its acc_shift), so that `lowbit export`
  // gives ONNX Runtime the engine's exact model (--bias-grid onnx; docs/onnx.md); at 8 bits every
  // bias is then on s_x * s_w, as in TFLite.
  bool onnx_bias_grid = false;
  Rounding rounding = Rounding::nearest;
  // Per Linear layer, in model order; empty: weight_bits / act_bits for every layer.
  std::vector<int> layer_weight_bits, layer_act_bits;
  // Per Linear layer, multipliers of the calibrated clipping ranges (activation range, and each
  // weight range); empty: 1 for every layer.
  std::vector<float> act_range_scale, weight_range_scale;
  // Loss-aware range search: starting from the scales above (or 1), coordinate descent over the
  // layers that picks each layer's activation and weight multiplier from a grid by the network's
  // KL divergence from the float model on the calibration images, the later layers re-planned
  // (docs/quantization.md); layer 0 only has its input range searched, its weights kept, and its
  // chosen multiplier is not recorded in act_range_scale. Accepts only strict improvements, so it
  // never ends worse than its starting plan.
  bool loss_aware = false;
};

// The preset names: minmax, percentile, mse, kl, mse_pc, gptq, adaround, best, loss_aware.
std::vector<std::string> quantization_methods();
// The options a preset stands for, at the given bit widths. Throws on an unknown name.
QuantOptions preset_options(const std::string& method, int weight_bits, int act_bits);
Calibration parse_calibration(const std::string& name);  // "minmax", "percentile", "mse", "kl", "output_mse"
Rounding parse_rounding(const std::string& name);        // "nearest", "gptq", "adaround"

// One Linear or Conv2d layer, quantized. A conv's weights are its [out, C, kh, kw] tensor read
// as [out, in] with in = C * kh * kw.
struct QuantizedLinearPlan {
  size_t layer = 0;                  // node index in the float model (graphs: in inference_graph(model))
  int64_t in_features = 0, out_features = 0;
  QuantParams input;                 // this layer's input activations
  std::vector<QuantParams> weight;   // one per tensor, or one per output channel
  std::vector<uint8_t> weight_codes; // [out, in], codes in [0, 2^weight_bits - 1]
  std::vector<float> bias;           // [out], float (the integer engine rounds it to int32)
  bool relu = false;                 // followed by ReLU (folded into the integer clamp)
  bool conv = false;                 // a Conv2d: input [C, H, W] through `window`
  Shape conv_input;
  Window2d window;

  const QuantParams& weight_params(int64_t out_channel) const {
    return weight.size() == 1 ? weight[0] : weight[out_channel];
  }
};

struct QuantPlan {
  QuantOptions options;
  std::vector<QuantizedLinearPlan> layers;
  // Graph models (anything but a chain of linear, relu and log_softmax) are planned on
  // inference_graph(model): `input` for the model input's codes and, per node of that graph, the
  // grid of each tensor the integer engine stores (src/quant/inference_graph.h).
  bool graph = false;
  QuantParams input;
  std::vector<std::optional<QuantParams>> node_output;
  // Per-layer sensitivity (sensitivity.h) on a graph: only `layers` are fake-quantized, their
  // weights and the input each reads on its own grid; `input` and `node_output` are not used, so
  // every other tensor stays float. Chain plans always mean this. For SimulatedModel only:
  // QuantizedModel::build refuses such a plan.
  bool only_listed_layers = false;
};

// Throws lowbit::Error, one line naming the node (after "where: " when `where` is given), unless
// the integer engine can run the model: a chain of linear, relu and log_softmax layers (FC_NN), or
// a graph of conv2d, batch_norm (folded), linear, relu, add, pooling, flatten and dropout
// (src/quant/inference_graph.h has the rules).
void check_quantizable(const Model& model, const std::string& where = "");
// A chain of linear, relu and log_softmax layers: planned layer by layer as FC_NN always was.
bool is_linear_chain(const Model& model);
// Throws lowbit::Error ("where: what handles chains of ...") unless is_linear_chain(model): for
// what does not handle CNNs yet (QAT, layer reports, sensitivity).
void check_linear_chain(const Model& model, const std::string& where, const std::string& what);

// Per Linear layer, the inputs it sees on the calibration images: [count, in_features] each.
std::vector<Tensor> collect_linear_inputs(const Model& model, const Tensor& calibration_images);
// For each node index in `nodes` (weighted layers of `model`: a chain, or a graph's inference
// graph, whichever the plan indexes), the input that node reads on the calibration images:
// [count, ...its input shape] each. Runs in chunks of 64 images, keeping only those inputs.
std::vector<Tensor> collect_layer_inputs(const Model& model, const Tensor& calibration_images,
                                         std::span<const size_t> nodes);

// Calibrates activation ranges on `calibration_images` ([count, features], normalized) and
// quantizes the weights as `options` say (its fields, not its method name, decide). Throws lowbit::Error on a model the quantizer cannot handle.
// `progress(done, total)` counts the layers planned, then the loss-aware search's trials.
QuantPlan plan_quantization(const Model& model, const Tensor& calibration_images,
                            const QuantOptions& options,
                            const std::function<void(size_t done, size_t total)>& progress = {});

// Mean over the calibration images of KL(float model || plan's simulated model), summed in image
// order in double: the loss the loss-aware search minimizes.
double calibration_loss(const Model& model, const Tensor& calibration_images, const QuantPlan& plan);

}  // namespace lowbit
