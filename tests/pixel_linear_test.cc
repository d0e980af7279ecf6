// Every pixel kernel (first layer from raw pixels) against map-then-qlinear_u8_ref, bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/pixel_linear.h"
#include "kernels/qlinear.h"
#include "kernels/requantize.h"
#include "lowbit/error.h"

namespace lowbit::kernels {
namespace {

uint64_t test_seed() {
  const char* env = std::getenv("LOWBIT_TEST_SEED");
  return env && *env ? std::strtoull(env, nullptr, 10) : 20261127u;
}

std::string seed_trace() { return "LOWBIT_TEST_SEED=" + std::to_string(test_seed()) + " reproduces this"; }

struct Problem {
  int64_t batch = 1, channels = 1, per_channel = 1, N = 1;
  int wbits = 8, abits = 8;
  double zero_fraction = 0.8;  // share of pixels that are 0 (background)
  bool background_code_zero = false;
  bool increasing_table = false;
  bool extreme = false;  // every pixel 255 and every weight code 0: each int16 sum at its bound  // code = round(p * (2^a - 1) / 255), as min/max quantization gives
  bool out_i32 = false;
  int32_t acc_shift = 0;
  int64_t pad = 0;  // extra stride on x and y
  int64_t K() const { return channels * per_channel; }
};

std::string describe(const Problem& p) {
  return "batch=" + std::to_string(p.batch) + " channels=" + std::to_string(p.channels) +
         " per_channel=" + std::to_string(p.per_channel) + " N=" + std::to_string(p.N) +
         " wbits=" + std::to_string(p.wbits) + " abits=" + std::to_string(p.abits) +
         " zero_fraction=" + std::to_string(p.zero_fraction) + (p.out_i32 ? " i32" : " u8") +
         " acc_shift=" + std::to_string(p.acc_shift) + " pad=" + std::to_string(p.pad) +
         (p.increasing_table ? " increasing-table" : "") + (p.background_code_zero ? " bg=0" : "");
}

// The specification, spelled out here rather than taken from pixel_linear_ref: map, then the
// reference qlinear kernel.
template <typename T>
void expected_output(const Problem& p, const PixelTable& table, const std::vector<uint8_t>& pixels,
                     const PackedWeights& packed, QLinearArgs args, std::vector<T>& y) {
  const int64_t K = p.K();
  std::vector<uint8_t> codes(p.batch * K);
  for (int64_t m = 0; m < p.batch; ++m)
    for (int64_t k = 0; k < K; ++k)
      codes[m * K + k] = table.codes[(k / p.per_channel) * 256 + pixels[m * args.x_stride + k]];
  const QLinearKernel& ref = *all_qlinear_kernels().front();
  const auto prepared = ref.prepare(packed, p.abits);
  args.x = codes.data();
  args.x_stride = K;
  if constexpr (sizeof(T) == 4) args.y_i32 = y.data(); else args.y_u8 = y.data();
  ref.run(*prepared, args);
}

void expect_matches_reference(const PixelLinearKernel& kernel, const Problem& p, std::mt19937_64& rng) {
  SCOPED_TRACE(describe(p));
  auto uniform = [&rng](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  const int64_t K = p.K(), x_stride = K + p.pad, y_stride = p.N + p.pad;
  const int wmax = (1 << p.wbits) - 1, amax = (1 << p.abits) - 1;
  PixelTable table;
  table.per_channel = p.per_channel;
  for (int64_t c = 0; c < p.channels; ++c)
    for (int v = 0; v < 256; ++v) table.codes.push_back(static_cast<uint8_t>(uniform(0, amax)));
  if (p.background_code_zero)
    for (int64_t c = 0; c < p.channels; ++c) table.codes[c * 256] = 0;
  if (p.increasing_table)
    for (int64_t c = 0; c < p.channels; ++c)
      for (int v = 0; v < 256; ++v) table.codes[c * 256 + v] = static_cast<uint8_t>(std::lround(v * amax / 255.0));
  std::vector<uint8_t> pixels(p.batch * x_stride), w(p.N * K);
  std::bernoulli_distribution background(p.zero_fraction);
  for (auto& v : pixels) v = background(rng) ? 0 : static_cast<uint8_t>(uniform(1, 255));
  for (auto& v : w) v = static_cast<uint8_t>(uniform(0, wmax));
  if (p.extreme) {
    std::fill(pixels.begin(), pixels.end(), uint8_t{255});
    std::fill(w.begin(), w.end(), uint8_t{0});
  }
  std::vector<int32_t> bias(p.N), w_zp(p.N), mult(p.N), shift(p.N);
  const double spread = std::max(1.0, std::sqrt(static_cast<double>(K)) * (amax + 1) * (wmax + 1) / 4.0) *
                        std::exp2(p.acc_shift);
  for (int64_t n = 0; n < p.N; ++n) {
    w_zp[n] = static_cast<int32_t>(uniform(0, wmax));
    // Biases on the scale of the sums, so that u8 outputs land inside [out_min, out_max].
    const int64_t bias_range = std::min<int64_t>(1 << 20, static_cast<int64_t>(spread));
    bias[n] = static_cast<int32_t>(uniform(-bias_range, bias_range));
    quantize_multiplier(100.0 / spread * std::exp2(uniform(-100, 100) / 100.0), &mult[n], &shift[n]);
  }
  QLinearArgs args;
  args.batch = p.batch;
  args.x = pixels.data();
  args.x_stride = x_stride;
  args.x_zero_point = static_cast<int32_t>(uniform(0, amax));
  args.bias = bias.data();
  args.w_zero_point = w_zp.data();
  args.multiplier = mult.data();
  args.shift = shift.data();
  args.acc_shift = p.acc_shift;
  args.out_zero_point = static_cast<int32_t>(p.out_i32 ? uniform(-1000, 1000) : uniform(0, 255));
  args.out_min = static_cast<int32_t>(uniform(0, 20));
  args.out_max = static_cast<int32_t>(uniform(235, 255));
  args.y_stride = y_stride;
  const PackedWeights packed = pack_weights(w.data(), p.N, K, p.wbits);
  const auto prepared = kernel.prepare(packed, p.abits, table);
  if (p.out_i32) {
    std::vector<int32_t> expected(p.batch * y_stride, 0x5A5A5A5A), actual(expected);
    expected_output(p, table, pixels, packed, args, expected);
    args.y_i32 = actual.data();
    kernel.run(*prepared, args);
    for (size_t i = 0; i < expected.size(); ++i)
      ASSERT_EQ(actual[i], expected[i]) << "at m=" << i / y_stride << " n=" << i % y_stride;
  } else {
    std::vector<uint8_t> expected(p.batch * y_stride, 0xA5), actual(expected);
    expected_output(p, table, pixels, packed, args, expected);
    args.y_u8 = actual.data();
    kernel.run(*prepared, args);
    for (size_t i = 0; i < expected.size(); ++i)
      ASSERT_EQ(int{actual[i]}, int{expected[i]}) << "at m=" << i / y_stride << " n=" << i % y_stride;
  }
}

class PixelLinearKernelTest : public ::testing::TestWithParam<const PixelLinearKernel*> {
 protected:
  void SetUp() override {
    if (!GetParam()->available()) GTEST_SKIP() << GetParam()->name() << " needs an ISA this CPU lacks";
  }
  const PixelLinearKernel& kernel() const { return *GetParam(); }
  std::mt19937_64 rng_{test_seed()};
};

TEST_P(PixelLinearKernelTest, EveryBitWidthPairOnMnistShape) {
  SCOPED_TRACE(seed_trace());
  for (int wbits = 1; wbits <= 8; ++wbits)
    for (int abits = 1; abits <= 8; ++abits) {
      Problem p;
      p.batch = 3, p.per_channel = 784, p.N = 64, p.wbits = wbits, p.abits = abits;
      p.out_i32 = (wbits + abits) % 2 == 0;
      p.acc_shift = (wbits * abits) % 17;
      p.background_code_zero = wbits % 2 == 0;
      p.increasing_table = wbits % 3 == 0;  // all deltas >= 0: the vpmaddubsw path below 8 bits
      ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
    }
}

TEST_P(PixelLinearKernelTest, AwkwardShapesChannelsAndDensities) {
  SCOPED_TRACE(seed_trace());
  const int64_t sizes[] = {1, 2, 3, 7, 16, 17, 31, 32, 33, 63, 64, 65, 100, 130, 1000};
  int i = 0;
  for (int64_t K : sizes)
    for (int64_t N : sizes) {
      if (K * N > 100000) continue;
      Problem p;
      p.channels = (K % 3 == 0 && i % 2 == 0) ? 3 : 1;  // 3 channels of K / 3 (odd for K = 3, 33, ...)
      p.per_channel = K / p.channels;
      p.N = N;
      p.batch = 1 + i % 6;
      p.wbits = 1 + (i * 5) % 8;
      p.abits = 1 + (i * 3 + i / 8) % 8;
      p.zero_fraction = (i % 4) / 3.0;  // 0 (dense), 1/3, 2/3, 1 (all background)
      p.out_i32 = i % 3 == 0;
      p.acc_shift = (i % 4) * 5;
      p.pad = i % 5;
      p.increasing_table = i % 2 == 1;
      p.background_code_zero = i % 4 == 2;
      ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
      ++i;
    }
}

TEST_P(PixelLinearKernelTest, SaturatedPixelsAndLargeInputs) {
  SCOPED_TRACE(seed_trace());
  for (int64_t K : {4096, 3 * 1024}) {
    Problem p;
    p.channels = K == 4096 ? 1 : 3;
    p.per_channel = K / p.channels;
    p.N = 40, p.batch = 2, p.zero_fraction = 0.0;
    p.out_i32 = true;
    ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
  }
}

TEST_P(PixelLinearKernelTest, Int16SumsAtTheirBound) {
  // Full-ink rows and weights at -2^(b-1): on the vpmaddubsw path every int16 chunk sum reaches
  // its proven bound (docs/kernels.md); int32 outputs show any wrap.
  SCOPED_TRACE(seed_trace());
  for (int wbits = 1; wbits <= 8; ++wbits)
    for (int abits = 1; abits <= 8; ++abits) {
      Problem p;
      p.batch = 2, p.per_channel = 784, p.N = 20, p.wbits = wbits, p.abits = abits;
      p.increasing_table = true, p.extreme = true, p.out_i32 = true;
      ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
    }
}

TEST_P(PixelLinearKernelTest, IdentityTablesAndLongRows) {
  // 8-bit codes of pixels over their full range: code = pixel, the sparse kernel's direct-delta
  // listing. Row lengths around its 16-pixel step, up to the longest row qlinear accepts.
  SCOPED_TRACE(seed_trace());
  int i = 0;
  for (int64_t K : {1, 2, 15, 16, 17, 31, 33, 784, 785, 32767}) {
    Problem p;
    p.per_channel = K;
    p.N = K > 1000 ? 3 : 17 + i;
    p.batch = K > 1000 ? 2 : 1 + i % 5;
    p.wbits = 1 + i % 8;
    p.abits = K > 1000 && i % 2 ? 4 : 8;
    p.increasing_table = true;  // at 8 bits code = round(p * 255 / 255) = p
    p.zero_fraction = (i % 4) / 3.0;
    p.out_i32 = true;
    ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
    ++i;
  }
}

TEST_P(PixelLinearKernelTest, LargeBatchUsesThreads) {
  SCOPED_TRACE(seed_trace());
  Problem p;
  p.batch = 300, p.per_channel = 784, p.N = 64, p.wbits = 4, p.abits = 4;
  p.out_i32 = true;  // u8 outputs of random layers mostly clamp; int32 shows every difference
  ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
}

TEST_P(PixelLinearKernelTest, RejectsTablesThatDoNotFit) {
  const uint8_t w[4] = {1, 2, 3, 4};
  const PackedWeights packed = pack_weights(w, 1, 4, 4);
  PixelTable table;
  table.per_channel = 3;  // 1 channel x 3 != K = 4
  table.codes.assign(256, 0);
  EXPECT_THROW(kernel().prepare(packed, 4, table), Error);
  table.per_channel = 4;
  table.codes.assign(255, 0);  // not 256 per channel
  EXPECT_THROW(kernel().prepare(packed, 4, table), Error);
  table.codes.assign(256, 16);  // code 16 does not fit 4 bits
  EXPECT_THROW(kernel().prepare(packed, 4, table), Error);
  table.codes.assign(256, 15);
  EXPECT_NO_THROW(kernel().prepare(packed, 4, table));
}

INSTANTIATE_TEST_SUITE_P(AllKernels, PixelLinearKernelTest, ::testing::ValuesIn(all_pixel_linear_kernels()),
                         [](const ::testing::TestParamInfo<const PixelLinearKernel*>& info) {
                           return std::string(info.param->name());
                         });

TEST(PixelLinearDispatch, ChosenKernelRunsHere) {
  const PixelLinearKernel& chosen = best_pixel_linear_kernel();
  EXPECT_TRUE(chosen.available()) << chosen.name();
}

}  // namespace
}  // namespace lowbit::kernels
