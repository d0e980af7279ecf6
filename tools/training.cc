// The training recipe behind `lowbit train` and `lowbit sweep`, and the architecture `--arch` names.
#include "training.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lowbit/error.h"

namespace lowbit::cli {

void add_training_flags(CLI::App& app, TrainOptions& options) {
  app.add_option("--epochs", options.epochs, "training epochs")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--batch-size", options.batch_size, "minibatch size")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  app.add_option("--lr", options.learning_rate, "Adam learning rate")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--beta1", options.beta1, "Adam beta1")
      ->capture_default_str()->check(CLI::Range(0.0f, 0.999999f));
  app.add_option("--beta2", options.beta2, "Adam beta2")
      ->capture_default_str()->check(CLI::Range(0.0f, 0.999999f));
  app.add_option("--eps", options.epsilon, "Adam epsilon")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", options.seed, "seed for initialization and shuffling")
      ->capture_default_str();
}

namespace {

Model build(const nlohmann::json& description, const std::string& where) {
  try {
    return Model::from_description(description);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
}

}  // namespace

Arch parse_arch(const std::string& arch) {
  std::string known;
  for (const ModelPreset& p : model_presets()) {
    if (p.name == arch) return {arch, "--arch " + arch, {}};
    known += (known.empty() ? "" : ", ") + p.name;
  }
  if (!std::filesystem::is_regular_file(arch))
    throw Error("--arch " + arch + ": neither a preset (" + known + ") nor a model description file");
  std::ifstream in(arch);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) throw Error(arch + ": cannot read the file");
  nlohmann::json description = nlohmann::json::parse(text.str(), nullptr, false);
  if (description.is_discarded()) throw Error(arch + ": not a JSON model description");
  if (description.is_object() && !description.contains("name"))
    description["name"] = std::filesystem::path(arch).stem().string();
  build(description, arch);
  return {"", arch, description};
}

nlohmann::json arch_description(const Arch& arch, const Dataset& data) {
  const Shape images = {data.train.channels, data.train.height, data.train.width};
  const nlohmann::json description =
      arch.preset.empty() ? arch.description : preset_description(arch.preset, images, data.num_classes);
  const Model model = build(description, arch.where);
  if (model.input_shape() != images)
    throw Error(arch.where + ": input_shape " + shape_string(model.input_shape()) + " does not fit " +
                data.name + "'s " + shape_string(images) + " images");
  const std::string last = model.layer(model.layer_count() - 1).kind();
  if (last != "log_softmax" || model.output_shape() != Shape{data.num_classes})
    throw Error(arch.where + ": the model must end in log_softmax over " +
                std::to_string(data.num_classes) + " classes; it ends in " + last + " " +
                shape_string(model.output_shape()));
  return description;
}

Model train_model(const nlohmann::json& description, const Dataset& data, const Tensor& train_images,
                  const TrainOptions& options) {
  Model model = Model::from_description(description);
  const std::string name = model.name().empty() ? "model" : model.name();
  model.init(options.seed);
  const auto start = std::chrono::steady_clock::now();
  const auto history = train(model, train_images, data.train.labels, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "trained %s for %d epochs in %.2f s (%.3f s per epoch)\n",
               name == "fc_nn" ? "FC_NN" : name.c_str(), options.epochs, seconds,
               seconds / std::max(1, options.epochs));
  model.metadata = {{"name", name},
                    {"dataset", data.name},
                    {"mean", data.mean},
                    {"std", data.std},
                    {"train_size", data.train.count},
                    {"recipe",
                     {{"optimizer", "adam"},
                      {"epochs", options.epochs},
                      {"batch_size", options.batch_size},
                      {"learning_rate", options.learning_rate},
                      {"beta1", options.beta1},
                      {"beta2", options.beta2},
                      {"epsilon", options.epsilon},
                      {"seed", options.seed}}},
                    {"final_train_loss", history.empty() ? 0.0 : history.back().loss}};
  return model;
}

Model train_fc_nn(const Dataset& data, const Tensor& train_images, const TrainOptions& options) {
  return train_model(
      Model::fc_nn_description({data.train.channels, data.train.height, data.train.width},
                               data.num_classes),
      data, train_images, options);
}

}  // namespace lowbit::cli
