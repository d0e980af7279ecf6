// Per-layer quantization error: SQNR of each Linear's weights and input activations by bit width.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/model.h"
#include "lowbit/quant_params.h"
#include "lowbit/quantize.h"
#include "lowbit/tensor.h"

namespace lowbit {

// Signal-to-quantization-noise ratio in dB: 10 log10(sum x^2 / sum (x - x_hat)^2), summed in
// double. Zero error gives +infinity; a zero signal with some error gives -infinity.
// reference and approximation must have the same length.
double sqnr_db(std::span<const float> reference, std::span<const float> approximation);

// The plan's weights as reals: scale * (code - zero_point) with each output channel's params.
// Returns [out, in], row-major.
std::vector<float> dequantized_weights(const QuantizedLinearPlan& layer);

// The real interval a QuantParams can represent: [scale (0 - zp), scale (2^b - 1 - zp)].
Range representable_range(const QuantParams& params);
// Over all of a layer's weight params (per tensor or per channel): the widest such interval.
Range widest_weight_range(const QuantizedLinearPlan& layer);

struct LayerQuantError {
  size_t linear = 0;     // ordinal of the weighted layer, Linear or conv (0 = first)
  size_t layer = 0;      // index in the model (graphs: in its inference graph, batch norm folded)
  std::string name;      // that node's name
  int64_t in_features = 0, out_features = 0;
  int bits = 8;          // weights and this layer's input activations
  bool per_channel = false;
  double weight_sqnr_db = 0, activation_sqnr_db = 0;  // may be +infinity
  Range weight_range, activation_range;  // representable (clipping) ranges; weights: widest
};

// For each weighted layer (Linear, or conv of a graph) and each b in `bits`:
// plan_quantization(model, calibration, preset_options(method, b, b)); weight SQNR of the
// dequantized codes against the float weights (a conv's with its batch norm folded in, as the
// plan quantizes them), activation SQNR of the float calibration inputs of the layer
// (collect_layer_inputs) against their fake quantization with the plan's input params. Ordered
// by layer, then bits.
// calibration: [count, features], normalized.
std::vector<LayerQuantError> layer_quantization_error(const Model& model,
                                                      const Tensor& calibration,
                                                      const std::string& method,
                                                      std::span<const int> bits,
                                                      const std::function<void(size_t done, size_t total)>& progress = {});

// The model a plan's layer indices refer to: a chain itself, a graph's inference graph.
Model layer_report_model(const Model& model);
// The node index of each planned layer, in plan order.
std::vector<size_t> planned_nodes(const QuantPlan& plan);
// A weighted node's float weights (the first parameter: [out, in] or [out, C/groups, kh, kw]).
const Tensor& layer_weight(const Model& indexed, size_t node);

}  // namespace lowbit
