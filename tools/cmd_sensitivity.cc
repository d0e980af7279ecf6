// `lowbit sensitivity`: how much each layer suffers from quantization, and a greedy search over
// per-layer bits whose Pareto front (accuracy against packed weight bytes) it prints and plots.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/model_file.h"
#include "lowbit/plot.h"
#include "lowbit/sensitivity.h"

namespace lowbit::cli {
namespace {

std::string bits_text(const std::vector<int>& bits) {
  std::string text;
  for (int b : bits) text += (text.empty() ? "" : ",") + std::to_string(b);
  return text;
}

// Per point: on the Pareto front of `points`, i.e. no cheaper point is at least as accurate.
std::vector<bool> pareto_front(const std::vector<MixedPrecisionPoint>& points) {
  std::vector<bool> front(points.size(), true);
  for (size_t i = 0; i < points.size(); ++i)
    for (const auto& o : points)
      if (o.weight_bytes < points[i].weight_bytes && o.accuracy >= points[i].accuracy)
        front[i] = false;
  return front;
}

nlohmann::json points_json(const std::vector<MixedPrecisionPoint>& points) {
  const std::vector<bool> front = pareto_front(points);
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < points.size(); ++i)
    out.push_back({{"bits", points[i].bits},
                   {"weight_bytes", points[i].weight_bytes},
                   {"accuracy", points[i].accuracy},
                   {"pareto", static_cast<bool>(front[i])}});
  return out;
}

// pareto.json (the path, as the table prints it, and every evaluated configuration) and
// pareto.png/.svg: evaluated configurations as markers, their Pareto front as a line.
void write_pareto_files(const std::vector<MixedPrecisionPoint>& path,
                        const std::vector<MixedPrecisionPoint>& evaluated, int64_t budget,
                        const std::string& out_dir) {
  LinePlot plot;
  plot.title = "Greedy mixed precision: accuracy against weight size";
  plot.x_label = "packed weight bytes (KB = 1024 bytes)";
  plot.y_label = "test accuracy (%), integer engine";
  PlotSeries all{"evaluated configurations", {}, {}, false, true, false};
  PlotSeries front{"Pareto front", {}, {}, false, true, true};
  const std::vector<bool> on_front = pareto_front(evaluated);
  std::vector<const MixedPrecisionPoint*> front_points;
  for (size_t i = 0; i < evaluated.size(); ++i) {
    all.x.push_back(evaluated[i].weight_bytes / 1024.0);
    all.y.push_back(100 * evaluated[i].accuracy);
    if (on_front[i]) front_points.push_back(&evaluated[i]);
  }
  std::sort(front_points.begin(), front_points.end(),
            [](auto* a, auto* b) { return a->weight_bytes < b->weight_bytes; });
  for (const auto* p : front_points) {
    front.x.push_back(p->weight_bytes / 1024.0);
    front.y.push_back(100 * p->accuracy);
  }
  const auto [x_low, x_high] = std::minmax_element(all.x.begin(), all.x.end());
  const auto [y_low, y_high] = std::minmax_element(all.y.begin(), all.y.end());
  const double x_pad = 0.04 * (*x_high - *x_low), y_pad = 0.04 * (*y_high - *y_low);
  plot.x_min = std::max(0.0, *x_low - x_pad);
  plot.x_max = *x_high + x_pad;
  plot.y_min = std::max(0.0, *y_low - y_pad);
  plot.y_max = std::min(100.0, *y_high + y_pad);
  plot.series = {all, front};
  const double budget_kb = budget / 1024.0;
  if (budget_kb >= plot.x_min && budget_kb <= plot.x_max)
    plot.series.push_back({"budget (" + std::to_string(budget) + " bytes)",
                           {budget_kb, budget_kb}, {plot.y_min, plot.y_max}, true, false});
  write_line_plot(plot, out_dir + "/pareto.png");
  write_line_plot(plot, out_dir + "/pareto.svg");
  const nlohmann::json json = {{"budget", budget},
                               {"path", points_json(path)},
                               {"evaluated", points_json(evaluated)}};
  write_file_atomic(out_dir + "/pareto.json", json.dump(2) + "\n");
}

}  // namespace

