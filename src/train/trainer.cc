// Minibatch training with Adam over fixed shards, and chunked evaluation.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/train.h"
#include "train/adam.h"
#include "train/batching.h"
#include "util/progress.h"

namespace lowbit {
namespace {

// Evaluation chunk, fixed for the same reason.
constexpr int64_t kEvalRows = 256;

void check_inputs(const Model& model, const Tensor& images, std::span<const uint8_t> labels) {
  if (images.rank() < 2 || images.dim(0) != static_cast<int64_t>(labels.size()))
    throw Error("images " + shape_string(images.shape()) + " and " +
                std::to_string(labels.size()) + " labels do not match");
  if (images.row_size() != model.input_size())
    throw Error("model expects inputs of shape " + shape_string(model.input_shape()) +
                ", data has " + shape_string(images.shape()));
  check_labels(shape_numel(model.output_shape()), labels);
}

struct Shard {
  Tensor x, d_output;
  Activations activations;
  std::vector<Tensor> gradients;
  double loss = 0;
  int64_t correct = 0;
};

}  // namespace

Tensor slice_rows(const Tensor& t, int64_t begin, int64_t count) {
  Shape shape = t.shape();
  shape[0] = count;
  Tensor out(shape);
  std::copy(t.data() + begin * t.row_size(), t.data() + (begin + count) * t.row_size(), out.data());
  return out;
}

std::vector<EpochStats> train(Model& model, const Tensor& images, std::span<const uint8_t> labels,
                              const TrainOptions& options) {
  check_inputs(model, images, labels);
  if (options.epochs < 0) throw Error("--epochs must not be negative");
  if (options.batch_size <= 0) throw Error("--batch-size must be positive");
  const int64_t count = images.dim(0);
  const int64_t batches = (count + options.batch_size - 1) / options.batch_size;
  const int64_t max_shards = shard_count(options.batch_size);

  std::vector<Tensor*> params = model.parameters();
  Adam adam(params, options.learning_rate, options.beta1, options.beta2, options.epsilon);
  std::vector<Shard> shards(max_shards);
  for (Shard& s : shards) s.gradients = model.zero_gradients();
  std::vector<Tensor> total = model.zero_gradients();

  std::mt19937_64 rng(options.seed);
  std::vector<int64_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::vector<EpochStats> history;
  Progress progress(options.epochs * batches, options.progress);
  std::vector<const Activations*> shard_activations;
  int64_t step = 0;

  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    shuffle(order, rng);
    double epoch_loss = 0;
    int64_t epoch_correct = 0;

    for (int64_t b = 0; b < batches; ++b) {
      const int64_t begin = b * options.batch_size;
      const int64_t rows = std::min(options.batch_size, count - begin);
      const int64_t used = shard_count(rows);
      const float scale = 1.0f / static_cast<float>(rows);
      // Dropout's randomness comes from (seed, step, shard), never from the thread.
      const uint64_t step_seed = mix_seed(options.seed, static_cast<uint64_t>(step++));
      for_each_shard(begin, rows, [&](int64_t s, int64_t first, int64_t n) {
        Shard& shard = shards[s];
        std::vector<uint8_t> shard_labels;
        gather(images, labels, order, first, n, shard.x, shard_labels);
        const ForwardMode mode{true, mix_seed(step_seed, static_cast<uint64_t>(s))};
        const Tensor& log_probs = model.forward(shard.x, shard.activations, mode);
        shard.correct = 0;
        shard.loss = nll(log_probs, shard_labels.data(), &shard.d_output, scale, &shard.correct);
        for (Tensor& g : shard.gradients) g.fill(0.0f);
        model.backward(shard.x, shard.activations, shard.d_output, shard.gradients);
      });
      sum_shard_gradients(shards, used, total);
      adam.step(total);
      // Batch norm's running statistics from each shard's, in shard order.
      shard_activations.clear();
      for (int64_t s = 0; s < used; ++s) shard_activations.push_back(&shards[s].activations);
      model.update_running_statistics(shard_activations);
      for (int64_t s = 0; s < used; ++s) {
        epoch_loss += shards[s].loss;
        epoch_correct += shards[s].correct;
      }
      char status[96];
      std::snprintf(status, sizeof status, "epoch %d/%d loss %.4f acc %.2f%%", epoch,
                    options.epochs, epoch_loss / static_cast<double>(begin + rows),
                    100.0 * static_cast<double>(epoch_correct) / static_cast<double>(begin + rows));
      progress.update((epoch - 1) * batches + b + 1, status);
    }
    EpochStats stats;
    stats.epoch = epoch;
    stats.loss = epoch_loss / static_cast<double>(count);
    stats.train_accuracy = static_cast<double>(epoch_correct) / static_cast<double>(count);
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    history.push_back(stats);
    char text[128];
    std::snprintf(text, sizeof text, "epoch %d/%d  loss %.4f  train accuracy %.2f%%  %.2fs", epoch,
                  options.epochs, stats.loss, 100 * stats.train_accuracy, stats.seconds);
    progress.line(text);
  }
  progress.finish();
  return history;
}

Evaluation evaluate_with(const std::function<void(const Tensor&, Tensor&)>& forward,
                         const Tensor& images, std::span<const uint8_t> labels) {
  if (images.rank() < 1 || images.dim(0) != static_cast<int64_t>(labels.size()))
    throw Error("images and labels do not match");
  const int64_t count = images.dim(0);
  const int64_t chunks = (count + kEvalRows - 1) / kEvalRows;
  Evaluation result;
  result.count = count;
  result.predictions.resize(count);
  std::vector<double> losses(chunks, 0.0);
  std::vector<int64_t> correct(chunks, 0), too_few_classes(chunks, -1);
#pragma omp parallel for schedule(dynamic)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kEvalRows, n = std::min(kEvalRows, count - begin);
    Tensor x = slice_rows(images, begin, n), log_probs;
    forward(x, log_probs);
    // Checked here too for callers whose forward function is not a Model (no exception may
    // leave the parallel loop, so it is thrown after it).
    const uint8_t largest = *std::max_element(labels.begin() + begin, labels.begin() + begin + n);
    if (largest >= log_probs.row_size()) {
      too_few_classes[c] = log_probs.row_size();
      continue;
    }
    losses[c] = nll(log_probs, labels.data() + begin, nullptr, 0, &correct[c],
                    result.predictions.data() + begin);
  }
  for (int64_t c = 0; c < chunks; ++c)
    if (too_few_classes[c] >= 0) check_labels(too_few_classes[c], labels);
  double loss = 0;
  int64_t right = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    loss += losses[c];
    right += correct[c];
  }
  result.accuracy = count ? static_cast<double>(right) / static_cast<double>(count) : 0;
  result.loss = count ? loss / static_cast<double>(count) : 0;
  // Finite parameters can still overflow float on the way (a loaded file's weights of 1e30):
  // an error, not "loss nan".
  if (!std::isfinite(result.loss))
    throw Error("the model's outputs are not finite: its parameters overflow float arithmetic");
  return result;
}

Evaluation evaluate(const Model& model, const Tensor& images, std::span<const uint8_t> labels) {
  check_inputs(model, images, labels);
  return evaluate_with(
      [&model](const Tensor& x, Tensor& log_probs) {
        Activations activations;
        log_probs = model.forward(x, activations);
      },
      images, labels);
}

}  // namespace lowbit
