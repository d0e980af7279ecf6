// Bit-serial against 8-bit qlinear kernels on resnet20's convolution GEMMs, side by side in one run.
//
// usage: OMP_NUM_THREADS=2 bench_qlinear_bitserial [--images N] [--rounds R] [--portable]
// Stage s of resnet20 at batch N (first and last layer excluded) is the GEMM M = N * 32^2 / 4^(s-1)
// rows, K = 9 * 16 * 2^(s-1), N = 16 * 2^(s-1); the three hold equal multiply-adds. Every kernel and
// width pair runs once per round, in turn, so load on a shared machine falls on all of them alike;
// each checks its first 256 rows against qlinear_u8_ref before timing. Printed: the median of the
// rounds, GOP/s (2 ops a multiply-add) and the speed ratio against W8A8 on qlinear_u8_avx512vnni.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/qlinear.h"
#include "kernels/requantize.h"

namespace lowbit::kernels {
namespace {

const QLinearKernel* kernel_named(const std::string& name) {
  for (const QLinearKernel* k : all_qlinear_kernels())
    if (name == k->name()) return k->available() ? k : nullptr;
  return nullptr;
}

struct Config {
  const QLinearKernel* kernel;
  int bits, act_bits;
  std::string label() const {
    return "W" + std::to_string(bits) + "A" + std::to_string(act_bits) + " " + kernel->name();
  }
};

struct Stage {
  int64_t M, K, N;
};

// One layer of a config at a stage: random codes, zero points mid-range, outputs back on act_bits.
struct Run {
  PackedWeights packed;
  std::unique_ptr<PreparedWeights> prepared;
  std::vector<int32_t> bias, w_zero_point, multiplier, shift;
  std::vector<uint8_t> y;
  QLinearArgs args;
  std::vector<double> seconds;
};

// x: [s.M, s.K] codes below 2^c.act_bits, shared by the configs of one activation width.
std::unique_ptr<Run> make_run(const Config& c, const Stage& s, const std::vector<uint8_t>& x, uint32_t seed) {
  auto r = std::make_unique<Run>();
  std::mt19937 rng(seed);
  const int wmax = (1 << c.bits) - 1, amax = (1 << c.act_bits) - 1;
  std::vector<uint8_t> codes(static_cast<size_t>(s.N * s.K));
  for (auto& v : codes) v = static_cast<uint8_t>(rng() % (wmax + 1));
  r->packed = pack_weights(codes.data(), s.N, s.K, c.bits);
  r->prepared = c.kernel->prepare(r->packed, c.act_bits);
  r->y.assign(static_cast<size_t>(s.M * s.N), 0);
  r->bias.resize(s.N), r->w_zero_point.resize(s.N), r->multiplier.resize(s.N), r->shift.resize(s.N);
  const double spread = std::sqrt(static_cast<double>(s.K)) * (amax + 1) * (wmax + 1) / 4.0;
  for (int64_t n = 0; n < s.N; ++n) {
    r->bias[n] = static_cast<int32_t>(rng() % 2001) - 1000;
    r->w_zero_point[n] = (wmax + 1) / 2;
    quantize_multiplier(amax / 2.0 / spread, &r->multiplier[n], &r->shift[n]);
  }
  QLinearArgs& a = r->args;
  a.batch = s.M, a.x = x.data(), a.x_stride = s.K, a.x_zero_point = (amax + 1) / 2;
  a.bias = r->bias.data(), a.w_zero_point = r->w_zero_point.data();
  a.multiplier = r->multiplier.data(), a.shift = r->shift.data();
  a.out_zero_point = (amax + 1) / 2, a.out_min = 0, a.out_max = amax;
  a.y_u8 = r->y.data(), a.y_stride = s.N;
  return r;
}

// The first rows against the reference; false on any difference.
bool matches_reference(const Run& r, const Stage& s, int act_bits) {
  const QLinearKernel& ref = *all_qlinear_kernels().front();
  const auto prepared = ref.prepare(r.packed, act_bits);
  QLinearArgs a = r.args;
  a.batch = std::min<int64_t>(256, s.M);
  std::vector<uint8_t> y(static_cast<size_t>(a.batch * s.N));
  a.y_u8 = y.data();
  ref.run(*prepared, a);
  return std::memcmp(y.data(), r.y.data(), y.size()) == 0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main_impl(int argc, char** argv) {
  int64_t images = 256;
  int rounds = 5;
  bool portable = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--images" && i + 1 < argc) images = std::atoll(argv[++i]);
    else if (arg == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (arg == "--portable") portable = true;
    else {
      std::fprintf(stderr, "bench_qlinear_bitserial: unknown argument %s (--images N, --rounds R, --portable)\n", argv[i]);
      return 2;
    }
  }
  if (images < 1 || rounds < 1) {
    std::fprintf(stderr, "bench_qlinear_bitserial: --images and --rounds must be >= 1\n");
    return 2;
  }
  const QLinearKernel* vnni = kernel_named("qlinear_u8_avx512vnni");
  const QLinearKernel* avx2 = kernel_named("qlinear_u8_avx2");
  std::vector<const QLinearKernel*> bitserial = {kernel_named("qlinear_u8_bitserial_avx512vpopcnt"),
                                                 kernel_named("qlinear_u8_bitserial_avx2")};
  if (portable) bitserial.push_back(kernel_named("qlinear_u8_bitserial_popcnt"));
  std::vector<Config> configs;
  for (const QLinearKernel* k : {vnni, avx2})
    if (k) configs.push_back({k, 8, 8});
  const int pairs[][2] = {{4, 4}, {3, 3}, {2, 2}, {1, 1}, {1, 2}, {2, 1}};
  for (const auto& p : pairs) {
    for (const QLinearKernel* k : {vnni, avx2})
      if (k) configs.push_back({k, p[0], p[1]});
    for (const QLinearKernel* k : bitserial)
      if (k) configs.push_back({k, p[0], p[1]});
  }
  if (configs.empty() || !vnni) {
    std::fprintf(stderr, "bench_qlinear_bitserial: needs qlinear_u8_avx512vnni on this CPU for its ratios\n");
    return 1;
  }
  const Stage stages[] = {{images * 32 * 32, 16 * 9, 16}, {images * 16 * 16, 32 * 9, 32}, {images * 8 * 8, 64 * 9, 64}};
  const char* threads = std::getenv("OMP_NUM_THREADS");
  std::printf("resnet20 convolution GEMMs at batch %lld, %d rounds (median), OMP_NUM_THREADS=%s\n",
              static_cast<long long>(images), rounds, threads ? threads : "(unset)");
  std::vector<double> total(configs.size(), 0.0);
  for (int si = 0; si < 3; ++si) {
    const Stage& s = stages[si];
    std::vector<std::unique_ptr<Run>> runs;
    std::vector<uint8_t> x[9];  // by act_bits
    std::mt19937 rng(77 + si);
    for (size_t c = 0; c < configs.size(); ++c) {
      std::vector<uint8_t>& codes = x[configs[c].act_bits];
      if (codes.empty()) {
        codes.resize(static_cast<size_t>(s.M * s.K));
        for (auto& v : codes) v = static_cast<uint8_t>(rng() % (1u << configs[c].act_bits));
      }
      runs.push_back(make_run(configs[c], s, codes, 1000 + static_cast<uint32_t>(si * 100 + c)));
      configs[c].kernel->run(*runs.back()->prepared, runs.back()->args);  // warm-up, and the output checked
      if (!matches_reference(*runs.back(), s, configs[c].act_bits)) {
        std::fprintf(stderr, "bench_qlinear_bitserial: %s differs from qlinear_u8_ref at stage %d\n",
                     configs[c].label().c_str(), si + 1);
        return 1;
      }
    }
    for (int round = 0; round < rounds; ++round)
      for (size_t c = 0; c < configs.size(); ++c) {
        const auto start = std::chrono::steady_clock::now();
        configs[c].kernel->run(*runs[c]->prepared, runs[c]->args);
        runs[c]->seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
    const double base = median(runs[0]->seconds);
    std::printf("\nstage %d: M=%lld K=%lld N=%lld\n", si + 1, static_cast<long long>(s.M), static_cast<long long>(s.K),
                static_cast<long long>(s.N));
    std::printf("  %-44s %10s %9s %12s\n", "weights/activations kernel", "ms", "GOP/s", "vs W8A8 vnni");
    for (size_t c = 0; c < configs.size(); ++c) {
      const double t = median(runs[c]->seconds);
      total[c] += t;
      std::printf("  %-44s %10.2f %9.1f %11.2fx\n", configs[c].label().c_str(), 1e3 * t,
                  2.0 * s.M * s.K * s.N / t / 1e9, base / t);
    }
  }
  std::printf("\nall three stages (equal multiply-adds):\n");
  for (size_t c = 0; c < configs.size(); ++c)
    std::printf("  %-44s %10.2f ms %11.2fx\n", configs[c].label().c_str(), 1e3 * total[c], total[0] / total[c]);
  std::printf("\nper-layer dispatch (qlinear_kernel_for) on this CPU:\n");
  for (const auto& p : pairs)
    std::printf("  W%dA%d -> %s\n", p[0], p[1], qlinear_kernel_for(p[0], p[1]).name());
  return 0;
}

}  // namespace
}  // namespace lowbit::kernels

int main(int argc, char** argv) { return lowbit::kernels::main_impl(argc, argv); }
