// Google Benchmark of every available pixel kernel (first layer from raw pixels, 784 -> 64) on
// MNIST test images and on random pixels. Each case checks its output against pixel_linear_ref
// before timing. MNIST comes from LOWBIT_DATA_DIR or the other places lowbit looks; without it the
// MNIST cases are skipped. Threads: OMP_NUM_THREADS.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/pixel_linear.h"
#include "kernels/requantize.h"
#include "lowbit/dataset.h"
#include "lowbit/error.h"

namespace lowbit::kernels {
namespace {

constexpr int64_t kK = 784, kN = 64;

// MNIST test pixels, loaded once; empty when no MNIST is found.
const std::vector<uint8_t>& mnist_pixels() {
  static const std::vector<uint8_t> pixels = [] {
    try {
      return load_dataset("mnist", DataOptions{}).test.pixels;
    } catch (const Error& e) {
      std::fprintf(stderr, "bench_pixel_linear: no MNIST (%s); MNIST cases skipped\n", e.what());
      return std::vector<uint8_t>{};
    }
  }();
  return pixels;
}

void bm_first_layer(benchmark::State& state, const PixelLinearKernel* kernel, bool mnist, int64_t batch,
                    int bits) {
  std::vector<uint8_t> pixels(static_cast<size_t>(batch * kK));
  std::mt19937 rng(7);
  if (mnist) {
    const std::vector<uint8_t>& source = mnist_pixels();
    if (source.empty()) {
      state.SkipWithError("MNIST not found (set LOWBIT_DATA_DIR)");
      return;
    }
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = source[i % source.size()];
  } else {
    for (auto& p : pixels) p = static_cast<uint8_t>(rng());
  }
  const int amax = (1 << bits) - 1, wmax = amax;
  PixelTable table;  // pixel -> code, as min/max quantization of [0, 255] gives
  table.per_channel = kK;
  for (int p = 0; p < 256; ++p) table.codes.push_back(static_cast<uint8_t>(std::lround(p * amax / 255.0)));
  std::vector<uint8_t> codes(kN * kK);
  for (auto& c : codes) c = static_cast<uint8_t>(rng() % (wmax + 1));
  const PackedWeights packed = pack_weights(codes.data(), kN, kK, bits);
  std::vector<int32_t> bias(kN), w_zero_point(kN, (wmax + 1) / 2), multiplier(kN), shift(kN);
  for (int64_t n = 0; n < kN; ++n) {
    bias[n] = static_cast<int32_t>(rng() % 2001) - 1000;
    quantize_multiplier(64.0 / (28.0 * (amax + 1) * (wmax + 1) / 4.0), &multiplier[n], &shift[n]);
  }
  std::vector<uint8_t> y(batch * kN), y_ref(batch * kN);
  QLinearArgs a;
  a.batch = batch, a.x = pixels.data(), a.x_stride = kK, a.x_zero_point = 0;
  a.bias = bias.data(), a.w_zero_point = w_zero_point.data();
  a.multiplier = multiplier.data(), a.shift = shift.data();
  a.out_zero_point = (amax + 1) / 2, a.out_min = 0, a.out_max = amax;
  a.y_stride = kN;
  const PixelLinearKernel& ref = *all_pixel_linear_kernels().front();
  const auto ref_prepared = ref.prepare(packed, bits, table);
  const auto prepared = kernel->prepare(packed, bits, table);
  QLinearArgs check = a;
  check.batch = batch < 256 ? batch : 256;
  check.y_u8 = y_ref.data();
  ref.run(*ref_prepared, check);
  check.y_u8 = y.data();
  kernel->run(*prepared, check);
  for (int64_t i = 0; i < check.batch * kN; ++i)
    if (y[i] != y_ref[i]) {
      state.SkipWithError("output differs from pixel_linear_ref");
      return;
    }
  a.y_u8 = y.data();
  for (auto _ : state) {
    kernel->run(*prepared, a);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(batch * state.iterations()), benchmark::Counter::kIsRate);
  state.counters["GOP/s"] =
      benchmark::Counter(2.0 * batch * kN * kK * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void register_all() {
  for (const PixelLinearKernel* kernel : all_pixel_linear_kernels()) {
    if (!kernel->available()) continue;
    const bool is_ref = std::string(kernel->name()) == "pixel_linear_ref";
    for (int bits : {8, 4})
      for (bool mnist : {true, false})
        for (int64_t batch : {1, 10000}) {
          if (is_ref && batch > 1) continue;  // the reference is the spec, not a contender
          const std::string name = std::string(kernel->name()) + (mnist ? "/mnist" : "/random") +
                                   "/784x64/batch:" + std::to_string(batch) + "/bits:" + std::to_string(bits);
          benchmark::RegisterBenchmark(name.c_str(), bm_first_layer, kernel, mnist, batch, bits)->UseRealTime();
        }
  }
}

}  // namespace
}  // namespace lowbit::kernels

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  lowbit::kernels::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
