// Calibration and the study's per-tensor min/max post-training quantization.
#include "lowbit/quantize.h"

#include <algorithm>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/train.h"

namespace lowbit {

std::vector<std::string> quantization_methods() { return {"minmax"}; }

std::vector<Tensor> collect_linear_inputs(const Model& model, const Tensor& calibration_images) {
  Activations activations;
  model.forward(calibration_images, activations);
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < model.layer_count(); ++i) {
    if (!dynamic_cast<const Linear*>(&model.layer(i))) continue;
    const Tensor& input = i == 0 ? calibration_images : activations.outputs[i - 1];
    inputs.push_back(slice_rows(input, 0, input.dim(0)));
  }
  return inputs;
}

QuantPlan plan_quantization(const Model& model, const Tensor& calibration_images,
                            const QuantOptions& options) {
  if (options.weight_bits < 1 || options.weight_bits > 8 || options.act_bits < 1 ||
      options.act_bits > 8)
    throw Error("bit widths must be in 1..8");
  const auto methods = quantization_methods();
  if (std::find(methods.begin(), methods.end(), options.method) == methods.end())
    throw Error("unknown quantization method \"" + options.method + "\"");
  if (calibration_images.dim(0) < 1) throw Error("calibration needs at least one image");

  QuantPlan plan;
  plan.options = options;
  const std::vector<Tensor> inputs = collect_linear_inputs(model, calibration_images);
  for (size_t i = 0; i < model.layer_count(); ++i) {
    const Layer& layer = model.layer(i);
    const auto* linear = dynamic_cast<const Linear*>(&layer);
    if (!linear) {
      const bool supported = layer.kind() == "relu" || layer.kind() == "log_softmax";
      if (!supported) throw Error("cannot quantize layer kind \"" + layer.kind() + "\"");
      continue;
    }
    QuantizedLinearPlan q;
    q.layer = i;
    q.in_features = linear->in_features();
    q.out_features = linear->out_features();
    q.relu = i + 1 < model.layer_count() && model.layer(i + 1).kind() == "relu";
    q.input = minmax_params(range_of(inputs[plan.layers.size()].values()), options.act_bits);
    q.weight = {minmax_params(range_of(linear->weight().values()), options.weight_bits)};
    q.weight_codes.resize(linear->weight().size());
    for (int64_t o = 0; o < q.out_features; ++o)
      for (int64_t k = 0; k < q.in_features; ++k) {
        const int64_t at = o * q.in_features + k;
        q.weight_codes[at] = static_cast<uint8_t>(q.weight_params(o).quantize(linear->weight()[at]));
      }
    q.bias.assign(linear->bias().data(), linear->bias().data() + q.out_features);
    plan.layers.push_back(std::move(q));
  }
  if (plan.layers.empty()) throw Error("model has no Linear layer to quantize");
  return plan;
}

}  // namespace lowbit
