// `lowbit sensitivity`: how much each layer suffers from quantization, and a greedy search over
// per-layer bits, chosen on held-out training images, whose Pareto front (accuracy against packed
// weight bytes, validation and test) it prints and plots.
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
#include "lowbit/model_file.h"
#include "lowbit/plot.h"
#include "lowbit/quantize.h"
#include "lowbit/quantized_model.h"
#include "lowbit/sensitivity.h"
#include "lowbit/train.h"

namespace lowbit::cli {
namespace {

std::string bits_text(const std::vector<int>& bits) {
  std::string text;
  for (int b : bits) text += (text.empty() ? "" : ",") + std::to_string(b);
  return text;
}

// The last `count` images of a set: the validation split the search chooses with.
ImageSet last_images(const ImageSet& set, int64_t count) {
  ImageSet out = set;
  out.count = count;
  const int64_t first = set.count - count;
  out.pixels.assign(set.pixels.begin() + first * set.image_size(), set.pixels.end());
  out.labels.assign(set.labels.begin() + first, set.labels.end());
  return out;
}

// Per point: on the Pareto front of `points` by validation accuracy (what the search may look
// at), i.e. no point is as small and as accurate and better in one of the two; of equal points
// only the first counts.
using Cost = MixedPrecisionOptions::Cost;

std::vector<bool> pareto_front(const std::vector<MixedPrecisionPoint>& points, Cost cost) {
  std::vector<bool> front(points.size(), true);
  for (size_t i = 0; i < points.size(); ++i)
    for (size_t k = 0; k < points.size(); ++k) {
      const int64_t bytes = point_cost(points[k], cost), my_bytes = point_cost(points[i], cost);
      const double accuracy = points[k].validation_accuracy, mine = points[i].validation_accuracy;
      if (bytes <= my_bytes && accuracy >= mine &&
          (bytes < my_bytes || accuracy > mine || k < i))
        front[i] = false;
    }
  return front;
}

nlohmann::json points_json(const std::vector<MixedPrecisionPoint>& points, Cost cost) {
  const std::vector<bool> front = pareto_front(points, cost);
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < points.size(); ++i) {
    nlohmann::json point = {{"weight_bits", points[i].weight_bits},
                            {"act_bits", points[i].act_bits},
                            {"weight_bytes", points[i].weight_bytes},
                            {"bit_operations", points[i].bit_operations},
                            {"validation_accuracy", points[i].validation_accuracy},
                            {"pareto", static_cast<bool>(front[i])}};
    if (points[i].test_accuracy >= 0) point["test_accuracy"] = points[i].test_accuracy;
    out.push_back(point);
  }
  return out;
}

// The most accurate point on the validation set within `budget` (bytes or bit-operations), or null.
const MixedPrecisionPoint* best_within(const std::vector<MixedPrecisionPoint>& path, int64_t budget,
                                       Cost cost) {
  const MixedPrecisionPoint* chosen = nullptr;
  for (const auto& p : path)
    if (point_cost(p, cost) <= budget &&
        (!chosen || p.validation_accuracy > chosen->validation_accuracy))
      chosen = &p;
  return chosen;
}

// pareto.json (the path, as the table prints it, and every evaluated configuration) and
// pareto.png/.svg: evaluated configurations (validation accuracy) as markers, the path's Pareto
// points as lines, validation and test, and the point chosen within the budget (null: none).
void write_pareto_files(const std::vector<MixedPrecisionPoint>& path,
                        const std::vector<MixedPrecisionPoint>& evaluated,
                        const MixedPrecisionPoint* chosen, int64_t budget, Cost cost,
                        const std::string& method, int64_t validation_count,
                        const std::string& out_dir) {
  const bool bytes = cost == Cost::weight_bytes;
  // x: KiB of packed weights, or giga bit-operations per image.
  auto x_of = [&](const MixedPrecisionPoint& p) {
    return bytes ? p.weight_bytes / 1024.0 : p.bit_operations / 1e9;
  };
  const double unit = bytes ? 1024.0 : 1e9;
  LinePlot plot;
  plot.title = "Greedy mixed precision, " + method;
  plot.x_label = bytes ? "packed weights (KiB; 1 KiB = 1024 bytes)"
                       : "bit-operations per image (G; multiply-adds x weight bits x act bits)";
  plot.y_label = "accuracy (%), integer engine";
  PlotSeries all{"evaluated (validation)", {}, {}, false, true, false};
  PlotSeries front_validation{"Pareto path, validation", {}, {}, false, true, true};
  PlotSeries front_test{"Pareto path, test", {}, {}, true, true, true};
  for (const auto& p : evaluated) {
    all.x.push_back(x_of(p));
    all.y.push_back(100 * p.validation_accuracy);
  }
  const std::vector<bool> on_front = pareto_front(path, cost);
  std::vector<const MixedPrecisionPoint*> front_points;
  for (size_t i = 0; i < path.size(); ++i)
    if (on_front[i]) front_points.push_back(&path[i]);
  std::sort(front_points.begin(), front_points.end(),
            [&](auto* a, auto* b) { return point_cost(*a, cost) < point_cost(*b, cost); });
  for (const auto* p : front_points) {
    front_validation.x.push_back(x_of(*p));
    front_validation.y.push_back(100 * p->validation_accuracy);
    front_test.x.push_back(x_of(*p));
    front_test.y.push_back(100 * p->test_accuracy);
  }
  std::vector<double> ys = all.y;
  ys.insert(ys.end(), front_test.y.begin(), front_test.y.end());
  const auto [x_low, x_high] = std::minmax_element(all.x.begin(), all.x.end());
  const auto [y_low, y_high] = std::minmax_element(ys.begin(), ys.end());
  const double x_pad = 0.04 * (*x_high - *x_low), y_pad = 0.04 * (*y_high - *y_low);
  plot.x_min = std::max(0.0, *x_low - x_pad);
  plot.x_max = *x_high + x_pad;
  plot.y_min = std::max(0.0, *y_low - y_pad);
  plot.y_max = std::min(100.0, *y_high + y_pad);
  plot.series = {all, front_validation, front_test};
  const double budget_kb = budget / unit;
  if (budget_kb >= plot.x_min && budget_kb <= plot.x_max)
    plot.series.push_back({"budget (" + std::to_string(budget) + (bytes ? " bytes)" : " bit-ops)"),
                           {budget_kb, budget_kb}, {plot.y_min, plot.y_max}, true, false});
  if (chosen) {
    char label[96];
    std::snprintf(label, sizeof label, "chosen: %lld %s, %.2f%% validation",
                  static_cast<long long>(point_cost(*chosen, cost)), bytes ? "bytes" : "bit-ops",
                  100 * chosen->validation_accuracy);
    // Drawn last and large, over the path's own marker at that point.
    plot.series.push_back({label, {x_of(*chosen)},
                           {100 * chosen->validation_accuracy}, false, true, false, 2.2});
  }
  write_line_plot(plot, out_dir + "/pareto.png");
  write_line_plot(plot, out_dir + "/pareto.svg");
  const nlohmann::json json = {{"budget", budget},
                               {"budget_of", bytes ? "weight_bytes" : "bit_operations"},
                               {"method", method},
                               {"validation_images", validation_count},
                               {"path", points_json(path, cost)},
                               {"evaluated", points_json(evaluated, cost)},
                               {"chosen", chosen ? points_json({*chosen}, cost)[0] : nlohmann::json()}};
  write_file_atomic(out_dir + "/pareto.json", json.dump(2) + "\n");
}

}  // namespace

