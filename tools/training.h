// Training the float model for the CLI: recipe flags, model metadata, progress.
#pragma once

#include <CLI/CLI.hpp>

#include "lowbit/dataset.h"
#include "lowbit/model.h"
#include "lowbit/train.h"

namespace lowbit::cli {

void add_training_flags(CLI::App& app, TrainOptions& options);
// Builds FC_NN for the dataset's image shape, initializes it from options.seed, trains it on the
// whole training set and records the recipe and normalization in its metadata.
Model train_fc_nn(const Dataset& data, const Tensor& train_images, const TrainOptions& options);

}  // namespace lowbit::cli
