// Google Benchmark of every available qlinear kernel on FC_NN's layer shapes, larger ones, and the
// im2col GEMMs of cifar_small's and resnet20's convolutions.
// Each case checks its output against qlinear_u8_ref once before timing. Threads: OMP_NUM_THREADS.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/qlinear.h"
#include "kernels/requantize.h"

namespace lowbit::kernels {
namespace {

// One quantized layer K -> N with random codes and parameters that keep outputs in range.
struct Layer {
  int64_t K = 0, N = 0;
  int bits = 8, act_bits = 8;
  PackedWeights packed;
  std::vector<int32_t> bias, w_zero_point, multiplier, shift;
  int32_t x_zero_point = 0;

  Layer(int64_t in, int64_t out, int wbits, int abits, std::mt19937& rng)
      : K(in), N(out), bits(wbits), act_bits(abits) {
    const int wmax = (1 << bits) - 1, amax = (1 << act_bits) - 1;
    std::vector<uint8_t> codes(N * K);
    for (auto& c : codes) c = static_cast<uint8_t>(rng() % (wmax + 1));
    packed = pack_weights(codes.data(), N, K, bits);
    bias.resize(N), w_zero_point.resize(N), multiplier.resize(N), shift.resize(N);
    x_zero_point = amax / 2;
    const double spread = std::sqrt(static_cast<double>(K)) * (amax + 1) * (wmax + 1) / 4.0;
    for (int64_t n = 0; n < N; ++n) {
      bias[n] = static_cast<int32_t>(rng() % 2001) - 1000;
      w_zero_point[n] = (wmax + 1) / 2;
      quantize_multiplier(64.0 / spread, &multiplier[n], &shift[n]);
    }
  }

