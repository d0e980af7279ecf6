// `lowbit layers`: per-layer SQNR of weights and activations by bit width, with histograms.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "cli_progress.h"
#include "commands.h"
#include "float_model_input.h"
#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/layer_report.h"
#include "lowbit/layers.h"
#include "lowbit/model_file.h"
#include "lowbit/plot.h"
#include "lowbit/quantize.h"

namespace lowbit::cli {
namespace {

// JSON has no infinity: an exact reconstruction is null (docs/layer-report.md).
nlohmann::json db_json(double db) { return std::isfinite(db) ? nlohmann::json(db) : nlohmann::json(); }

std::string db_text(double db) {
  if (std::isinf(db)) return db > 0 ? "inf" : "-inf";
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", db);
  return text;
}

nlohmann::json report_json(const std::vector<LayerQuantError>& rows, const std::string& model,
                           const std::string& method, const std::string& dataset,
                           int64_t calibration_count, int hist_bits) {
  nlohmann::json out = {{"model", model},           {"method", method},
                        {"dataset", dataset},       {"calibration_count", calibration_count},
                        {"hist_bits", hist_bits},   {"results", nlohmann::json::array()}};
  for (const LayerQuantError& r : rows)
    out["results"].push_back({{"linear", r.linear},
                              {"layer", r.layer},
                              {"name", r.name},
                              {"in_features", r.in_features},
                              {"out_features", r.out_features},
                              {"bits", r.bits},
                              {"per_channel", r.per_channel},
                              {"weight_sqnr_db", db_json(r.weight_sqnr_db)},
                              {"activation_sqnr_db", db_json(r.activation_sqnr_db)},
                              {"weight_range", {r.weight_range.min, r.weight_range.max}},
                              {"activation_range", {r.activation_range.min, r.activation_range.max}}});
  return out;
}

// images: what the layer inputs were computed from, e.g. "mnist train, first 1,024 of 60,000 images".
void print_table(const std::vector<LayerQuantError>& rows, const std::string& method,
                 const std::string& images) {
  std::printf("SQNR = 10 log10(sum x^2 / sum (x - x_hat)^2), method %s at b bits "
              "(weights and the layer's input);\nlayer inputs and ranges from %s (calibration)\n\n",
              method.c_str(), images.c_str());
  std::printf("%6s %-24s %-12s %4s %13s %13s\n", "layer", "name", "shape", "bits", "weight SQNR", "act SQNR");
  for (const LayerQuantError& r : rows) {
    const std::string shape = shape_string({r.out_features, r.in_features});
    std::printf("%6zu %-24s %-12s %4d %10s dB %10s dB\n", r.linear, r.name.c_str(), shape.c_str(), r.bits,
                db_text(r.weight_sqnr_db).c_str(), db_text(r.activation_sqnr_db).c_str());
  }
}

// layerN_weights.png and layerN_activations.png for every Linear, ranges from `plan`.
void write_histograms(const Model& indexed, const std::vector<Tensor>& inputs, const QuantPlan& plan,
                      const std::string& out_dir) {
  const std::string method = plan.options.method + " " + std::to_string(plan.options.weight_bits) + "-bit";
  for (size_t j = 0; j < plan.layers.size(); ++j) {
    const QuantizedLinearPlan& q = plan.layers[j];
    const Tensor& weight = layer_weight(indexed, q.layer);
    // Titles stay under ~55 characters, what fits across a 900-pixel chart.
    const std::string name = "layer " + std::to_string(j);
    Histogram weights;
    weights.bins = 80;
    weights.values.assign(weight.values().begin(), weight.values().end());
    const Range w = widest_weight_range(q);
    weights.markers = {w.min, w.max};
    weights.title = name + " weights, " + method +
                    (q.weight.size() > 1 ? ", widest per-channel range" : " range");
    weights.x_label = "weight";
    write_histogram(weights, out_dir + "/layer" + std::to_string(j) + "_weights.png");

    // After a ReLU most inputs are exactly 0, and the first layer's are mostly the background
    // pixel; that one bar would flatten the rest, so the most common value is left out when it
    // is more than a tenth of the values.
    Histogram acts;
    acts.bins = 80;
    const std::span<const float> x = inputs[j].values();
    std::vector<float> sorted(x.begin(), x.end());
    std::sort(sorted.begin(), sorted.end());
    float mode = sorted.empty() ? 0 : sorted[0];
    size_t mode_count = 0;
    for (size_t i = 0; i < sorted.size();) {
      size_t k = i;
      while (k < sorted.size() && sorted[k] == sorted[i]) ++k;
      if (k - i > mode_count) mode_count = k - i, mode = sorted[i];
      i = k;
    }
    const bool drop_mode = mode_count * 10 > x.size() && mode_count < x.size();
    for (float v : x)
      if (!drop_mode || v != mode) acts.values.push_back(v);
    const Range a = representable_range(q.input);
    acts.markers = {a.min, a.max};
    // The note goes in words below the axis, where there is room for it (~65 characters).
    char note[128] = "";
    if (drop_mode)
      std::snprintf(note, sizeof note, " (not shown: the %.0f%% of values equal to %.3g)",
                    100.0 * static_cast<double>(mode_count) / static_cast<double>(x.size()), mode);
    acts.title = name + " input on calibration images, " + method + " range";
    acts.x_label = std::string("input activation") + note;
    write_histogram(acts, out_dir + "/layer" + std::to_string(j) + "_activations.png");
  }
}

}  // namespace

Action add_layers_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "layers", "per-layer SQNR of weights and activations by bit width, with histograms");
  struct Flags {
    DataFlags data;
    std::string model, method = "best", bits = "1-8", out_dir;
    int hist_bits = 4, threads = 0;
    int64_t calibration = 1024;
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  f->data.dataset.clear();
  add_data_flags(*cmd, f->data);
  add_threads_flag(*cmd, f->threads);
  cmd->add_option("--model", f->model, "float model file")->required();
  cmd->add_option("--method", f->method, "quantization preset: " + method_names())->capture_default_str();
  cmd->add_option("--bits", f->bits, "bit widths, e.g. 1-8 or 2,4,8")->capture_default_str();
  cmd->add_option("--hist-bits", f->hist_bits, "bit width whose ranges the histograms mark")
      ->capture_default_str()->check(CLI::Range(1, 8));
  add_calibration_flag(*cmd, f->calibration);
  cmd->add_flag("--json", f->json, "print layers.json on stdout instead of the table");
  cmd->add_option("--out-dir", f->out_dir, "where layers.json and the histograms go")->required();
  return [f] {
    apply_threads(f->threads);
    const std::vector<int> bits = parse_bits(f->bits, "--bits");
    check_method(f->method, "--method");
    ensure_writable_dir(f->out_dir, "--out-dir");

    const Model model = load_float_model(f->model, f->data.dataset);
    check_quantizable(model, f->model);
    const Dataset data = load_data_for(f->data, model.metadata, f->model, shape_numel(model.output_shape()));
    if (model.input_size() != data.train.image_size())
      throw Error("--model " + f->model + ": expects " + std::to_string(model.input_size()) +
                  " pixels per image, " + data.name + " has " +
                  std::to_string(data.train.image_size()));
    const int64_t count = std::min<int64_t>(f->calibration, data.train.count);
    const Tensor calibration = normalized_images(data.train, data.mean, data.std, 0, count);

    // One step per bit width, and one for the histograms' own plan.
    StepProgress progress("layers: plans made");
    const size_t steps = bits.size() + 1;
    const auto rows = layer_quantization_error(model, calibration, f->method, bits,
                                               [&](size_t d, size_t) { progress(d, steps); });
    const QuantPlan hist_plan = plan_quantization(
        model, calibration, preset_options(f->method, f->hist_bits, f->hist_bits));
    progress(steps, steps);
    const Model indexed = layer_report_model(model);
    write_histograms(indexed, collect_layer_inputs(indexed, calibration, planned_nodes(hist_plan)), hist_plan,
                     f->out_dir);
    const nlohmann::json json =
        report_json(rows, f->model, f->method, data.name, count, f->hist_bits);
    write_file_atomic(f->out_dir + "/layers.json", json.dump(2) + "\n");
    if (f->json) {
      std::printf("%s\n", json.dump(2).c_str());
    } else {
      print_table(rows, f->method, describe_split(data, Split::train, SplitPart::first, count));
      std::printf("\nwrote %s/layers.json and layerN_{weights,activations}.png (%d-bit ranges)\n",
                  f->out_dir.c_str(), f->hist_bits);
    }
    return 0;
  };
}

}  // namespace lowbit::cli
