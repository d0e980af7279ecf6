// `lowbit train` writes a float model; `lowbit eval` measures a float or quantized one.
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "lowbit/atomic_file.h"
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
    std::string out;
    int threads = 0;
  };
  auto f = std::make_shared<Flags>();
  add_data_flags(*cmd, f->data);
  add_training_flags(*cmd, f->train);
  cmd->add_option("--arch", f->arch,
                  "a preset (fc_nn, resnet20, cifar_small; see lowbit models) or a model "
                  "description file (JSON, docs/model-format.md)")
      ->capture_default_str();
  add_threads_flag(*cmd, f->threads);
  cmd->add_option("--out", f->out, "model file to write")->required();
  return [f] {
    apply_threads(f->threads);
    ensure_writable_dir(parent_dir(f->out), "--out");
    const Arch arch = parse_arch(f->arch);
    const Dataset data = load_data(f->data);
    const nlohmann::json description = arch_description(arch, data);
    const Tensor train_images = normalize_all(data, data.train);
    const Model model = train_model(description, data, train_images, f->train);
    const Evaluation test = evaluate(model, normalize_all(data, data.test), data.test.labels);
    save_model(model, f->out);
    std::printf("trained on %s; test accuracy %.2f%%, loss %.4f on %s; wrote %s\n",
                describe_split(data, Split::train).c_str(), 100 * test.accuracy, test.loss,
                describe_split(data, Split::test).c_str(), f->out.c_str());
    return 0;
  };
}

Action add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "accuracy and loss of a float or quantized model");
  struct Flags {
    DataFlags data;
    std::string model;
    int threads = 0;
  };
  auto f = std::make_shared<Flags>();
  f->data.dataset.clear();
  add_data_flags(*cmd, f->data);
  add_threads_flag(*cmd, f->threads);
  cmd->add_option("--model", f->model, "model file (float or quantized)")->required();
  return [f] {
    apply_threads(f->threads);
    const std::string kind = model_file_kind(f->model);
    Evaluation result;
    std::string engine, images;
    if (kind == "float") {
      const Model model = load_model(f->model);
      const Dataset data = load_data_for(f->data, model.metadata, f->model, shape_numel(model.output_shape()));
      result = evaluate(model, normalize_all(data, data.test), data.test.labels);
      engine = "float32";
      images = describe_split(data, Split::test);
    } else {
      const QuantizedModel model = QuantizedModel::load(f->model);
      const Dataset data = load_data_for(f->data, model.metadata, f->model, model.num_classes());
      result = model.evaluate(data.test);
      engine = "integer engine (" + std::string(model.input_kernel_name()) + ", " + model.kernel_name() + "), " +
               std::to_string(model.weight_bits()) + "-bit weights, " +
               std::to_string(model.act_bits()) + "-bit activations";
      images = describe_split(data, Split::test);
    }
    std::printf("%s: accuracy %.2f%%, loss %.4f on %s [%s]\n", f->model.c_str(),
                100 * result.accuracy, result.loss, images.c_str(), engine.c_str());
    return 0;
  };
}

}  // namespace lowbit::cli
