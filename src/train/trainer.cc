// Minibatch training over fixed shards (optimizer, schedule, augmentation, validation,
// checkpoints), and chunked evaluation.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>
#include <sstream>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/train.h"
#include "train/augment.h"
#include "train/batching.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
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
  std::vector<float> scratch;  // augmentation
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

std::vector<int64_t> validation_indices(int64_t count, int64_t validation, uint64_t seed) {
  if (validation < 0 || validation >= count)
    throw Error("--validation " + std::to_string(validation) + ": must be at least 0 and fewer than the " +
                std::to_string(count) + " training images");
  constexpr uint64_t kValidationStream = 0x76616c6964ULL;  // "valid"
  std::mt19937_64 rng(mix_seed(seed, kValidationStream));
  std::vector<int64_t> all(count);
  std::iota(all.begin(), all.end(), 0);
  // A partial Fisher-Yates: the first `validation` places get a uniform random subset.
  for (int64_t i = 0; i < validation; ++i)
    std::swap(all[i], all[i + static_cast<int64_t>(uniform_index(rng, static_cast<uint64_t>(count - i)))]);
  all.resize(validation);
  std::sort(all.begin(), all.end());
  return all;
}

namespace {

nlohmann::json recipe_json(const TrainOptions& o, int64_t count) {
  return {{"epochs", o.epochs},
          {"batch_size", o.batch_size},
          {"optimizer", static_cast<int>(o.optimizer)},
          {"learning_rate", o.learning_rate},
          {"beta1", o.beta1},
          {"beta2", o.beta2},
          {"epsilon", o.epsilon},
          {"momentum", o.momentum},
          {"nesterov", o.nesterov},
          {"weight_decay", o.weight_decay},
          {"decay_bias_and_norm", o.decay_bias_and_norm},
          {"label_smoothing", o.label_smoothing},
          {"clip_norm", o.clip_norm},
          {"schedule", {static_cast<int>(o.schedule.kind), o.schedule.step_epochs, o.schedule.gamma,
                        o.schedule.warmup}},
          {"augmentation", {o.augmentation.crop_padding, o.augmentation.flip, o.augmentation.cutout,
                            o.augmentation.fill}},
          {"validation", o.validation},
          {"seed", o.seed},
          {"images", count}};
}

void check_options(const Model& model, const TrainOptions& o) {
  if (o.epochs < 0) throw Error("--epochs must not be negative");
  if (o.batch_size <= 0) throw Error("--batch-size must be positive");
  if (!(o.learning_rate > 0)) throw Error("--lr must be positive");
  if (!(o.weight_decay >= 0)) throw Error("--weight-decay must not be negative");
  if (!(o.label_smoothing >= 0 && o.label_smoothing < 1))
    throw Error("--label-smoothing must be in [0, 1)");
  if (!(o.clip_norm >= 0)) throw Error("--clip-norm must not be negative");
  if (!(o.momentum >= 0 && o.momentum < 1)) throw Error("--momentum must be in [0, 1)");
  if (o.nesterov && (o.optimizer != OptimizerKind::sgd || o.momentum == 0))
    throw Error("--nesterov needs --optimizer sgd with a positive --momentum");
  if (o.schedule.kind == ScheduleKind::step && o.schedule.step_epochs < 1)
    throw Error("--lr-step-epochs must be at least 1");
  if (o.schedule.kind == ScheduleKind::one_cycle && !(o.schedule.warmup > 0 && o.schedule.warmup < 1))
    throw Error("--warmup must be in (0, 1)");
  const Augmentation& a = o.augmentation;
  if (a.crop_padding < 0 || a.cutout < 0) throw Error("--crop-padding and --cutout must not be negative");
  if (a.any() || o.augmentation.fill.size() > 0) {
    const Shape& s = model.input_shape();
    if (s.size() != 3)
      throw Error("augmentation needs a model with [C, H, W] inputs; this one takes " + shape_string(s));
    if (a.crop_padding >= s[1] || a.crop_padding >= s[2])
      throw Error("--crop-padding " + std::to_string(a.crop_padding) + " must be smaller than the " +
                  std::to_string(s[1]) + "x" + std::to_string(s[2]) + " images");
    if (!a.fill.empty() && static_cast<int64_t>(a.fill.size()) != s[0])
      throw Error("augmentation fill needs one value per channel");
  }
}

// params then buffers, copied (the best epoch's model).
std::vector<Tensor> snapshot(Model& model) {
  std::vector<Tensor> out;
  for (Tensor* p : model.parameters()) out.push_back(*p);
  for (Tensor* b : model.buffers()) out.push_back(*b);
  return out;
}

void restore(Model& model, const std::vector<Tensor>& saved) {
  size_t i = 0;
  for (Tensor* p : model.parameters()) *p = saved[i++];
  for (Tensor* b : model.buffers()) *b = saved[i++];
}

std::string rng_text(const std::mt19937_64& rng) {
  std::ostringstream out;
  out << rng;
  return out.str();
}

}  // namespace

