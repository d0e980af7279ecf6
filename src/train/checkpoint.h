// Training checkpoints: the model, the optimizer's state and where the run stands, in one
// checksummed container file written atomically after every epoch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/model.h"
#include "lowbit/train.h"
#include "train/optimizer.h"

namespace lowbit {

// Where a run stands after `epochs_done` epochs.
struct TrainingState {
  int epochs_done = 0;
  int64_t step = 0;                 // optimizer steps taken
  std::string rng;                  // the shuffling generator (std::mt19937_64's text form)
  std::vector<int64_t> order;       // the training images in the last epoch's order
  std::vector<EpochStats> history;  // one per epoch done
  double best_accuracy = -1;        // validation only: the best epoch so far
  int best_epoch = 0;
  std::vector<Tensor> best;         // that epoch's parameters, then buffers
};

// recipe: every option that changes the result; resuming with another recipe is refused.
void save_checkpoint(const std::string& path, Model& model, Optimizer& optimizer,
                     const TrainingState& state, const nlohmann::json& recipe);

// Restores model parameters and buffers, the optimizer and the state. Throws lowbit::Error,
// one line naming `path`, when the file is unreadable or corrupt, or was written for another
// model or recipe.
void load_checkpoint(const std::string& path, Model& model, Optimizer& optimizer,
                     TrainingState& state, const nlohmann::json& recipe);

}  // namespace lowbit
