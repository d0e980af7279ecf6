// The FC_NN training recipe behind `lowbit train` and `lowbit sweep`.
#include "training.h"

#include <chrono>
#include <cstdio>

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

Model train_fc_nn(const Dataset& data, const Tensor& train_images, const TrainOptions& options) {
  Model model = Model::from_description(
      Model::fc_nn_description({data.train.channels, data.train.height, data.train.width},
                               data.num_classes));
  model.init(options.seed);
  const auto start = std::chrono::steady_clock::now();
  const auto history = train(model, train_images, data.train.labels, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "trained FC_NN for %d epochs in %.2f s (%.3f s per epoch)\n",
               options.epochs, seconds, seconds / std::max(1, options.epochs));
  model.metadata = {{"name", "fc_nn"},
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

}  // namespace lowbit::cli
