// Our int8 qlinear against oneDNN's u8s8s32 GEMM (dnnl_gemm_u8s8s32) on the same shapes.
// oneDNN returns raw int32 sums; ours also requantizes, so ours does slightly more work per call.
#include <benchmark/benchmark.h>
#include <oneapi/dnnl/dnnl.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/qlinear.h"
#include "kernels/requantize.h"

namespace lowbit::kernels {
namespace {

struct Problem {
  int64_t M, K, N;
  std::vector<uint8_t> x;      // [M, K]
  std::vector<uint8_t> codes;  // [N, K], 8-bit codes; oneDNN sees them as s8 = code - 128
  Problem(int64_t m, int64_t k, int64_t n, int act_bits) : M(m), K(k), N(n), x(m * k), codes(n * k) {
    std::mt19937 rng(5);
    for (auto& v : x) v = static_cast<uint8_t>(rng() % (1u << act_bits));
    for (auto& v : codes) v = static_cast<uint8_t>(rng());
  }
};

// x: [M, K] u8, w: [N, K] s8 -> C: [M, N] s32 = x w^T.
void bm_onednn(benchmark::State& state, int64_t M, int64_t K, int64_t N, int act_bits) {
  const Problem p(M, K, N, act_bits);
  std::vector<int8_t> w(p.codes.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<int8_t>(p.codes[i] - 128);
  std::vector<int32_t> c(M * N);
  const int32_t c_offset = 0;
  auto gemm = [&] {
    return dnnl_gemm_u8s8s32('N', 'T', 'F', M, N, K, 1.0f, p.x.data(), K, 0, w.data(), K, 0, 0.0f,
                             c.data(), N, &c_offset);
  };
  if (gemm() != dnnl_success) {
    state.SkipWithError("dnnl_gemm_u8s8s32 failed");
    return;
  }
  // Exact? (With 8-bit activations oneDNN's AVX2 path may saturate in vpmaddubsw.)
  int64_t wrong = 0;
  for (int64_t n = 0; n < N; ++n) {
    int64_t sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += int64_t{p.x[k]} * w[n * K + k];
    wrong += sum != c[n];
  }
  for (auto _ : state) {
    gemm();
    benchmark::ClobberMemory();
  }
  state.counters["GOP/s"] = benchmark::Counter(2.0 * M * N * K * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["wrong_in_row0"] = static_cast<double>(wrong);
}

// The same product through best_qlinear_kernel() with 8-bit weights, int32 output.
void bm_lowbit(benchmark::State& state, int64_t M, int64_t K, int64_t N, int act_bits) {
  const Problem p(M, K, N, act_bits);
  const QLinearKernel& kernel = best_qlinear_kernel();
  const auto prepared = kernel.prepare(pack_weights(p.codes.data(), N, K, 8), act_bits);
  std::vector<int32_t> bias(N, 0), w_zp(N, 128), mult(N), shift(N), y(M * N);
  for (int64_t n = 0; n < N; ++n) quantize_multiplier(1.0 / 1024, &mult[n], &shift[n]);
  QLinearArgs a;
  a.batch = M, a.x = p.x.data(), a.x_stride = K, a.bias = bias.data(), a.w_zero_point = w_zp.data();
  a.multiplier = mult.data(), a.shift = shift.data(), a.y_i32 = y.data(), a.y_stride = N;
  for (auto _ : state) {
    kernel.run(*prepared, a);
    benchmark::ClobberMemory();
  }
  state.counters["GOP/s"] = benchmark::Counter(2.0 * M * N * K * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void register_all() {
  struct Shape { int64_t K, N; };
  for (Shape s : {Shape{784, 64}, Shape{64, 32}, Shape{32, 10}, Shape{1024, 1024}, Shape{4096, 1024}})
    for (int64_t M : {1, 64, 10000}) {
      if (M == 10000 && s.K * s.N > 100000) continue;
      for (int act_bits : {7, 8}) {
        const std::string shape = std::to_string(s.K) + "x" + std::to_string(s.N) + "/batch:" +
                                  std::to_string(M) + "/act_bits:" + std::to_string(act_bits);
        benchmark::RegisterBenchmark(("onednn_u8s8s32/" + shape).c_str(), bm_onednn, M, s.K, s.N, act_bits)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("lowbit_w8/" + shape).c_str(), bm_lowbit, M, s.K, s.N, act_bits)
            ->UseRealTime();
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
