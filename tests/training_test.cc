// Training learns, and is bit-identical across runs and thread counts for the same seed.
#include <gtest/gtest.h>
#include <omp.h>

#include <filesystem>
#include <algorithm>
#include <functional>
#include <random>
#include <stdexcept>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/model.h"
#include "lowbit/train.h"
#include "train/augment.h"

#include <nlohmann/json.hpp>

namespace lowbit {
namespace {

// Four Gaussian blobs in 16 dimensions: a problem FC_NN-shaped models learn in one epoch.
struct Blobs {
  Tensor images;
  std::vector<uint8_t> labels;
};

Blobs make_blobs(int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Blobs b{Tensor({count, 16}), std::vector<uint8_t>(count)};
  for (int64_t i = 0; i < count; ++i) {
    b.labels[i] = static_cast<uint8_t>(rng() % 4);
    for (int j = 0; j < 16; ++j)
      b.images[i * 16 + j] = uniform_float(rng, -0.5f, 0.5f) + (j % 4 == b.labels[i] ? 1.5f : 0.0f);
  }
  return b;
}

Model small_model() {
  Model m = Model::from_description(Model::fc_nn_description({16}, 4));
  m.init(5);
  return m;
}

std::vector<float> all_parameters(Model& m) {
  std::vector<float> out;
  for (Tensor* p : m.parameters()) out.insert(out.end(), p->values().begin(), p->values().end());
  return out;
}

TEST(Training, LearnsASeparableProblem) {
  const Blobs train_set = make_blobs(2000, 1), test_set = make_blobs(500, 2);
  Model model = small_model();
  const double before = evaluate(model, test_set.images, test_set.labels).accuracy;
  TrainOptions options;
  options.epochs = 2;
  options.progress = false;
  const auto history = train(model, train_set.images, train_set.labels, options);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_LT(history[1].loss, history[0].loss);
  const Evaluation after = evaluate(model, test_set.images, test_set.labels);
  EXPECT_GT(after.accuracy, 0.95);
  EXPECT_GT(after.accuracy, before + 0.3);
}

TEST(Training, BitIdenticalAcrossRunsAndThreadCounts) {
  const Blobs data = make_blobs(1000, 3);
  TrainOptions options;
  options.epochs = 2;
  options.batch_size = 100;  // several shards per batch, with a ragged last shard
  options.seed = 42;
  options.progress = false;
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 1, 2}) {
    omp_set_num_threads(threads);
    Model model = small_model();
    train(model, data.images, data.labels, options);
    results.push_back(all_parameters(model));
  }
  for (size_t r = 1; r < results.size(); ++r) EXPECT_EQ(results[r], results[0]) << "run " << r;

  options.seed = 43;  // and the seed matters
  Model other = small_model();
  train(other, data.images, data.labels, options);
  EXPECT_NE(all_parameters(other), results[0]);
}

TEST(Training, RejectsMismatchedInputs) {
  const Blobs data = make_blobs(10, 4);
  Model model = small_model();
  TrainOptions options;
  options.progress = false;
  std::vector<uint8_t> short_labels(5);
  EXPECT_THROW(train(model, data.images, short_labels, options), Error);
  Model wrong = Model::from_description(Model::fc_nn_description({8}, 4));
  EXPECT_THROW(train(wrong, data.images, data.labels, options), Error);
}

// Images [4, 6, 6] whose label is the bright channel: crops and flips keep the label.
Blobs make_images(int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  constexpr int64_t kSize = 4 * 6 * 6;
  Blobs b{Tensor({count, 4, 6, 6}), std::vector<uint8_t>(count)};
  for (int64_t i = 0; i < count; ++i) {
    b.labels[i] = static_cast<uint8_t>(rng() % 4);
    for (int64_t j = 0; j < kSize; ++j)
      b.images[i * kSize + j] = uniform_float(rng, -1.0f, 1.0f) + (j / 36 == b.labels[i] ? 0.8f : 0.0f);
  }
  return b;
}