std::vector<EpochStats> train(Model& model, const Tensor& images, std::span<const uint8_t> labels,
                              const TrainOptions& options) {
  check_inputs(model, images, labels);
  check_options(model, options);
  const int64_t all_count = images.dim(0);

  // Held-out validation images; the rest are trained on, in index order before shuffling.
  std::vector<int64_t> order;
  Tensor validation_images;
  std::vector<uint8_t> validation_labels;
  if (options.validation > 0) {
    const std::vector<int64_t> held = validation_indices(all_count, options.validation, options.seed);
    gather(images, labels, held, 0, static_cast<int64_t>(held.size()), validation_images,
           validation_labels);
    size_t next = 0;
    for (int64_t i = 0; i < all_count; ++i) {
      if (next < held.size() && held[next] == i) ++next;
      else order.push_back(i);
    }
  } else {
    order.resize(all_count);
    std::iota(order.begin(), order.end(), 0);
  }
  const int64_t count = static_cast<int64_t>(order.size());
  const int64_t batches = (count + options.batch_size - 1) / options.batch_size;
  const int64_t total_steps = options.epochs * batches;
  const int64_t max_shards = shard_count(options.batch_size);

  std::vector<Tensor*> params = model.parameters();
  std::unique_ptr<Optimizer> optimizer = make_optimizer(options, params);
  std::vector<Shard> shards(max_shards);
  for (Shard& s : shards) s.gradients = model.zero_gradients();
  std::vector<Tensor> total = model.zero_gradients();

  std::mt19937_64 rng(options.seed);
  const nlohmann::json recipe = recipe_json(options, all_count);
  TrainingState state;
  if (options.resume) {
    if (options.checkpoint.empty()) throw Error("--resume needs --checkpoint FILE");
    if (!std::filesystem::exists(options.checkpoint))
      throw Error("--resume: " + options.checkpoint + " does not exist");
    load_checkpoint(options.checkpoint, model, *optimizer, state, recipe);
    std::istringstream in(state.rng);
    in >> rng;
    std::vector<int64_t> sorted = state.order;
    std::sort(sorted.begin(), sorted.end());
    if (in.fail() || sorted != order || state.epochs_done > options.epochs)
      throw Error(options.checkpoint + ": inconsistent checkpoint (generator, image order or epochs)");
    order = state.order;
  }

  const Augmentation& augmentation = options.augmentation;
  const Shape& input_shape = model.input_shape();
  const int first_epoch_done = state.epochs_done;
  Progress progress((options.epochs - first_epoch_done) * batches, options.progress);
  std::vector<const Activations*> shard_activations;
  const auto run_start = std::chrono::steady_clock::now();
  int64_t images_this_run = 0;

  for (int epoch = state.epochs_done + 1; epoch <= options.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    shuffle(order, rng);
    double epoch_loss = 0;
    int64_t epoch_correct = 0;
    float lr = options.learning_rate;

    for (int64_t b = 0; b < batches; ++b) {
      const int64_t begin = b * options.batch_size;
      const int64_t rows = std::min(options.batch_size, count - begin);
      const int64_t used = shard_count(rows);
      const float scale = 1.0f / static_cast<float>(rows);
      lr = scheduled_learning_rate(options.schedule, options.learning_rate, state.step, total_steps,
                                   batches);
      optimizer->set_learning_rate(lr);
      // Dropout's randomness comes from (seed, step, shard), never from the thread.
      const uint64_t step_seed = mix_seed(options.seed, static_cast<uint64_t>(state.step));
      for_each_shard(begin, rows, [&](int64_t s, int64_t first, int64_t n) {
        Shard& shard = shards[s];
        std::vector<uint8_t> shard_labels;
        gather(images, labels, order, first, n, shard.x, shard_labels);
        if (augmentation.any()) {
          const int64_t features = shard.x.row_size();
          for (int64_t i = 0; i < n; ++i)
            augment_image(shard.x.data() + i * features, input_shape[0], input_shape[1], input_shape[2],
                          augmentation, augmentation_seed(options.seed, epoch, order[first + i]),
                          shard.scratch);
        }
        const ForwardMode mode{true, mix_seed(step_seed, static_cast<uint64_t>(s))};
        const Tensor& log_probs = model.forward(shard.x, shard.activations, mode);
        shard.correct = 0;
        shard.loss = nll(log_probs, shard_labels.data(), &shard.d_output, scale, &shard.correct,
                         nullptr, options.label_smoothing);
        for (Tensor& g : shard.gradients) g.fill(0.0f);
        model.backward(shard.x, shard.activations, shard.d_output, shard.gradients);
      });
      sum_shard_gradients(shards, used, total);
      if (options.clip_norm > 0) clip_gradient_norm(total, options.clip_norm);
      optimizer->step(total);
      ++state.step;
      // Batch norm's running statistics from each shard's, in shard order.
      shard_activations.clear();
      for (int64_t s = 0; s < used; ++s) shard_activations.push_back(&shards[s].activations);
      model.update_running_statistics(shard_activations);
      for (int64_t s = 0; s < used; ++s) {
        epoch_loss += shards[s].loss;
        epoch_correct += shards[s].correct;
      }
      images_this_run += rows;
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
      char status[128];
      std::snprintf(status, sizeof status, "epoch %d/%d loss %.4f acc %.2f%% %.0f img/s", epoch,
                    options.epochs, epoch_loss / static_cast<double>(begin + rows),
                    100.0 * static_cast<double>(epoch_correct) / static_cast<double>(begin + rows),
                    elapsed > 0 ? static_cast<double>(images_this_run) / elapsed : 0.0);
      progress.update((epoch - 1 - first_epoch_done) * batches + b + 1, status);
      if (options.after_step) options.after_step(state.step);
    }
    EpochStats stats;
    stats.epoch = epoch;
    stats.loss = count ? epoch_loss / static_cast<double>(count) : 0;
    stats.train_accuracy = count ? static_cast<double>(epoch_correct) / static_cast<double>(count) : 0;
    stats.learning_rate = lr;
    char text[192];
    int used_text = std::snprintf(text, sizeof text, "epoch %d/%d  loss %.4f  train accuracy %.2f%%",
                                  epoch, options.epochs, stats.loss, 100 * stats.train_accuracy);
    if (options.validation > 0) {
      const Evaluation v = evaluate(model, validation_images, validation_labels);
      stats.validation_accuracy = v.accuracy;
      stats.validation_loss = v.loss;
      if (v.accuracy > state.best_accuracy) {
        state.best_accuracy = v.accuracy;
        state.best_epoch = epoch;
        state.best = snapshot(model);
      }
      used_text += std::snprintf(text + used_text, sizeof text - used_text,
                                 "  validation accuracy %.2f%%", 100 * v.accuracy);
    }
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::snprintf(text + used_text, sizeof text - used_text, "  lr %.4g  %.2fs", lr, stats.seconds);
    state.history.push_back(stats);
    state.epochs_done = epoch;
    // The model returned so far: the best epoch's with validation, else the last.
    for (EpochStats& s : state.history)
      s.selected = s.epoch == (options.validation > 0 ? state.best_epoch : epoch);
    progress.line(text);
    if (!options.checkpoint.empty()) {
      state.rng = rng_text(rng);
      state.order = order;
      save_checkpoint(options.checkpoint, model, *optimizer, state, recipe);
    }
    if (options.on_epoch) options.on_epoch(state.history);
  }
  progress.finish();
  if (options.validation > 0 && !state.best.empty()) restore(model, state.best);
  return state.history;
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

Evaluation evaluate(const Model& model, const Tensor& images, std::span<const uint8_t> labels,
                    const EvalOptions& options) {
  check_inputs(model, images, labels);
  const Shape& s = model.input_shape();
  if (options.flip && s.size() != 3)
    throw Error("flip averaging needs a model with [C, H, W] inputs; this one takes " + shape_string(s));
  return evaluate_with(
      [&model, &options, &s](const Tensor& x, Tensor& log_probs) {
        Activations activations;
        log_probs = model.forward(x, activations);
        if (!options.flip) return;
        // log((p + p_mirror) / 2), computed stably from the two log-probabilities.
        const Tensor& mirrored = model.forward(mirror_images(x, s[0], s[1], s[2]), activations);
        for (int64_t j = 0; j < log_probs.size(); ++j) {
          const float a = log_probs[j], b = mirrored[j], hi = std::max(a, b);
          log_probs[j] = hi + std::log(0.5f * (std::exp(a - hi) + std::exp(b - hi)));
        }
      },
      images, labels);
}

}  // namespace lowbit
