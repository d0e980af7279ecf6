// SQNR of each Linear layer's weights and input activations under a quantization plan.
#include "lowbit/layer_report.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "quant/inference_graph.h"

namespace lowbit {

double sqnr_db(std::span<const float> reference, std::span<const float> approximation) {
  if (reference.size() != approximation.size())
    throw Error("sqnr_db: " + std::to_string(reference.size()) + " reference values but " +
                std::to_string(approximation.size()) + " approximations");
  double signal = 0, noise = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    const double x = reference[i], error = x - approximation[i];
    signal += x * x;
    noise += error * error;
  }
  if (noise == 0) return std::numeric_limits<double>::infinity();
  return 10 * std::log10(signal / noise);  // signal 0: log10(0) = -infinity
}

std::vector<float> dequantized_weights(const QuantizedLinearPlan& layer) {
  std::vector<float> weights(layer.weight_codes.size());
  for (int64_t o = 0; o < layer.out_features; ++o) {
    const QuantParams& params = layer.weight_params(o);
    for (int64_t i = 0; i < layer.in_features; ++i) {
      const int64_t k = o * layer.in_features + i;
      weights[k] = params.dequantize(layer.weight_codes[k]);
    }
  }
  return weights;
}

Range representable_range(const QuantParams& params) {
  return {params.dequantize(params.qmin()), params.dequantize(params.qmax())};
}

Range widest_weight_range(const QuantizedLinearPlan& layer) {
  Range widest = representable_range(layer.weight.at(0));
  for (const QuantParams& params : layer.weight) {
    const Range r = representable_range(params);
    widest.min = std::min(widest.min, r.min);
    widest.max = std::max(widest.max, r.max);
  }
  return widest;
}

Model layer_report_model(const Model& model) {
  return is_linear_chain(model) ? model.clone() : inference_graph(model);
}

std::vector<size_t> planned_nodes(const QuantPlan& plan) {
  std::vector<size_t> nodes;
  for (const QuantizedLinearPlan& q : plan.layers) nodes.push_back(q.layer);
  return nodes;
}

std::vector<LayerQuantError> layer_quantization_error(const Model& model,
                                                      const Tensor& calibration,
                                                      const std::string& method,
                                                      std::span<const int> bits,
                                                      const std::function<void(size_t, size_t)>& progress) {
  std::vector<QuantPlan> plans;
  for (int b : bits) {
    if (progress) progress(plans.size(), bits.size());
    plans.push_back(plan_quantization(model, calibration, preset_options(method, b, b)));
  }
  if (progress) progress(plans.size(), bits.size());
  if (plans.empty()) return {};
  const Model indexed = layer_report_model(model);
  const std::vector<size_t> nodes = planned_nodes(plans.front());
  const std::vector<Tensor> inputs = collect_layer_inputs(indexed, calibration, nodes);

  std::vector<LayerQuantError> rows;
  std::vector<float> fake;
  for (size_t j = 0; j < nodes.size(); ++j) {
    const Tensor& weight = layer_weight(indexed, nodes[j]);
    for (const QuantPlan& plan : plans) {
      const QuantizedLinearPlan& q = plan.layers.at(j);
      LayerQuantError row;
      row.linear = j;
      row.layer = q.layer;
      row.name = indexed.node_name(q.layer);
      row.in_features = q.in_features;
      row.out_features = q.out_features;
      row.bits = plan.options.weight_bits;
      row.per_channel = q.weight.size() > 1;
      row.weight_sqnr_db = sqnr_db(weight.values(), dequantized_weights(q));
      const std::span<const float> x = inputs[j].values();
      fake.resize(x.size());
      std::transform(x.begin(), x.end(), fake.begin(),
                     [&](float v) { return q.input.fake_quantize(v); });
      row.activation_sqnr_db = sqnr_db(x, fake);
      row.weight_range = widest_weight_range(q);
      row.activation_range = representable_range(q.input);
      rows.push_back(row);
    }
  }
  return rows;
}

const Tensor& layer_weight(const Model& indexed, size_t node) {
  const std::span<Tensor> parameters = const_cast<Layer&>(indexed.layer(node)).parameters();
  if (parameters.empty()) throw Error("node " + indexed.node_name(node) + " has no weights");
  return parameters.front();
}

}  // namespace lowbit