Model small_cnn() {
  Model m = Model::from_description(nlohmann::json::parse(R"({"input_shape": [4, 6, 6], "nodes": [
    {"name": "conv", "kind": "conv2d", "inputs": ["input"], "out_channels": 6, "kernel": 3, "padding": 1},
    {"name": "bn", "kind": "batch_norm", "inputs": ["conv"]},
    {"name": "relu", "kind": "relu", "inputs": ["bn"]},
    {"name": "drop", "kind": "dropout", "inputs": ["relu"], "p": 0.2},
    {"name": "pool", "kind": "global_avg_pool", "inputs": ["drop"]},
    {"name": "fc", "kind": "linear", "inputs": ["pool"], "out_features": 4},
    {"name": "out", "kind": "log_softmax", "inputs": ["fc"]}]})"));
  m.init(7);
  return m;
}

// Everything a CIFAR recipe uses at once.
TrainOptions cifar_like_options() {
  TrainOptions o;
  o.epochs = 3;
  o.batch_size = 40;  // two shards, the second ragged
  o.optimizer = OptimizerKind::sgd;
  o.learning_rate = 0.05f;
  o.nesterov = true;
  o.weight_decay = 5e-4f;
  o.label_smoothing = 0.1f;
  o.clip_norm = 5.0f;
  o.schedule.kind = ScheduleKind::one_cycle;
  o.augmentation.crop_padding = 2;
  o.augmentation.flip = true;
  o.augmentation.cutout = 2;
  o.augmentation.fill = {-1, -2, -3, -4};
  o.seed = 11;
  o.progress = false;
  return o;
}

std::vector<float> parameters_and_buffers(Model& m) {
  std::vector<float> out = all_parameters(m);
  for (Tensor* b : m.buffers()) out.insert(out.end(), b->values().begin(), b->values().end());
  return out;
}

std::string temp_path(const std::string& name) {
  std::filesystem::create_directories(LOWBIT_TEST_TMP);
  return std::string(LOWBIT_TEST_TMP) + "/training_test_" + name;
}

TEST(Augmentation, CropAndFlipMoveThePixelsAndPadWithTheFill) {
  // One [1, 4, 5] image with pixel value y * 10 + x.
  std::vector<float> image(20), scratch;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x) image[y * 5 + x] = static_cast<float>(y * 10 + x);
  Augmentation a;
  a.crop_padding = 2;
  a.flip = true;
  a.fill = {-1.0f};
  int shifted = 0, flipped = 0;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    std::vector<float> out = image;
    augment_image(out.data(), 1, 4, 5, a, seed, scratch);
    std::vector<float> again = image;
    augment_image(again.data(), 1, 4, 5, a, seed, scratch);
    EXPECT_EQ(out, again) << "seed " << seed;
    // Find the one (dy, dx, flip) that explains every output pixel.
    int matches = 0;
    for (int dy = -2; dy <= 2; ++dy)
      for (int dx = -2; dx <= 2; ++dx)
        for (int f = 0; f < 2; ++f) {
          bool all = true;
          for (int y = 0; y < 4 && all; ++y)
            for (int x = 0; x < 5 && all; ++x) {
              const int sy = y + dy, sx = (f ? 4 - x : x) + dx;
              const float want = sy >= 0 && sy < 4 && sx >= 0 && sx < 5 ? image[sy * 5 + sx] : -1.0f;
              all = out[y * 5 + x] == want;
            }
          if (all) {
            ++matches;
            shifted += dy != 0 || dx != 0;
            flipped += f;
          }
        }
    EXPECT_EQ(matches, 1) << "seed " << seed;
  }
  // Over 64 seeds, both happen often (expected: 60 shifted, 32 flipped).
  EXPECT_GT(shifted, 40);
  EXPECT_GT(flipped, 16);
  EXPECT_LT(flipped, 48);
}