Action add_sensitivity_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "sensitivity", "accuracy and KL when one layer at a time is quantized; mixed precision");
  struct Flags {
    DataFlags data;
    std::string model, bits = "1-8", out_dir, method = "minmax";
    int threads = 0;
    bool json = false, separate_act_bits = false;
    int64_t budget = -1, budget_ops = -1, calibration = 1024, validation = 5000;
  };
  auto f = std::make_shared<Flags>();
  f->data.dataset.clear();
  add_data_flags(*cmd, f->data);
  add_threads_flag(*cmd, f->threads);
  cmd->add_option("--model", f->model, "float model file")->required();
  cmd->add_option("--bits", f->bits, "bit widths of the table, and those the search may give a "
                  "layer, e.g. 1-8 or 2,3,4,8")->capture_default_str();
  cmd->add_option("--method", f->method, "quantization preset of the table and of every plan "
                  "the search measures: " + method_names())->capture_default_str();
  cmd->add_flag("--json", f->json, "print JSON instead of tables");
  cmd->add_option("--budget", f->budget,
                  "also search per-layer bits (greedy, chosen on the validation images) and pick "
                  "the best under this many bytes of packed weights (at least what every layer "
                  "at the narrowest --bits takes)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 50));
  cmd->add_option("--budget-ops", f->budget_ops,
                  "as --budget, but a budget of bit-operations per image (multiply-adds x weight "
                  "bits x activation bits, summed over layers), where lowering activations saves too")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 62));
  cmd->add_option("--validation", f->validation,
                  "with --budget: the last N training images, which the search chooses by "
                  "(calibration takes the first --calib-count of the rest)")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_flag("--separate-act-bits", f->separate_act_bits,
                "with --budget: lower weights and activations of a layer in separate steps "
                "(activation steps save no bytes and are taken only when free on validation)");
  add_calibration_flag(*cmd, f->calibration);
  cmd->add_option("--out-dir", f->out_dir,
                  "with --budget: write pareto.json, pareto.png and pareto.svg here");
  return [f] {
    apply_threads(f->threads);
    const std::vector<int> bits = parse_bits(f->bits, "--bits");
    check_method(f->method, "--method");
    if (!f->out_dir.empty()) {
      if (f->budget < 0 && f->budget_ops < 0)
        throw FlagError("--out-dir needs --budget or --budget-ops (it holds the Pareto plot)");
      ensure_writable_dir(f->out_dir, "--out-dir");
    }
    if (f->budget >= 0 && f->budget_ops >= 0)
      throw FlagError("--budget and --budget-ops: give one (a budget of bytes, or of bit-operations)");
    const bool by_ops = f->budget_ops >= 0;
    const Cost cost = by_ops ? Cost::bit_operations : Cost::weight_bytes;
    const int64_t budget = by_ops ? f->budget_ops : f->budget;
    const char* budget_flag = by_ops ? "--budget-ops " : "--budget ";
    const char* unit = by_ops ? "bit-operations per image" : "bytes of packed weights";
    const bool search = budget >= 0;
    const Model model = load_float_model(f->model, f->data.dataset);
    check_quantizable(model, f->model);
    const Dataset data = load_data_for(f->data, model.metadata, f->model, shape_numel(model.output_shape()));
    // The search chooses on the last --validation training images; calibration never sees them.
    const int64_t held_out = search ? f->validation : 0;
    if (held_out >= data.train.count)
      throw FlagError("--validation " + std::to_string(held_out) + ": the " +
                  std::to_string(data.train.count) +
                  " training images leave none for calibration");
    const Tensor calibration = normalized_images(
        data.train, data.mean, data.std, 0,
        std::min<int64_t>(f->calibration, data.train.count - held_out));
    if (search) {
      // The search ends with every layer at the narrowest width, the smallest point it can
      // reach; a budget below that fails now rather than after the whole search. Packing does not
      // depend on the method or the calibration, so a minmax plan of a few images sizes it.
      const int narrowest = bits.front();
      const QuantizedModel smallest = QuantizedModel::build(
          model, plan_quantization(model, slice_rows(calibration, 0, std::min<int64_t>(
                                                                        16, calibration.dim(0))),
                                   preset_options("minmax", narrowest, narrowest)));
      const int64_t least = by_ops ? smallest.bit_operations() : smallest.weight_bytes();
      if (least > budget)
        throw FlagError(budget_flag + std::to_string(budget) + ": no configuration fits; " +
                        "every layer at " + std::to_string(narrowest) + " bits (the narrowest " +
                        "of --bits) takes " + std::to_string(least) + " " + unit);
    }
    const Tensor test_images = normalize_all(data, data.test);
    const auto rows = [&] {
      StepProgress progress("sensitivity: layers x bits measured");
      return layer_sensitivity(model, calibration, test_images, data.test.labels, bits, f->method,
                               [&progress](size_t d, size_t t) { progress(d, t); });
    }();
    std::vector<MixedPrecisionPoint> path, evaluated;
    if (search) {
      MixedPrecisionOptions options;
      options.method = f->method;
      options.bits = bits;
      options.separate_act_bits = f->separate_act_bits;
      options.cost = cost;
      StepProgress progress("mixed precision: steps (at most)");
      options.progress = [&progress](size_t d, size_t t) { progress(d, t); };
      path = mixed_precision_search(model, calibration, last_images(data.train, held_out), options,
                                    &evaluated);
      add_test_accuracy(model, data.test, path);  // after the search: reported, never chosen by
    }
    const MixedPrecisionPoint* chosen = search ? best_within(path, budget, cost) : nullptr;
    if (!f->out_dir.empty())
      write_pareto_files(path, evaluated, chosen, budget, cost, f->method, held_out, f->out_dir);

    if (f->json) {
      nlohmann::json out = {{"method", f->method},
                            {"dataset", data.name},
                            {"test_images", describe_split(data, Split::test)},
                            {"layers", nlohmann::json::array()}};
      for (const auto& r : rows)
        out["layers"].push_back(
            {{"linear", r.linear}, {"name", r.name}, {"bits", r.bits}, {"accuracy", r.accuracy}, {"kl", r.kl}});
      if (search) {
        out["budget"] = budget;
        out["budget_of"] = by_ops ? "bit_operations" : "weight_bytes";
        out["validation_images"] = held_out;
        out["mixed_precision"] = points_json(path, cost);
        out["chosen"] = chosen ? points_json({*chosen}, cost)[0] : nlohmann::json();
      }
      std::printf("%s\n", out.dump(2).c_str());
      return 0;
    }
    std::printf("one layer quantized (%s, weights and its input at b bits), others float;\n"
                "simulated on %s; KL(float || quantized) in nats\n\n",
                f->method.c_str(), describe_split(data, Split::test).c_str());
    std::printf("%6s %-24s %4s %10s %12s\n", "layer", "name", "bits", "accuracy", "KL");
    for (const auto& r : rows)
      std::printf("%6zu %-24s %4d %9.2f%% %12.5f\n", r.linear, r.name.c_str(), r.bits, 100 * r.accuracy, r.kl);
    if (search) {
      std::printf("\ngreedy mixed precision (%s, integer engine), from all-%d-bit down, chosen on "
                  "%s (validation);\ntest: %s, reported only:\n",
                  f->method.c_str(), path.front().weight_bits.front(),
                  describe_split(data, Split::train, SplitPart::last, held_out).c_str(),
                  describe_split(data, Split::test).c_str());
      std::printf("%-12s %-12s %12s %14s %11s %10s %s\n", "weight bits", "act bits", "weight bytes",
                  "bit-ops", "validation", "test", "");
      const std::vector<bool> front = pareto_front(path, cost);
      for (size_t i = 0; i < path.size(); ++i) {
        const MixedPrecisionPoint& p = path[i];
        std::printf("%-12s %-12s %12lld %14lld %10.2f%% %9.2f%% %s\n", bits_text(p.weight_bits).c_str(),
                    bits_text(p.act_bits).c_str(), static_cast<long long>(p.weight_bytes),
                    static_cast<long long>(p.bit_operations), 100 * p.validation_accuracy,
                    100 * p.test_accuracy, front[i] ? "pareto" : "");
      }
      const char* short_unit = by_ops ? "bit-operations" : "bytes";
      if (chosen) {
        std::printf("best under %lld %s (by validation): weight bits %s, act bits %s, "
                    "%lld bytes, %lld bit-operations, validation %.2f%%, test %.2f%%\n",
                    static_cast<long long>(budget), short_unit, bits_text(chosen->weight_bits).c_str(),
                    bits_text(chosen->act_bits).c_str(), static_cast<long long>(chosen->weight_bytes),
                    static_cast<long long>(chosen->bit_operations), 100 * chosen->validation_accuracy,
                    100 * chosen->test_accuracy);
      } else {
        std::printf("no point on the path fits in %lld %s\n", static_cast<long long>(budget), short_unit);
      }
      if (!f->out_dir.empty())
        std::printf("wrote %s/pareto.json, pareto.png and pareto.svg (%zu configurations)\n",
                    f->out_dir.c_str(), evaluated.size());
    }
    return 0;
  };
}

}  // namespace lowbit::cli
