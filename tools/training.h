// Training a float model for the CLI: recipe flags, the architecture, model metadata, progress.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/dataset.h"
#include "lowbit/model.h"
#include "lowbit/train.h"

namespace lowbit::cli {

// The recipe: epochs, batch size, optimizer, schedule, regularization, augmentation, seed.
void add_training_flags(CLI::App& app, TrainOptions& options);
// The recipe as the model file's metadata records it: the Adam keys every file has had, the
// other options only when they differ from off.
nlohmann::json recipe_metadata(const TrainOptions& options);
// `--json FILE`: {"epochs": [{"epoch", "train_loss", "train_accuracy", "learning_rate", "seconds",
// and with validation "validation_accuracy", "validation_loss", "selected"}, ...]}, atomically.
void write_history_json(const std::vector<EpochStats>& history, const std::string& path);

// What `--arch` names: a preset by name (fc_nn, resnet20, cifar_small), else a model description
// file (JSON), read and checked on its own when parsed, so that a bad file fails before any data
// is loaded.
struct Arch {
  std::string preset;           // empty for a file
  std::string where;            // "--arch NAME" or the file's path, for errors
  nlohmann::json description;   // a file's description
};
// Throws lowbit::Error, one line naming the file (and the node), when `arch` is neither a preset
// nor a readable description that builds.
Arch parse_arch(const std::string& arch);
// The description for the dataset's images and classes. Throws lowbit::Error, one line naming
// the preset or the file, when it does not take the dataset's [C, H, W] images or does not end
// in log_softmax over its classes.
nlohmann::json arch_description(const Arch& arch, const Dataset& data);

// Builds the model `description` names, initializes it from options.seed, trains it on the
// training set (less options.validation held-out images) and records the recipe and
// normalization in its metadata. Crop padding is the normalized black pixel.
Model train_model(const nlohmann::json& description, const Dataset& data, const Tensor& train_images,
                  const TrainOptions& options);
// train_model with FC_NN for the dataset's image shape.
Model train_fc_nn(const Dataset& data, const Tensor& train_images, const TrainOptions& options);

}  // namespace lowbit::cli