TEST(Augmentation, CutoutZeroesOneSquareClippedAtTheEdges) {
  Augmentation a;
  a.cutout = 3;
  std::vector<float> scratch;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::vector<float> image(2 * 6 * 6, 5.0f);
    augment_image(image.data(), 2, 6, 6, a, seed, scratch);
    int zeros = 0;
    for (int i = 0; i < 36; ++i) {
      EXPECT_EQ(image[i], image[36 + i]);  // the same square in every channel
      zeros += image[i] == 0.0f;
    }
    EXPECT_GE(zeros, 4);  // a corner centre keeps 2x2 of the 3x3 square
    EXPECT_LE(zeros, 9);
  }
}

TEST(Augmentation, MirrorImagesReversesEachRow) {
  Tensor images({1, 1, 2, 3});
  for (int i = 0; i < 6; ++i) images[i] = static_cast<float>(i);
  const Tensor m = mirror_images(images, 1, 2, 3);
  EXPECT_EQ(std::vector<float>(m.values().begin(), m.values().end()), (std::vector<float>{2, 1, 0, 5, 4, 3}));
}

TEST(Training, TheWholeRecipeIsBitIdenticalOnOneAndTwoThreadsAndLearns) {
  const Blobs data = make_images(400, 21), test = make_images(200, 22);
  TrainOptions options = cifar_like_options();
  options.epochs = 8;
  options.learning_rate = 0.2f;
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    Model model = small_cnn();
    train(model, data.images, data.labels, options);
    results.push_back(parameters_and_buffers(model));
    if (threads == 2) {
      EXPECT_GT(evaluate(model, test.images, test.labels).accuracy, 0.6);
      const Evaluation flipped = evaluate(model, test.images, test.labels, EvalOptions{true});
      EXPECT_GT(flipped.accuracy, 0.6);
      EXPECT_EQ(flipped.count, 200);
    }
  }
  EXPECT_EQ(results[0], results[1]);
  // Augmentation changes the result (it is applied at all).
  TrainOptions plain = options;
  plain.augmentation = {};
  Model other = small_cnn();
  train(other, data.images, data.labels, plain);
  EXPECT_NE(parameters_and_buffers(other), results[0]);
}

TEST(Training, ValidationIsHeldOutAndTheBestEpochIsKept) {
  const auto held = validation_indices(100, 10, 5);
  ASSERT_EQ(held.size(), 10u);
  EXPECT_TRUE(std::is_sorted(held.begin(), held.end()));
  EXPECT_EQ(std::adjacent_find(held.begin(), held.end()), held.end());
  EXPECT_EQ(held, validation_indices(100, 10, 5));
  EXPECT_NE(held, validation_indices(100, 10, 6));
  EXPECT_THROW(validation_indices(100, 100, 5), Error);

  const Blobs data = make_images(300, 23);
  TrainOptions options = cifar_like_options();
  options.epochs = 4;
  options.learning_rate = 0.5f;  // noisy epochs, so that the best is not always the last
  options.validation = 60;
  Model model = small_cnn();
  const auto history = train(model, data.images, data.labels, options);
  ASSERT_EQ(history.size(), 4u);
  int selected = 0;
  double best = -1;
  for (const EpochStats& s : history) {
    EXPECT_GE(s.validation_accuracy, 0);
    best = std::max(best, s.validation_accuracy);
  }
  for (const EpochStats& s : history)
    if (s.selected) {
      ++selected;
      EXPECT_EQ(s.validation_accuracy, best);
    }
  EXPECT_EQ(selected, 1);
  // The returned model is that epoch's: it scores `best` on the held-out images.
  const auto all = validation_indices(300, 60, options.seed);
  Tensor images({60, 4, 6, 6});
  std::vector<uint8_t> labels;
  for (int64_t i = 0; i < 60; ++i) {
    std::copy_n(data.images.data() + all[i] * 144, 144, images.data() + i * 144);
    labels.push_back(data.labels[all[i]]);
  }
  EXPECT_EQ(evaluate(model, images, labels).accuracy, best);

  // Held out means not trained on: changing a validation image's label changes nothing but the
  // validation scores.
  Blobs relabelled = data;
  for (int64_t i : all) relabelled.labels[i] = static_cast<uint8_t>((relabelled.labels[i] + 1) % 4);
  options.epochs = 1;
  Model a = small_cnn(), b = small_cnn();
  train(a, data.images, data.labels, options);
  train(b, relabelled.images, relabelled.labels, options);
  EXPECT_EQ(parameters_and_buffers(a), parameters_and_buffers(b));
}

struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("interrupted") {}
};

TEST(Training, ResumingFromACheckpointEndsBitIdentical) {
  const Blobs data = make_images(300, 24);
  TrainOptions options = cifar_like_options();
  options.validation = 50;
  Model uninterrupted = small_cnn();
  const auto full_history = train(uninterrupted, data.images, data.labels, options);

  // Interrupted in the middle of epoch 2 (7 steps per epoch), then resumed, twice over.
  const std::string path = temp_path("resume.ckpt");
  std::filesystem::remove(path);
  options.checkpoint = path;
  Model model = small_cnn();
  TrainOptions first = options;
  first.after_step = [](int64_t step) {
    if (step == 10) throw Interrupted();
  };
  EXPECT_THROW(train(model, data.images, data.labels, first), Interrupted);
  ASSERT_TRUE(std::filesystem::exists(path));
  TrainOptions second = options;
  second.resume = true;
  int steps = 0;
  second.after_step = [&steps](int64_t step) {
    ++steps;
    if (step == 17) throw Interrupted();
  };
  Model other = small_cnn();  // a fresh model: everything comes from the checkpoint
  EXPECT_THROW(train(other, data.images, data.labels, second), Interrupted);
  EXPECT_EQ(steps, 17 - 7);  // it restarted at epoch 2's first step
  second.after_step = nullptr;
  Model resumed = small_cnn();
  const auto history = train(resumed, data.images, data.labels, second);
  EXPECT_EQ(parameters_and_buffers(resumed), parameters_and_buffers(uninterrupted));
  ASSERT_EQ(history.size(), full_history.size());
  for (size_t i = 0; i < history.size(); ++i) {
    EXPECT_EQ(history[i].loss, full_history[i].loss);
    EXPECT_EQ(history[i].validation_accuracy, full_history[i].validation_accuracy);
    EXPECT_EQ(history[i].selected, full_history[i].selected);
  }

  // Another recipe, or a damaged file, is refused with the file's name.
  TrainOptions changed = second;
  changed.learning_rate = 0.01f;
  Model m = small_cnn();
  try {
    train(m, data.images, data.labels, changed);
    ADD_FAILURE() << "resumed another recipe";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": checkpoint of another run (learning_rate"),
              std::string::npos) << e.what();
  }
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 9);
  EXPECT_THROW(train(m, data.images, data.labels, second), Error);
  std::filesystem::remove(path);
  EXPECT_THROW(train(m, data.images, data.labels, second), Error);
}

TEST(Training, RejectsBadOptions) {
  const Blobs data = make_images(50, 25);
  auto fails = [&](std::function<void(TrainOptions&)> edit, const std::string& words) {
    TrainOptions o = cifar_like_options();
    edit(o);
    Model m = small_cnn();
    try {
      train(m, data.images, data.labels, o);
      ADD_FAILURE() << "accepted: " << words;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  fails([](TrainOptions& o) { o.validation = 50; }, "--validation 50");
  fails([](TrainOptions& o) { o.augmentation.crop_padding = 6; }, "--crop-padding 6");
  fails([](TrainOptions& o) { o.optimizer = OptimizerKind::adam; }, "--nesterov");
  fails([](TrainOptions& o) { o.label_smoothing = 1.0f; }, "--label-smoothing");
  fails([](TrainOptions& o) { o.resume = true; }, "--resume needs --checkpoint");
  // Augmentation on a model without image inputs.
  const Blobs flat = make_blobs(20, 26);
  Model fc = small_model();
  TrainOptions o = cifar_like_options();
  EXPECT_THROW(train(fc, flat.images, flat.labels, o), Error);
}

}  // namespace
}  // namespace lowbit
