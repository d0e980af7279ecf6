// `lowbit sweep`: the FC_NN study — train (or load), quantize at each bit width, table and plot.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "cli_progress.h"
#include "commands.h"
#include "float_model_input.h"
#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/model_file.h"
#include "lowbit/quantize.h"
#include "lowbit/sweep.h"
#include "training.h"

namespace lowbit::cli {
namespace {

// origin: where the float model came from, e.g. "trained on mnist train, 60,000 images".
void print_table(const SweepResult& r, const Dataset& data, const std::string& origin,
                 int64_t calibration_count) {
  std::printf("\n%s %s\naccuracy on %s; calibration: %s\n", r.model == "fc_nn" ? "FC_NN" : r.model.c_str(),
              origin.c_str(),
              describe_split(data, Split::test).c_str(),
              describe_split(data, Split::train, SplitPart::first,
                             std::min(calibration_count, data.train.count))
                  .c_str());
  std::printf("float32 test accuracy: %.2f%%  (weights %lld bytes, %lld multiply-adds per image)\n\n",
              100 * r.float_accuracy, static_cast<long long>(r.float_weight_bytes),
              static_cast<long long>(r.multiply_adds));
  std::printf("%-10s %4s %10s %10s %10s %8s %13s\n", "method", "bits", "accuracy", "drop",
              "simulated", "agree", "weight bytes");
  for (const SweepRow& row : r.results)
    std::printf("%-10s %4d %9.2f%% %+9.2f %9.2f%% %7.2f%% %13lld\n", row.method.c_str(),
                row.weight_bits, 100 * row.accuracy, 100 * (row.accuracy - r.float_accuracy),
                100 * row.simulated_accuracy, 100 * row.agreement,
                static_cast<long long>(row.weight_bytes));
  std::printf("\naccuracy: the integer engine's; simulated: float fake-quant as in the study;\n"
              "agree: test images where both predict the same class; drop: points from float.\n");
}

}  // namespace

Action add_sweep_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("sweep", "quantize at each bit width and report accuracy");
  struct Flags {
    DataFlags data;
    TrainOptions train;
    std::string bits = "1-8", methods = "minmax", model, out_dir;
    int64_t calibration = 1024;
    int threads = 0;
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  f->data.dataset.clear();  // mnist, or with --model the model's own
  add_data_flags(*cmd, f->data);
  add_training_flags(*cmd, f->train);
  add_threads_flag(*cmd, f->threads);
  cmd->add_option("--bits", f->bits, "bit widths: 1-8, 4, or 2,4,8")->capture_default_str();
  cmd->add_option("--methods", f->methods, "comma-separated presets, or all: " + method_names())
      ->capture_default_str();
  cmd->add_option("--model", f->model, "float model to quantize (default: train one)");
  add_calibration_flag(*cmd, f->calibration);
  cmd->add_option("--out-dir", f->out_dir, "where sweep.json and the plots go")->required();
  cmd->add_flag("--json", f->json, "print sweep.json on stdout instead of the table");
  return [f] {
    apply_threads(f->threads);
    SweepOptions options;
    options.bits = parse_bits(f->bits, "--bits");
    options.methods = parse_methods(f->methods, "--methods");
    options.calibration_count = f->calibration;
    if (quiet()) f->train.progress = false;
    ensure_writable_dir(f->out_dir, "--out-dir");

    std::optional<Model> loaded;
    if (!f->model.empty()) loaded = load_float_model(f->model, f->data.dataset);
    if (loaded) check_quantizable(*loaded, f->model);
    const Dataset data = loaded ? load_data_for(f->data, loaded->metadata, f->model, shape_numel(loaded->output_shape()))
                                : load_data_for(f->data, nlohmann::json::object(), "");
    const Tensor train_images = normalize_all(data, data.train);
    const std::string trained_on = loaded && loaded->metadata.is_object()
                                       ? loaded->metadata.value("dataset", "an unrecorded dataset")
                                       : "an unrecorded dataset";
    const std::string origin = loaded ? "from " + f->model + " (trained on " + trained_on + ")"
                                      : "trained on " + describe_split(data, Split::train);
    const Model model = loaded ? std::move(*loaded) : train_fc_nn(data, train_images, f->train);
    if (!f->model.empty() && model.input_size() != data.test.image_size())
      throw Error("--model " + f->model + ": expects " + std::to_string(model.input_size()) +
                  " pixels per image, " + data.name + " has " +
                  std::to_string(data.test.image_size()));

    StepProgress progress("sweep: rows (method, bits)");
    options.progress = [&progress](size_t done, size_t total) { progress(done, total); };
    SweepResult result =
        run_sweep(model, train_images, data.test, normalize_all(data, data.test), options);
    result.dataset = data.name;
    result.data_source = data.source;
    result.train_size = data.train.count;
    write_sweep_report(result, f->out_dir);
    if (f->json) {
      std::printf("%s\n", result.to_json().dump(2).c_str());
    } else {
      print_table(result, data, origin, options.calibration_count);
      std::printf("wrote %s/sweep.json, accuracy_vs_bits.png and accuracy_vs_bits.svg\n",
                  f->out_dir.c_str());
    }
    return 0;
  };
}

}  // namespace lowbit::cli
