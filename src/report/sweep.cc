// The bit-width sweep: every method and bit width through the integer engine and the simulation.
#include "lowbit/sweep.h"

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/layers.h"
#include "lowbit/quantize.h"
#include "lowbit/quantized_model.h"
#include "lowbit/simulated.h"
#include "lowbit/train.h"

namespace lowbit {

const std::vector<double>& study_reference_accuracy() {
  static const std::vector<double> reference{9.74, 11.5, 76.74, 92.29, 96.0, 96.65, 97.0, 96.71};
  return reference;
}

SweepResult run_sweep(const Model& model, const Tensor& calibration, const ImageSet& test,
                      const Tensor& test_images, const SweepOptions& options) {
  SweepResult result;
  result.test_size = test.count;
  const Evaluation float_eval = evaluate(model, test_images, test.labels);
  result.float_accuracy = float_eval.accuracy;
  for (size_t i = 0; i < model.layer_count(); ++i)
    if (dynamic_cast<const Linear*>(&model.layer(i)) || dynamic_cast<const Conv2d*>(&model.layer(i)))
      result.float_weight_bytes += 4 * model.layer(i).parameters()[0].size();
  result.model = model.name().empty() ? "fc_nn" : model.name();
  result.multiply_adds = model.multiply_adds();

  const int64_t calibration_count = std::min(options.calibration_count, calibration.dim(0));
  const Tensor calibration_images = slice_rows(calibration, 0, calibration_count);
  // Every (method, bits) row is independent: rows are planned and measured on OpenMP threads
  // (dynamic: a loss_aware row takes ~100x a minmax one) and stored in order. Each row's numbers do
  // not depend on the thread count (plans run Eigen single-threaded, sums in fixed order, and the
  // evaluations nested here run on their row's thread).
  std::vector<std::pair<std::string, int>> configs;
  for (const std::string& method : options.methods)
    for (int bits : options.bits) configs.emplace_back(method, bits);
  std::vector<SweepRow> rows(configs.size());
  std::exception_ptr failure;
  size_t done = 0;
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t c = 0; c < configs.size(); ++c) {
    try {
      const auto& [method, bits] = configs[c];
      const QuantOptions quant = preset_options(method, bits, bits);
      const QuantPlan plan = plan_quantization(model, calibration_images, quant);
      const SimulatedModel simulated(model, plan);
      const Evaluation sim = evaluate_with(
          [&simulated](const Tensor& x, Tensor& y) { simulated.forward(x, y); }, test_images,
          test.labels);
      const QuantizedModel integer = QuantizedModel::build(model, plan);
      const Evaluation engine = integer.evaluate(test);
      SweepRow& row = rows[c];
      row.method = method;
      row.weight_bits = bits;
      row.act_bits = bits;
      row.accuracy = engine.accuracy;
      row.simulated_accuracy = sim.accuracy;
      int64_t same = 0;
      for (int64_t i = 0; i < test.count; ++i) same += engine.predictions[i] == sim.predictions[i];
      row.agreement = test.count ? static_cast<double>(same) / test.count : 0;
      row.weight_bytes = integer.weight_bytes();
#pragma omp critical(lowbit_sweep_progress)
      if (options.progress) options.progress(++done, configs.size());
    } catch (...) {  // an exception may not leave an OpenMP region; the first one is rethrown below
#pragma omp critical(lowbit_sweep_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  result.results = std::move(rows);
  result.kernel = QuantizedModel::kernel_name();
  result.input_kernel = QuantizedModel::input_kernel_name();
  return result;
}

nlohmann::json SweepResult::to_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const SweepRow& r : results)
    rows.push_back({{"method", r.method},
                    {"weight_bits", r.weight_bits},
                    {"act_bits", r.act_bits},
                    {"accuracy", r.accuracy},
                    {"simulated_accuracy", r.simulated_accuracy},
                    {"agreement", r.agreement},
                    {"weight_bytes", r.weight_bytes}});
  return {{"model", model},
          {"multiply_adds", multiply_adds},
          {"dataset", dataset},
          {"data_source", data_source},
          {"train_size", train_size},
          {"test_size", test_size},
          {"float_accuracy", float_accuracy},
          {"float_weight_bytes", float_weight_bytes},
          {"kernels", {{"linear", kernel}, {"first_layer", input_kernel}}},
          {"results", rows}};
}

}  // namespace lowbit
