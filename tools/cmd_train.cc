// `lowbit train` writes a float model; `lowbit eval` measures a float or quantized one.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "float_model_input.h"
#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/model_file.h"
#include "lowbit/quantized_model.h"
#include "training.h"

namespace lowbit::cli {

Action add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "train a model (FC_NN by default) and write a float model file");
  struct Flags {
    DataFlags data;
    TrainOptions train;
    std::string arch = "fc_nn";
    std::string out, json;
    bool tta_flip = false, no_progress = false;
    int64_t train_images = 0;
    int threads = 0;
  };
  auto f = std::make_shared<Flags>();
  add_data_flags(*cmd, f->data);
  add_training_flags(*cmd, f->train);
  cmd->add_option("--validation", f->train.validation,
                  "hold out this many training images (chosen by --seed); keep the epoch most "
                  "accurate on them (never the test set)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--train-images", f->train_images,
                  "train on the first N training images only (0: all), e.g. for short runs")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--checkpoint", f->train.checkpoint,
                  "write a checkpoint here after every epoch (model, optimizer, position)");
  cmd->add_flag("--resume", f->train.resume,
                "continue the run whose --checkpoint this is (same flags); ends with the same "
                "model as an uninterrupted run");
  cmd->add_option("--json", f->json, "write every epoch's loss, accuracy, lr and time here");
  cmd->add_flag("--tta-flip", f->tta_flip,
                "test accuracy averaged over each image and its mirror image");
  cmd->add_flag("--no-progress", f->no_progress, "no progress bar or epoch lines");
  cmd->add_option("--arch", f->arch,
                  "a preset (fc_nn, resnet20, cifar_small; see lowbit models) or a model "
                  "description file (JSON, docs/model-format.md)")
      ->capture_default_str();
  add_threads_flag(*cmd, f->threads);
  cmd->add_option("--out", f->out, "model file to write")->required();
  return [f] {
    apply_threads(f->threads);
    if (quiet()) f->train.progress = false;
    ensure_writable_dir(parent_dir(f->out), "--out");
    if (!f->json.empty()) ensure_writable_dir(parent_dir(f->json), "--json");
    if (f->train.resume && f->train.checkpoint.empty()) throw Error("--resume needs --checkpoint FILE");
    if (f->train.resume && !std::filesystem::is_regular_file(f->train.checkpoint))
      throw Error("--resume: " + f->train.checkpoint + " does not exist");
    if (!f->train.checkpoint.empty()) ensure_writable_dir(parent_dir(f->train.checkpoint), "--checkpoint");
    const Arch arch = parse_arch(f->arch);
    Dataset data = load_data(f->data);
    const nlohmann::json description = arch_description(arch, data);
    std::string train_text = describe_split(data, Split::train);
    if (f->train_images > 0 && f->train_images < data.train.count) {
      train_text = describe_split(data, Split::train, SplitPart::first, f->train_images);
      ImageSet& t = data.train;
      t.count = f->train_images;
      t.pixels.resize(t.count * t.image_size());
      t.labels.resize(t.count);
    }
    if (f->train.validation >= data.train.count)
      throw Error("--validation " + std::to_string(f->train.validation) + ": must be fewer than the " +
                  std::to_string(data.train.count) + " training images");
    TrainOptions options = f->train;
    options.progress = !f->no_progress;
    if (!f->json.empty())
      options.on_epoch = [path = f->json](const std::vector<EpochStats>& h) { write_history_json(h, path); };
    // For tests: a kill with no chance to clean up, after this many optimizer steps.
    if (const char* kill_after = std::getenv("LOWBIT_TEST_KILL_AFTER_STEP"))
      options.after_step = [n = std::atoll(kill_after)](int64_t step) {
        if (step == n) std::raise(SIGKILL);
      };
    const Tensor train_images = normalize_all(data, data.train);
    const Model model = train_model(description, data, train_images, options);
    const Evaluation test = evaluate(model, normalize_all(data, data.test), data.test.labels,
                                     EvalOptions{f->tta_flip});
    save_model(model, f->out);
    const int64_t trained = data.train.count - options.validation;
    const std::string on = options.validation > 0
        ? std::to_string(trained) + " images of " + train_text + " (" +
              std::to_string(options.validation) + " held out for validation, best epoch " +
              std::to_string(model.metadata.value("selected_epoch", 0)) + ")"
        : train_text;
    std::printf("trained on %s; test accuracy %.2f%%%s, loss %.4f on %s; wrote %s\n", on.c_str(),
                100 * test.accuracy, f->tta_flip ? " (flip-averaged)" : "", test.loss,
                describe_split(data, Split::test).c_str(), f->out.c_str());
    return 0;
  };
}

Action add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "accuracy and loss of a float or quantized model");
  struct Flags {
    DataFlags data;
    std::string model;
    bool tta_flip = false;
    int threads = 0;
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  f->data.dataset.clear();
  add_data_flags(*cmd, f->data);
  add_threads_flag(*cmd, f->threads);
  cmd->add_flag("--tta-flip", f->tta_flip,
                "float models: average each image's class probabilities with its mirror image's");
  cmd->add_option("--model", f->model, "model file (float or quantized)")->required();
  cmd->add_flag("--json", f->json, "print the result as JSON");
  return [f] {
    apply_threads(f->threads);
    const std::string kind = is_onnx_path(f->model) ? "float" : model_file_kind(f->model);
    Evaluation result;
    std::string engine, images, dataset;
    nlohmann::json bits;
    if (kind == "float") {
      const Model model = load_float_model(f->model, f->data.dataset);
      const Dataset data = load_data_for(f->data, model.metadata, f->model, shape_numel(model.output_shape()));
      result = evaluate(model, normalize_all(data, data.test), data.test.labels, EvalOptions{f->tta_flip});
      engine = f->tta_flip ? "float32, flip-averaged" : "float32";
      images = describe_split(data, Split::test);
      dataset = data.name;
    } else {
      if (f->tta_flip) throw Error("--tta-flip: only float models; " + f->model + " is quantized");
      const QuantizedModel model = QuantizedModel::load(f->model);
      const Dataset data = load_data_for(f->data, model.metadata, f->model, model.num_classes());
      result = model.evaluate(data.test);
      const std::string kernels = model.is_graph()
                                      ? std::string("CNN graph, ") + model.ops_kernel_name() + " + " + model.kernel_name()
                                      : std::string(model.input_kernel_name()) + ", " + model.kernel_name();
      engine = "integer engine (" + kernels + "), " +
               std::to_string(model.weight_bits()) + "-bit weights, " +
               std::to_string(model.act_bits()) + "-bit activations";
      images = describe_split(data, Split::test);
      dataset = data.name;
      bits = {{"weight_bits", model.weight_bits()}, {"act_bits", model.act_bits()}};
    }
    if (f->json) {
      nlohmann::json out = {{"model", f->model},         {"kind", kind},
                            {"dataset", dataset},        {"images", images},
                            {"test_count", static_cast<int64_t>(result.predictions.size())},
                            {"accuracy", result.accuracy}, {"loss", result.loss},
                            {"engine", engine}};
      if (!bits.is_null()) out.update(bits);
      std::printf("%s\n", out.dump(2).c_str());
      return 0;
    }
    std::printf("%s: accuracy %.2f%%, loss %.4f on %s [%s]\n", f->model.c_str(),
                100 * result.accuracy, result.loss, images.c_str(), engine.c_str());
    return 0;
  };
}

}  // namespace lowbit::cli
