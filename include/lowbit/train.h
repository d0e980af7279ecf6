// Training on the negative log-likelihood (optimizers, schedules, augmentation, validation,
// checkpoints), and evaluation of accuracy and loss.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/model.h"
#include "lowbit/tensor.h"

namespace lowbit {

// Update rules, as PyTorch's torch.optim defines them (docs/training.md has the formulas).
enum class OptimizerKind {
  adam,   // Adam; weight decay, if any, is L2 added to the gradient (torch.optim.Adam)
  adamw,  // Adam with decoupled weight decay: p -= lr * wd * p before the step (torch.optim.AdamW)
  sgd,    // SGD with momentum (and Nesterov); weight decay added to the gradient (torch.optim.SGD)
};

// The learning rate of every step t = 0 .. T-1 (T = epochs * batches per epoch).
enum class ScheduleKind {
  constant,   // lr
  step,       // lr * gamma^floor(t / (step_epochs * batches per epoch))
  cosine,     // lr * (1 + cos(pi t / T)) / 2
  one_cycle,  // linear from lr / 25 up to lr over the first `warmup` of the steps, then linear to 0
};

struct Schedule {
  ScheduleKind kind = ScheduleKind::constant;
  int step_epochs = 30;  // step
  float gamma = 0.1f;    // step
  float warmup = 0.3f;   // one_cycle: fraction of all steps spent warming up
};

// The learning rate at step t (0-based) of `total_steps`, `steps_per_epoch` of them per epoch.
float scheduled_learning_rate(const Schedule& schedule, float learning_rate, int64_t step,
                              int64_t total_steps, int64_t steps_per_epoch);

// Random changes to each training image, drawn from (seed, epoch, image index) only, so that a
// run is the same at any thread count. Needs a model whose input is [C, H, W].
struct Augmentation {
  int crop_padding = 0;     // random H x W crop of the image padded by this many pixels per side
  bool flip = false;        // horizontal flip with probability 1/2 (after the crop)
  int cutout = 0;           // a cutout x cutout square set to 0 (the normalized mean), centre
                            // uniform over the image, clipped at the edges (DeVries & Taylor 2017)
  std::vector<float> fill;  // per channel, the value of padding pixels; empty: 0. The CLI uses the
                            // normalized black pixel, -mean / std, as torchvision pads raw images
  bool any() const { return crop_padding > 0 || flip || cutout > 0; }
};

struct EpochStats;

struct TrainOptions {
  int epochs = 10;
  int64_t batch_size = 64;
  OptimizerKind optimizer = OptimizerKind::adam;
  float learning_rate = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f;  // Adam(W), as PyTorch's defaults
  float momentum = 0.9f;                                 // SGD
  bool nesterov = false;                                 // SGD
  float weight_decay = 0;
  // false: no decay on rank-1 parameters (biases, batch norm's gamma and beta).
  bool decay_bias_and_norm = true;
  float label_smoothing = 0;  // eps: targets (1 - eps) on the label plus eps / classes everywhere
  float clip_norm = 0;        // > 0: scale the batch gradient down to this global L2 norm
  Schedule schedule;
  Augmentation augmentation;
  // > 0: hold out this many training images (chosen from the seed) for validation after every
  // epoch; the model returned is the epoch with the best validation accuracy (the first on ties).
  int64_t validation = 0;
  // Non-empty: after every epoch, write everything needed to continue here (atomically).
  std::string checkpoint;
  bool resume = false;  // continue from `checkpoint`, which must exist and match this recipe
  uint64_t seed = 0;    // shuffling, validation split, augmentation (initialization is Model::init)
  bool progress = true; // progress bar on a terminal, lines otherwise
  // Called after each epoch (after its checkpoint), e.g. for a JSON history.
  std::function<void(const std::vector<EpochStats>&)> on_epoch;
  // Called after every optimizer step with the number of steps done (tests stop runs with it).
  std::function<void(int64_t)> after_step;
};

struct EpochStats {
  int epoch = 0;
  double loss = 0;                  // mean training loss over the epoch (with label smoothing)
  double train_accuracy = 0;        // fraction, over the epoch's batches (augmented images)
  double validation_accuracy = -1;  // fraction; -1 without validation
  double validation_loss = -1;
  double learning_rate = 0;         // at the epoch's last step
  double seconds = 0;
  bool selected = false;            // the returned model is this epoch's
};

// images: [count, features] normalized; labels: count class indices. The model must end in
// log-softmax. Bit-identical for the same seed whatever the thread count: each batch is split
// into fixed shards whose gradients are summed in shard order. A resumed run ends with the same
// model as an uninterrupted one. Throws lowbit::Error on bad options or a checkpoint that does
// not fit (naming the file).
std::vector<EpochStats> train(Model& model, const Tensor& images, std::span<const uint8_t> labels,
                              const TrainOptions& options);

// The images `validation` = N holds out of `count`: N distinct indices, ascending, drawn from
// `seed` alone. The rest, ascending, are the training images.
std::vector<int64_t> validation_indices(int64_t count, int64_t validation, uint64_t seed);

struct Evaluation {
  double accuracy = 0;  // fraction
  double loss = 0;      // mean NLL
  int64_t count = 0;
  std::vector<uint8_t> predictions;
};

struct EvalOptions {
  // Test-time augmentation: average the class probabilities of each image and its mirror image.
  // Needs [C, H, W] inputs.
  bool flip = false;
};

// Runs the float model over all images in fixed chunks (deterministic across thread counts).
Evaluation evaluate(const Model& model, const Tensor& images, std::span<const uint8_t> labels,
                    const EvalOptions& options = {});

// Same, for any function that maps a batch of images [n, features] to log-probabilities
// [n, classes]; used for simulated quantized models. Thread-safe `forward` required.
Evaluation evaluate_with(const std::function<void(const Tensor&, Tensor&)>& forward,
                         const Tensor& images, std::span<const uint8_t> labels);

// Rows [begin, begin + count) of a [N, ...] tensor, as [count, ...].
Tensor slice_rows(const Tensor& t, int64_t begin, int64_t count);

}  // namespace lowbit
