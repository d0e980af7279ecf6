// Training learns, and is bit-identical across runs and thread counts for the same seed.
#include <gtest/gtest.h>
#include <omp.h>

#include <random>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/model.h"
#include "lowbit/train.h"

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

}  // namespace
}  // namespace lowbit
