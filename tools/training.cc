// The training recipe behind `lowbit train` and `lowbit sweep`, and the architecture `--arch` names.
#include "training.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"

namespace lowbit::cli {

void add_training_flags(CLI::App& app, TrainOptions& options) {
  app.add_option("--epochs", options.epochs, "training epochs")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--batch-size", options.batch_size, "minibatch size")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  const std::map<std::string, OptimizerKind> optimizers = {
      {"adam", OptimizerKind::adam}, {"adamw", OptimizerKind::adamw}, {"sgd", OptimizerKind::sgd}};
  app.add_option("--optimizer", options.optimizer, "adam, adamw (decoupled weight decay) or sgd")
      ->transform(CLI::CheckedTransformer(optimizers))->default_str("adam");
  app.add_option("--lr", options.learning_rate, "learning rate (the peak for --schedule one-cycle)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--beta1", options.beta1, "Adam beta1")
      ->capture_default_str()->check(CLI::Range(0.0f, 0.999999f));
  app.add_option("--beta2", options.beta2, "Adam beta2")
      ->capture_default_str()->check(CLI::Range(0.0f, 0.999999f));
  app.add_option("--eps", options.epsilon, "Adam epsilon")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--momentum", options.momentum, "SGD momentum")
      ->capture_default_str()->check(CLI::Range(0.0f, 0.999999f));
  app.add_flag("--nesterov", options.nesterov, "SGD with Nesterov momentum");
  app.add_option("--weight-decay", options.weight_decay,
                 "weight decay (adam, sgd: L2 added to the gradient; adamw: decoupled), on every "
                 "parameter unless --no-decay-bias-bn")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_flag("--no-decay-bias-bn{false}", options.decay_bias_and_norm,
               "no weight decay on biases and batch norm's gamma and beta");
  app.add_option("--label-smoothing", options.label_smoothing, "label smoothing eps, in [0, 1)")
      ->capture_default_str()->check(CLI::Range(0.0f, 0.999999f));
  app.add_option("--clip-norm", options.clip_norm,
                 "clip each batch gradient to this global L2 norm (0: off)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  const std::map<std::string, ScheduleKind> schedules = {{"constant", ScheduleKind::constant},
                                                         {"step", ScheduleKind::step},
                                                         {"cosine", ScheduleKind::cosine},
                                                         {"one-cycle", ScheduleKind::one_cycle}};
  app.add_option("--schedule", options.schedule.kind,
                 "learning rate per step: constant, step (x --lr-gamma every --lr-step-epochs), "
                 "cosine (to 0), one-cycle (linear warm-up from lr/25 over --warmup of the steps, "
                 "then linear to 0)")
      ->transform(CLI::CheckedTransformer(schedules))->default_str("constant");
  app.add_option("--lr-step-epochs", options.schedule.step_epochs, "--schedule step: epochs per step")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--lr-gamma", options.schedule.gamma, "--schedule step: factor per step")
      ->capture_default_str()->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--warmup", options.schedule.warmup, "--schedule one-cycle: warm-up fraction")
      ->capture_default_str()->check(CLI::Range(0.001f, 0.999f));
  app.add_option("--crop-padding", options.augmentation.crop_padding,
                 "augmentation: random crop of the image padded by this many black pixels (0: off)")
      ->capture_default_str()->check(CLI::Range(0, 1000));
  app.add_flag("--flip", options.augmentation.flip, "augmentation: random horizontal flip");
  app.add_option("--cutout", options.augmentation.cutout,
                 "augmentation: zero a random square of this side (0: off)")
      ->capture_default_str()->check(CLI::Range(0, 1000));
  app.add_option("--seed", options.seed, "seed for initialization, shuffling, validation split and augmentation")
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

nlohmann::json recipe_metadata(const TrainOptions& o) {
  static const char* optimizer_names[] = {"adam", "adamw", "sgd"};
  static const char* schedule_names[] = {"constant", "step", "cosine", "one-cycle"};
  nlohmann::json r = {{"optimizer", optimizer_names[static_cast<int>(o.optimizer)]},
                      {"epochs", o.epochs},
                      {"batch_size", o.batch_size},
                      {"learning_rate", o.learning_rate}};
  // The Adam defaults' keys, as every model file has had them; the rest only when they are used,
  // so that FC_NN's files stay byte for byte what they were.
  if (o.optimizer != OptimizerKind::sgd) {
    r["beta1"] = o.beta1;
    r["beta2"] = o.beta2;
    r["epsilon"] = o.epsilon;
  } else {
    r["momentum"] = o.momentum;
    r["nesterov"] = o.nesterov;
  }
  r["seed"] = o.seed;
  if (o.weight_decay > 0) {
    r["weight_decay"] = o.weight_decay;
    r["decay_bias_and_norm"] = o.decay_bias_and_norm;
  }
  if (o.label_smoothing > 0) r["label_smoothing"] = o.label_smoothing;
  if (o.clip_norm > 0) r["clip_norm"] = o.clip_norm;
  if (o.schedule.kind != ScheduleKind::constant) {
    r["schedule"] = schedule_names[static_cast<int>(o.schedule.kind)];
    if (o.schedule.kind == ScheduleKind::step) {
      r["lr_step_epochs"] = o.schedule.step_epochs;
      r["lr_gamma"] = o.schedule.gamma;
    }
    if (o.schedule.kind == ScheduleKind::one_cycle) r["warmup"] = o.schedule.warmup;
  }
  if (o.augmentation.crop_padding > 0) r["crop_padding"] = o.augmentation.crop_padding;
  if (o.augmentation.flip) r["flip"] = true;
  if (o.augmentation.cutout > 0) r["cutout"] = o.augmentation.cutout;
  if (o.validation > 0) r["validation"] = o.validation;
  return r;
}

void write_history_json(const std::vector<EpochStats>& history, const std::string& path) {
  nlohmann::json epochs = nlohmann::json::array();
  for (const EpochStats& s : history) {
    nlohmann::json e = {{"epoch", s.epoch},
                        {"train_loss", s.loss},
                        {"train_accuracy", s.train_accuracy},
                        {"learning_rate", s.learning_rate},
                        {"seconds", s.seconds}};
    if (s.validation_accuracy >= 0) {
      e["validation_accuracy"] = s.validation_accuracy;
      e["validation_loss"] = s.validation_loss;
      e["selected"] = s.selected;
    }
    epochs.push_back(e);
  }
  write_file_atomic(path, nlohmann::json{{"epochs", epochs}}.dump(2) + "\n");
}

Model train_model(const nlohmann::json& description, const Dataset& data, const Tensor& train_images,
                  const TrainOptions& options) {
  Model model = Model::from_description(description);
  const std::string name = model.name().empty() ? "model" : model.name();
  model.init(options.seed);
  TrainOptions run = options;
  // Padding is black, as torchvision pads raw images before normalizing them.
  if (run.augmentation.crop_padding > 0 && run.augmentation.fill.empty())
    for (size_t c = 0; c < data.mean.size(); ++c)
      run.augmentation.fill.push_back(-data.mean[c] / data.std[c]);
  const auto start = std::chrono::steady_clock::now();
  const auto history = train(model, train_images, data.train.labels, run);
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
                    {"recipe", recipe_metadata(options)},
                    {"final_train_loss", history.empty() ? 0.0 : history.back().loss}};
  for (const EpochStats& s : history)
    if (options.validation > 0 && s.selected) {
      model.metadata["selected_epoch"] = s.epoch;
      model.metadata["validation_accuracy"] = s.validation_accuracy;
    }
  return model;
}

Model train_fc_nn(const Dataset& data, const Tensor& train_images, const TrainOptions& options) {
  return train_model(
      Model::fc_nn_description({data.train.channels, data.train.height, data.train.width},
                               data.num_classes),
      data, train_images, options);
}

}  // namespace lowbit::cli