Action add_sensitivity_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "sensitivity", "accuracy and KL when one layer at a time is quantized; mixed precision");
  struct Flags {
    DataFlags data;
    std::string model, bits = "1-8", out_dir;
    int threads = 0;
    bool json = false;
    int64_t budget = -1, calibration = 1024;
  };
  auto f = std::make_shared<Flags>();
  f->data.dataset.clear();
  add_data_flags(*cmd, f->data);
  add_threads_flag(*cmd, f->threads);
  cmd->add_option("--model", f->model, "float model file")->required();
  cmd->add_option("--bits", f->bits, "bit widths, e.g. 1-8 or 2,4,8")->capture_default_str();
  cmd->add_flag("--json", f->json, "print JSON instead of tables");
  cmd->add_option("--budget", f->budget,
                  "also search per-layer bits (greedy) and pick the best under this many bytes "
                  "of packed weights");
  add_calibration_flag(*cmd, f->calibration);
  cmd->add_option("--out-dir", f->out_dir,
                  "with --budget: write pareto.json, pareto.png and pareto.svg here");
  return [f] {
    apply_threads(f->threads);
    const std::vector<int> bits = parse_bits(f->bits, "--bits");
    if (!f->out_dir.empty()) {
      if (f->budget < 0) throw Error("--out-dir needs --budget (it holds the Pareto plot)");
      ensure_writable_dir(f->out_dir, "--out-dir");
    }
    const Model model = load_model(f->model);
    const Dataset data = load_data_for(f->data, model.metadata);
    const Tensor calibration = normalized_images(
        data.train, data.mean, data.std, 0, std::min<int64_t>(f->calibration, data.train.count));
    const Tensor test_images = normalize_all(data, data.test);
    const auto rows = layer_sensitivity(model, calibration, test_images, data.test.labels, bits);
    std::vector<MixedPrecisionPoint> path, evaluated;
    if (f->budget >= 0) path = mixed_precision_search(model, calibration, data.test, &evaluated);
    if (!f->out_dir.empty()) write_pareto_files(path, evaluated, f->budget, f->out_dir);

    if (f->json) {
      nlohmann::json out = {{"layers", nlohmann::json::array()}};
      for (const auto& r : rows)
        out["layers"].push_back(
            {{"linear", r.linear}, {"bits", r.bits}, {"accuracy", r.accuracy}, {"kl", r.kl}});
      if (f->budget >= 0) {
        out["budget"] = f->budget;
        out["mixed_precision"] = nlohmann::json::array();
        for (const auto& p : path)
          out["mixed_precision"].push_back(
              {{"bits", p.bits}, {"weight_bytes", p.weight_bytes}, {"accuracy", p.accuracy}});
      }
      std::printf("%s\n", out.dump(2).c_str());
      return 0;
    }
    std::printf("one layer quantized (min/max, weights and its input at b bits), others float;\n"
                "simulated on %lld test images; KL(float || quantized) in nats\n\n",
                static_cast<long long>(data.test.count));
    std::printf("%6s %4s %10s %12s\n", "linear", "bits", "accuracy", "KL");
    for (const auto& r : rows)
      std::printf("%6zu %4d %9.2f%% %12.5f\n", r.linear, r.bits, 100 * r.accuracy, r.kl);
    if (f->budget >= 0) {
      std::printf("\ngreedy mixed precision (integer engine), from all-8-bit down:\n");
      std::printf("%-12s %12s %10s %s\n", "bits", "weight bytes", "accuracy", "");
      const MixedPrecisionPoint* chosen = nullptr;
      const std::vector<bool> front = pareto_front(path);
      for (size_t i = 0; i < path.size(); ++i) {
        const MixedPrecisionPoint& p = path[i];
        if (p.weight_bytes <= f->budget && (!chosen || p.accuracy > chosen->accuracy)) chosen = &p;
        std::printf("%-12s %12lld %9.2f%% %s\n", bits_text(p.bits).c_str(),
                    static_cast<long long>(p.weight_bytes), 100 * p.accuracy,
                    front[i] ? "pareto" : "");
      }
      if (chosen) {
        std::printf("best under %lld bytes: bits %s, %lld bytes, %.2f%%\n",
                    static_cast<long long>(f->budget), bits_text(chosen->bits).c_str(),
                    static_cast<long long>(chosen->weight_bytes), 100 * chosen->accuracy);
      } else {
        std::printf("no point on the path fits in %lld bytes\n", static_cast<long long>(f->budget));
      }
      if (!f->out_dir.empty())
        std::printf("wrote %s/pareto.json, pareto.png and pareto.svg (%zu configurations)\n",
                    f->out_dir.c_str(), evaluated.size());
    }
    return 0;
  };
}

}  // namespace lowbit::cli
