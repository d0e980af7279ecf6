// This CPU's integer multiply-accumulate peak, measured: the instruction pairs the AVX2 kernels are
// built from, on registers only, with enough independent accumulators to hide latency. GOP/s
// counts 2 ops per multiply-add, as every other benchmark here does; 1 thread unless run twice.
//   vpmaddwd + vpaddd     16 int16 products a pair: exact 8-bit x 8-bit (the 8x8 kernels)
//   vpmaddubsw + vpaddw   32 u8 x s8 products a pair: below 8x8 bits (int16 sums)
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cstdint>

namespace {

constexpr int kInner = 1000;  // asm blocks per benchmark iteration
constexpr int kPairs = 10;    // instruction pairs per block, one accumulator each

// One block: ten independent multiply + add pairs (mnemonics given), accumulators in registers.
#define LOWBIT_PEAK_BLOCK(MUL, ADD)                                                              \
  __asm__ volatile(MUL " %[x], %[y], %[p]\n\t" ADD " %[p], %[a0], %[a0]\n\t"                     \
                   MUL " %[x], %[y], %[q]\n\t" ADD " %[q], %[a1], %[a1]\n\t"                     \
                   MUL " %[x], %[y], %[p]\n\t" ADD " %[p], %[a2], %[a2]\n\t"                     \
                   MUL " %[x], %[y], %[q]\n\t" ADD " %[q], %[a3], %[a3]\n\t"                     \
                   MUL " %[x], %[y], %[p]\n\t" ADD " %[p], %[a4], %[a4]\n\t"                     \
                   MUL " %[x], %[y], %[q]\n\t" ADD " %[q], %[a5], %[a5]\n\t"                     \
                   MUL " %[x], %[y], %[p]\n\t" ADD " %[p], %[a6], %[a6]\n\t"                     \
                   MUL " %[x], %[y], %[q]\n\t" ADD " %[q], %[a7], %[a7]\n\t"                     \
                   MUL " %[x], %[y], %[p]\n\t" ADD " %[p], %[a8], %[a8]\n\t"                     \
                   MUL " %[x], %[y], %[q]\n\t" ADD " %[q], %[a9], %[a9]"                         \
                   : [a0] "+x"(a[0]), [a1] "+x"(a[1]), [a2] "+x"(a[2]), [a3] "+x"(a[3]),         \
                     [a4] "+x"(a[4]), [a5] "+x"(a[5]), [a6] "+x"(a[6]), [a7] "+x"(a[7]),         \
                     [a8] "+x"(a[8]), [a9] "+x"(a[9]), [p] "=&x"(p), [q] "=&x"(q)                \
                   : [x] "x"(x), [y] "x"(y))

__attribute__((target("avx2"))) void bm_vpmaddwd(benchmark::State& state) {
  __m256i a[kPairs], p, q;
  for (auto& v : a) v = _mm256_setzero_si256();
  const __m256i x = _mm256_set1_epi16(3), y = _mm256_set1_epi16(5);
  for (auto _ : state)
    for (int i = 0; i < kInner; ++i) LOWBIT_PEAK_BLOCK("vpmaddwd", "vpaddd");
  benchmark::DoNotOptimize(a);
  state.counters["GOP/s"] = benchmark::Counter(2.0 * 16 * kPairs * kInner * state.iterations() / 1e9,
                                               benchmark::Counter::kIsRate);
}

__attribute__((target("avx2"))) void bm_vpmaddubsw(benchmark::State& state) {
  __m256i a[kPairs], p, q;
  for (auto& v : a) v = _mm256_setzero_si256();
  const __m256i x = _mm256_set1_epi8(3), y = _mm256_set1_epi8(5);
  for (auto _ : state)
    for (int i = 0; i < kInner; ++i) LOWBIT_PEAK_BLOCK("vpmaddubsw", "vpaddw");
  benchmark::DoNotOptimize(a);
  state.counters["GOP/s"] = benchmark::Counter(2.0 * 32 * kPairs * kInner * state.iterations() / 1e9,
                                               benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (__builtin_cpu_supports("avx2")) {
    benchmark::RegisterBenchmark("peak/vpmaddwd+vpaddd(8x8 bits)", bm_vpmaddwd)->UseRealTime();
    benchmark::RegisterBenchmark("peak/vpmaddubsw+vpaddw(below 8x8)", bm_vpmaddubsw)->UseRealTime();
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
