// One training step's work on one 32-image shard (forward in training mode, backward) for the CNN
// presets on 3x32x32 images, one thread: what each trainer thread does per shard. GFLOP/s counts
// 3x the forward multiply-adds (forward, input gradients, weight gradients), 2 FLOPs each. Then
// lowbit::train itself on 8 batches of 128 random images with 1 and 2 threads (wall time; Adam),
// and the CIFAR-10 epoch (50,000 images) that rate gives; the CPU column is the whole process.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <random>

#include "lowbit/layers.h"
#include "lowbit/model.h"
#include "lowbit/train.h"

namespace lowbit {
namespace {

void bm_shard_step(benchmark::State& state, const char* preset) {
  Model model = Model::from_description(preset_description(preset, {3, 32, 32}, 10));
  model.init(1);
  std::mt19937_64 rng(2);
  Tensor x({32, 3, 32, 32});
  for (float& v : x.values()) v = uniform_float(rng, -2, 2);
  Activations activations;
  std::vector<Tensor> gradients = model.zero_gradients();
  Tensor d_output({32, 10});
  for (int64_t i = 0; i < 32; ++i) d_output[i * 10 + i % 10] = -1.0f / 32;
  for (auto _ : state) {
    model.forward(x, activations, ForwardMode{true, 3});
    model.backward(x, activations, d_output, gradients);
    benchmark::ClobberMemory();
  }
  const double flops = 3.0 * 2.0 * static_cast<double>(model.multiply_adds()) * 32;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["images/s"] = benchmark::Counter(32.0 * state.iterations(), benchmark::Counter::kIsRate);
}

void bm_train_batches(benchmark::State& state, const char* preset) {
  const int threads = static_cast<int>(state.range(0));
  constexpr int64_t kBatch = 128, kImages = 8 * kBatch;
  Model model = Model::from_description(preset_description(preset, {3, 32, 32}, 10));
  model.init(1);
  std::mt19937_64 rng(2);
  Tensor images({kImages, 3, 32, 32});
  for (float& v : images.values()) v = uniform_float(rng, -2, 2);
  std::vector<uint8_t> labels(kImages);
  for (uint8_t& l : labels) l = static_cast<uint8_t>(rng() % 10);
  TrainOptions options;
  options.epochs = 1;
  options.batch_size = kBatch;
  options.progress = false;
  omp_set_num_threads(threads);
  for (auto _ : state) train(model, images, labels, options);
  omp_set_num_threads(1);
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(kImages) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["epoch_s"] = benchmark::Counter(static_cast<double>(kImages) / 50000.0,
                                                 benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

BENCHMARK_CAPTURE(bm_shard_step, resnet20, "resnet20")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bm_shard_step, cifar_small, "cifar_small")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bm_train_batches, resnet20, "resnet20")->Arg(1)->Arg(2)->UseRealTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bm_train_batches, cifar_small, "cifar_small")->Arg(1)->Arg(2)->UseRealTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lowbit

int main(int argc, char** argv) {
  omp_set_num_threads(1);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