  // x: [batch, K] codes < 2^act_bits; y: [batch, N], u8 (codes re-clamped to the next layer's
  // act_bits) or i32.
  QLinearArgs args(int64_t batch, const uint8_t* x, uint8_t* y_u8, int32_t* y_i32) const {
    QLinearArgs a;
    a.batch = batch, a.x = x, a.x_stride = K, a.x_zero_point = x_zero_point;
    a.bias = bias.data(), a.w_zero_point = w_zero_point.data();
    a.multiplier = multiplier.data(), a.shift = shift.data();
    a.out_zero_point = (1 << act_bits) / 2, a.out_min = 0, a.out_max = (1 << act_bits) - 1;
    a.y_u8 = y_u8, a.y_i32 = y_i32, a.y_stride = N;
    return a;
  }
};

std::vector<uint8_t> random_codes(int64_t count, int act_bits, std::mt19937& rng) {
  std::vector<uint8_t> x(count);
  for (auto& v : x) v = static_cast<uint8_t>(rng() % (1u << act_bits));
  return x;
}

const QLinearKernel& reference() { return *all_qlinear_kernels().front(); }

void bm_layer(benchmark::State& state, const QLinearKernel* kernel, int64_t K, int64_t N, int64_t batch,
              int bits) {
  std::mt19937 rng(1234);
  const Layer layer(K, N, bits, bits, rng);
  const auto x = random_codes(batch * K, bits, rng);
  std::vector<uint8_t> y(batch * N), y_ref(batch * N);
  const auto prepared = kernel->prepare(layer.packed, bits);
  // Check a slice of the batch (all of it when small) against the reference before timing.
  const int64_t check_rows = batch < 256 ? batch : 256;
  const auto ref_prepared = reference().prepare(layer.packed, bits);
  reference().run(*ref_prepared, layer.args(check_rows, x.data(), y_ref.data(), nullptr));
  kernel->run(*prepared, layer.args(batch, x.data(), y.data(), nullptr));
  for (int64_t i = 0; i < check_rows * N; ++i)
    if (y[i] != y_ref[i]) {
      state.SkipWithError("output differs from qlinear_u8_ref");
      return;
    }
  const QLinearArgs args = layer.args(batch, x.data(), y.data(), nullptr);
  for (auto _ : state) {
    kernel->run(*prepared, args);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GOP/s"] =
      benchmark::Counter(2.0 * batch * N * K * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

// FC_NN: 784 -> 64 (u8) -> 32 (u8) -> 10 (i32), weights at `bits`, activations at `act_bits`.
void bm_fc_nn(benchmark::State& state, const QLinearKernel* kernel, int64_t batch, int bits, int act_bits) {
  std::mt19937 rng(99);
  const Layer l1(784, 64, bits, act_bits, rng), l2(64, 32, bits, act_bits, rng), l3(32, 10, bits, act_bits, rng);
  const auto x = random_codes(batch * 784, act_bits, rng);
  std::vector<uint8_t> h1(batch * 64), h2(batch * 32);
  std::vector<int32_t> out(batch * 10), out_ref(batch * 10);
  auto forward = [&](const QLinearKernel& k, const PreparedWeights& p1, const PreparedWeights& p2,
                     const PreparedWeights& p3, int64_t rows, int32_t* logits) {
    k.run(p1, l1.args(rows, x.data(), h1.data(), nullptr));
    k.run(p2, l2.args(rows, h1.data(), h2.data(), nullptr));
    k.run(p3, l3.args(rows, h2.data(), nullptr, logits));
  };
  const auto p1 = kernel->prepare(l1.packed, act_bits), p2 = kernel->prepare(l2.packed, act_bits),
             p3 = kernel->prepare(l3.packed, act_bits);
  {
    const auto r1 = reference().prepare(l1.packed, act_bits), r2 = reference().prepare(l2.packed, act_bits),
               r3 = reference().prepare(l3.packed, act_bits);
    const int64_t check_rows = batch < 512 ? batch : 512;
    forward(reference(), *r1, *r2, *r3, check_rows, out_ref.data());
    forward(*kernel, *p1, *p2, *p3, batch, out.data());
    for (int64_t i = 0; i < check_rows * 10; ++i)
      if (out[i] != out_ref[i]) {
        state.SkipWithError("FC_NN output differs from qlinear_u8_ref");
        return;
      }
  }
  for (auto _ : state) {
    forward(*kernel, *p1, *p2, *p3, batch, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const double ops = 2.0 * batch * (784 * 64 + 64 * 32 + 32 * 10);
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(batch * state.iterations()),
                                                  benchmark::Counter::kIsRate);
  state.counters["GOP/s"] = benchmark::Counter(ops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void register_all() {
  struct Shape { int64_t K, N; };
  const Shape fc_nn[] = {{784, 64}, {64, 32}, {32, 10}};
  const Shape large[] = {{1024, 1024}, {4096, 1024}};
  // Convolutions as the CNN engine runs them: one call per chunk of 4 images, M = 4 * H_out * W_out
  // im2col rows, K = C_in * kh * kw in (ky, kx, c) order, N = C_out. cifar_small (presets.cc): 3->32
  // and 32->32 at 32x32 and 16x16 (after a max-pool), 32->64 and 64->64 at 16x16 and 8x8, 64->128
  // and 128->128 at 8x8 and 4x4. resnet20: 3->16 and 16->16 at 32x32, 16->32 (stride 2) and 32->32
  // at 16x16, 32->64 (stride 2) and 64->64 at 8x8, the 1x1 stride-2 shortcut 32->64.
  struct Conv { const char* model; int64_t M, K, N; };
  const Conv convs[] = {{"cifar_small", 4096, 27, 32},  {"cifar_small", 1024, 288, 32},
                        {"cifar_small", 1024, 288, 64}, {"cifar_small", 256, 576, 64},
                        {"cifar_small", 256, 576, 128}, {"cifar_small", 64, 1152, 128},
                        {"resnet20", 4096, 27, 16},     {"resnet20", 4096, 144, 16},
                        {"resnet20", 1024, 144, 32},    {"resnet20", 1024, 288, 32},
                        {"resnet20", 256, 288, 64},     {"resnet20", 256, 576, 64},
                        {"resnet20", 256, 32, 64}};
  for (const QLinearKernel* kernel : all_qlinear_kernels()) {
    if (!kernel->available() || std::string(kernel->name()) == "qlinear_u8_ref") continue;
    for (int bits : {8, 4, 2, 1})
      for (const Conv& c : convs) {
        if (!kernel->supports(bits, bits)) continue;  // bit-serial kernels: 1..4 bits
        benchmark::RegisterBenchmark((std::string(kernel->name()) + "/conv_" + c.model + "/" + std::to_string(c.M) + "x" +
                                      std::to_string(c.K) + "x" + std::to_string(c.N) + "/bits:" + std::to_string(bits)).c_str(),
                                     bm_layer, kernel, c.K, c.N, c.M, bits)->UseRealTime();
      }
  }
  for (const QLinearKernel* kernel : all_qlinear_kernels()) {
    if (!kernel->available()) continue;
    const bool is_ref = std::string(kernel->name()) == "qlinear_u8_ref";
    for (int bits : {1, 2, 4, 8}) {
      if (!kernel->supports(bits, bits)) continue;  // bit-serial kernels: 1..4 bits
      const std::string b = "/bits:" + std::to_string(bits);
      for (int64_t batch : {1, 10000}) {
        if (is_ref && batch > 1) continue;  // the reference is the spec, not a contender
        benchmark::RegisterBenchmark((std::string(kernel->name()) + "/FC_NN/batch:" + std::to_string(batch) + b).c_str(),
                                     bm_fc_nn, kernel, batch, bits, bits)->UseRealTime();
      }
      for (const Shape& s : fc_nn)
        for (int64_t batch : {1, 64, 10000}) {
          if (is_ref && batch > 64) continue;
          benchmark::RegisterBenchmark((std::string(kernel->name()) + "/" + std::to_string(s.K) + "x" +
                                        std::to_string(s.N) + "/batch:" + std::to_string(batch) + b).c_str(),
                                       bm_layer, kernel, s.K, s.N, batch, bits)->UseRealTime();
        }
      for (const Shape& s : large)
        for (int64_t batch : {1, 64}) {
          if (is_ref && batch > 1) continue;
          benchmark::RegisterBenchmark((std::string(kernel->name()) + "/" + std::to_string(s.K) + "x" +
                                        std::to_string(s.N) + "/batch:" + std::to_string(batch) + b).c_str(),
                                       bm_layer, kernel, s.K, s.N, batch, bits)->UseRealTime();
        }
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
