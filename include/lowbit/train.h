// Training with Adam on the negative log-likelihood, and evaluation of accuracy and loss.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "lowbit/model.h"
#include "lowbit/tensor.h"

namespace lowbit {

struct TrainOptions {
  int epochs = 10;
  int64_t batch_size = 64;
  float learning_rate = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f;  // Adam, as PyTorch's defaults
  uint64_t seed = 0;                                     // shuffling (initialization is Model::init)
  bool progress = true;                                  // progress bar on a terminal, lines otherwise
};

struct EpochStats {
  int epoch = 0;
  double loss = 0;            // mean training loss over the epoch
  double train_accuracy = 0;  // fraction, over the epoch's batches
  double seconds = 0;
};

// images: [count, features] normalized; labels: count class indices. The model must end in
// log-softmax. Bit-identical for the same seed whatever the thread count: each batch is split
// into fixed shards whose gradients are summed in shard order.
std::vector<EpochStats> train(Model& model, const Tensor& images, std::span<const uint8_t> labels,
                              const TrainOptions& options);

struct Evaluation {
  double accuracy = 0;  // fraction
  double loss = 0;      // mean NLL
  int64_t count = 0;
  std::vector<uint8_t> predictions;
};

// Runs the float model over all images in fixed chunks (deterministic across thread counts).
Evaluation evaluate(const Model& model, const Tensor& images, std::span<const uint8_t> labels);

// Same, for any function that maps a batch of images [n, features] to log-probabilities
// [n, classes]; used for simulated quantized models. Thread-safe `forward` required.
Evaluation evaluate_with(const std::function<void(const Tensor&, Tensor&)>& forward,
                         const Tensor& images, std::span<const uint8_t> labels);

// Rows [begin, begin + count) of a [N, ...] tensor, as [count, ...].
Tensor slice_rows(const Tensor& t, int64_t begin, int64_t count);

}  // namespace lowbit
