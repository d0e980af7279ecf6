// One FC_NN training epoch on 60,000 MNIST-sized images (batch 64), and the whole default sweep's
// training, timed with Google Benchmark. Uses real MNIST when LOWBIT_DATA_DIR has it, else
// synthetic images of the same shape (the timing does not depend on pixel values).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <random>

#include "lowbit/dataset.h"
#include "lowbit/layers.h"
#include "lowbit/model.h"
#include "lowbit/train.h"

namespace {

struct TrainingSet {
  lowbit::Tensor images;
  std::vector<uint8_t> labels;
};

const TrainingSet& training_set() {
  static const TrainingSet set = [] {
    TrainingSet s;
    try {
      const lowbit::Dataset data = lowbit::load_dataset("mnist", {});
      if (data.full) {
        s.images = lowbit::normalized_images(data.train, data.mean, data.std, 0, data.train.count);
        s.labels = data.train.labels;
        return s;
      }
    } catch (const std::exception&) {
    }
    std::mt19937_64 rng(0);
    s.images = lowbit::Tensor({60000, 784});
    for (float& v : s.images.values()) v = lowbit::uniform_float(rng, -0.4f, 2.8f);
    s.labels.resize(60000);
    for (auto& l : s.labels) l = static_cast<uint8_t>(rng() % 10);
    return s;
  }();
  return set;
}

void BM_FcNnTrainingEpoch(benchmark::State& state) {
  omp_set_num_threads(static_cast<int>(state.range(0)));
  const TrainingSet& set = training_set();
  lowbit::TrainOptions options;
  options.epochs = 1;
  options.progress = false;
  for (auto _ : state) {
    lowbit::Model model = lowbit::Model::from_description(lowbit::Model::fc_nn_description());
    model.init(0);
    lowbit::train(model, set.images, set.labels, options);
  }
  state.counters["images/s"] = benchmark::Counter(
      static_cast<double>(set.images.dim(0)) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FcNnTrainingEpoch)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
