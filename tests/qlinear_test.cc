// Every qlinear kernel against qlinear_u8_ref, bit for bit, plus the packing and requantization specs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/qlinear.h"
#include "kernels/requantize.h"
#include "lowbit/error.h"

namespace lowbit::kernels {
namespace {

constexpr int32_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int32_t kInt32Max = std::numeric_limits<int32_t>::max();

uint64_t test_seed() {
  const char* env = std::getenv("LOWBIT_TEST_SEED");
  return env && *env ? std::strtoull(env, nullptr, 10) : 20240611u;
}

std::string seed_trace() {
  return "LOWBIT_TEST_SEED=" + std::to_string(test_seed()) + " reproduces this";
}

// ---------------------------------------------------------------------------------------------
// Packing

TEST(PackWeights, RoundTripsEveryWidth) {
  SCOPED_TRACE(seed_trace());
  std::mt19937_64 rng(test_seed());
  for (int bits = 1; bits <= 8; ++bits) {
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {5, 17}, {2, 33}, {4, 1000}}) {
      SCOPED_TRACE("bits=" + std::to_string(bits) + " shape=" + std::to_string(rows) + "x" +
                   std::to_string(cols));
      std::vector<uint8_t> codes(rows * cols), back(rows * cols, 0xEE);
      for (auto& c : codes) c = static_cast<uint8_t>(rng() & ((1u << bits) - 1));
      const PackedWeights packed = pack_weights(codes.data(), rows, cols, bits);
      EXPECT_EQ(packed.row_bytes(), (cols * bits + 7) / 8);
      EXPECT_EQ(static_cast<int64_t>(packed.data.size()), rows * packed.row_bytes());
      unpack_weights(packed, back.data());
      EXPECT_EQ(codes, back);
    }
  }
}

TEST(PackWeights, LsbFirstLayout) {
  // 3-bit codes 1..5 -> bit stream 001 010 011 100 101 (LSB first), rows byte-aligned.
  const uint8_t codes[] = {1, 2, 3, 4, 5};
  const PackedWeights p = pack_weights(codes, 1, 5, 3);
  ASSERT_EQ(p.data.size(), 2u);
  EXPECT_EQ(p.data[0], 0b11'010'001);  // codes 0, 1 and the low 2 bits of code 2
  EXPECT_EQ(p.data[1], 0b0'101'100'0);  // high bit of code 2, codes 3, 4
  const uint8_t two_rows[] = {1, 1};
  const PackedWeights q = pack_weights(two_rows, 2, 1, 1);
  EXPECT_EQ(q.data, (std::vector<uint8_t>{1, 1}));
  EXPECT_THROW(pack_weights(codes, 1, 5, 9), Error);
}

// ---------------------------------------------------------------------------------------------
// Requantization, hand-computed from gemmlowp's definitions

TEST(Requantize, SaturatingRoundingDoublingHighMul) {
  EXPECT_EQ(saturating_rounding_doubling_high_mul(kInt32Min, kInt32Min), kInt32Max);
  EXPECT_EQ(saturating_rounding_doubling_high_mul(kInt32Max, kInt32Max), kInt32Max - 1);
  EXPECT_EQ(saturating_rounding_doubling_high_mul(kInt32Min, kInt32Max), -kInt32Max);
  EXPECT_EQ(saturating_rounding_doubling_high_mul(1 << 30, 1 << 30), 1 << 29);  // 0.5 * 0.5
  EXPECT_EQ(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);     // 1.5 -> 2
  EXPECT_EQ(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);   // -1.5 -> -1 (tie toward +inf)
  EXPECT_EQ(saturating_rounding_doubling_high_mul(-5, 1 << 30), -2);   // -2.5 -> -2
  EXPECT_EQ(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0);    // -0.5 -> 0
  EXPECT_EQ(saturating_rounding_doubling_high_mul(1, 1 << 30), 1);     // 0.5 -> 1
  EXPECT_EQ(saturating_rounding_doubling_high_mul(100, 0), 0);
}

TEST(Requantize, SrdhmIsAddHalfThenShift) {
  // The identity the SIMD kernels use: gemmlowp's nudge + truncation == floor((a*b + 2^30) / 2^31).
  SCOPED_TRACE(seed_trace());
  std::mt19937_64 rng(test_seed());
  const int32_t special[] = {0, 1, -1, 2, -2, 3, -3, 1 << 30, -(1 << 30), kInt32Max, kInt32Min + 1, 12345};
  auto check = [](int32_t a, int32_t b) {
    if (a == kInt32Min && b == kInt32Min) return;
    const int64_t ab = int64_t{a} * b;
    const int32_t expected = static_cast<int32_t>((ab + (int64_t{1} << 30)) >> 31);
    ASSERT_EQ(saturating_rounding_doubling_high_mul(a, b), expected) << a << " * " << b;
  };
  for (int32_t a : special)
    for (int32_t b : special) check(a, b);
  for (int i = 0; i < 100000; ++i) check(static_cast<int32_t>(rng()), static_cast<int32_t>(rng()));
}

TEST(Requantize, RoundingDivideByPot) {
  EXPECT_EQ(rounding_divide_by_pot(-5, 1), -3);  // -2.5: ties away from zero
  EXPECT_EQ(rounding_divide_by_pot(5, 1), 3);
  EXPECT_EQ(rounding_divide_by_pot(-4, 1), -2);
  EXPECT_EQ(rounding_divide_by_pot(-6, 2), -2);  // -1.5 -> -2
  EXPECT_EQ(rounding_divide_by_pot(-5, 2), -1);  // -1.25 -> -1
  EXPECT_EQ(rounding_divide_by_pot(7, 0), 7);
  EXPECT_EQ(rounding_divide_by_pot(kInt32Max, 31), 1);
  EXPECT_EQ(rounding_divide_by_pot(kInt32Min, 31), -1);
  EXPECT_EQ(rounding_divide_by_pot(1 << 30, 31), 1);      // 0.5 -> 1
  EXPECT_EQ(rounding_divide_by_pot(-(1 << 30), 31), -1);  // -0.5 -> -1
  EXPECT_EQ(rounding_divide_by_pot((1 << 30) - 1, 31), 0);
}

TEST(Requantize, ShiftsAndSaturation) {
  EXPECT_EQ(requantize(100, 1 << 30, 1), 100);           // 0.5 * 2
  EXPECT_EQ(requantize(100, 1 << 30, 0), 50);
  EXPECT_EQ(requantize(101, 1 << 30, -1), 26);  // srdhm: 50.5 -> 51, then 25.5 -> 26
  EXPECT_EQ(requantize(kInt32Max, kInt32Max, 31), kInt32Max - 1);  // shift saturates, then srdhm
  EXPECT_EQ(requantize(-2, kInt32Max, 31), kInt32Min + 1);     // -2 * 2^31 saturates to INT32_MIN
  EXPECT_EQ(requantize(7, 1 << 30, -31), 0);
  EXPECT_EQ(add_saturate(kInt32Max, 1), kInt32Max);
  EXPECT_EQ(add_saturate(kInt32Min, -1), kInt32Min);
  EXPECT_EQ(clamp_to_u8(300, 0, 0, 255), 255);
  EXPECT_EQ(clamp_to_u8(-300, 10, 0, 255), 0);
  EXPECT_EQ(clamp_to_u8(5, 10, 20, 200), 20);
}

TEST(Requantize, QuantizeMultiplier) {
  int32_t m = 0, e = 0;
  quantize_multiplier(0.5, &m, &e);
  EXPECT_EQ(m, 1 << 30);
  EXPECT_EQ(e, 0);
  quantize_multiplier(1.0, &m, &e);
  EXPECT_EQ(m, 1 << 30);
  EXPECT_EQ(e, 1);
  quantize_multiplier(0.75 / 1024, &m, &e);
  EXPECT_EQ(m, 3 << 29);
  EXPECT_EQ(e, -10);
  quantize_multiplier(1.0 - 1e-12, &m, &e);  // rounds up to 2^31: renormalized
  EXPECT_EQ(m, 1 << 30);
  EXPECT_EQ(e, 1);
  quantize_multiplier(0.0, &m, &e);
  EXPECT_EQ(m, 0);
  quantize_multiplier(1e-20, &m, &e);
  EXPECT_EQ(m, 0);
  EXPECT_EQ(e, 0);
  EXPECT_THROW(quantize_multiplier(-1.0, &m, &e), Error);
  EXPECT_THROW(quantize_multiplier(1e12, &m, &e), Error);
  for (double real : {0.001, 0.0123, 0.3, 1.7, 200.0}) {
    quantize_multiplier(real, &m, &e);
    EXPECT_GE(m, 1 << 30);
    EXPECT_NEAR(m * std::ldexp(1.0, e - 31), real, real * 1e-9);
  }
}

// ---------------------------------------------------------------------------------------------
// Kernels against the reference

struct Problem {
  int64_t batch = 1, K = 1, N = 1;
  int wbits = 8, abits = 8;
  int64_t x_pad = 0, y_pad = 0;  // x_stride = K + x_pad, y_stride = N + y_pad
  bool out_i32 = false;
  enum class ZeroPoints { kRandom, kZero, kMax } zero_points = ZeroPoints::kRandom;
  bool saturated = false;        // every code at its maximum
  enum class Scale { kTypical, kExtreme } scale = Scale::kTypical;
  int32_t acc_shift = 0;
  int code_step = 1;             // weight codes are multiples of this (2 with 2-bit: sign-binary {0, 2})
  // >= 0: a y_u8 grid of this many steps (out_max - out_min, a 1..4-bit activation), the output zero
  // point anywhere in [0, 255] or at its ends, and multipliers spreading acc over about that many codes.
  int out_levels = -1;
};

// The acc_shift values every kernel test covers: none, the smallest, odd, and the largest build() picks.
constexpr int32_t kAccShifts[] = {0, 1, 7, 16};

std::string describe(const Problem& p) {
  return "batch=" + std::to_string(p.batch) + " K=" + std::to_string(p.K) + " N=" + std::to_string(p.N) +
         " wbits=" + std::to_string(p.wbits) + " abits=" + std::to_string(p.abits) +
         " x_pad=" + std::to_string(p.x_pad) + " y_pad=" + std::to_string(p.y_pad) +
         (p.out_i32 ? " i32" : " u8") + " zp=" + std::to_string(static_cast<int>(p.zero_points)) +
         (p.saturated ? " saturated" : "") + (p.scale == Problem::Scale::kExtreme ? " extreme-scale" : "") +
         " acc_shift=" + std::to_string(p.acc_shift) + " code_step=" + std::to_string(p.code_step) +
         " out_levels=" + std::to_string(p.out_levels);
}

// Runs `kernel` and the reference on one random instance of `p`; expects identical outputs
// (including the padding of y, which neither may touch).
// A kernel that does not serve the problem's widths (the bit-serial ones: 1..4 bits) must refuse it.
void expect_matches_reference(const QLinearKernel& kernel, const Problem& p, std::mt19937_64& rng) {
  SCOPED_TRACE(describe(p));
  if (!kernel.supports(p.wbits, p.abits)) {
    const std::vector<uint8_t> zeros(static_cast<size_t>(p.N * p.K), 0);
    EXPECT_THROW(kernel.prepare(pack_weights(zeros.data(), p.N, p.K, p.wbits), p.abits), Error);
    return;
  }
  const int wmax = (1 << p.wbits) - 1, amax = (1 << p.abits) - 1;
  auto uniform = [&rng](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  const int64_t x_stride = p.K + p.x_pad, y_stride = p.N + p.y_pad;
  std::vector<uint8_t> x(p.batch * x_stride), w(p.N * p.K);
  for (auto& v : x) v = static_cast<uint8_t>(p.saturated ? amax : uniform(0, amax));
  for (auto& v : w) v = static_cast<uint8_t>((p.saturated ? wmax : uniform(0, wmax)) / p.code_step * p.code_step);
  std::vector<int32_t> bias(p.N), w_zp(p.N), mult(p.N), shift(p.N);
  int32_t x_zp = 0;
  switch (p.zero_points) {
    case Problem::ZeroPoints::kRandom: x_zp = static_cast<int32_t>(uniform(0, amax)); break;
    case Problem::ZeroPoints::kZero: x_zp = 0; break;
    case Problem::ZeroPoints::kMax: x_zp = amax; break;
  }
  // Roughly the spread of acc, so typical multipliers map it onto a few hundred output codes.
  const double spread = std::max(1.0, std::sqrt(static_cast<double>(p.K)) * (amax + 1) * (wmax + 1) / 4.0) *
                        std::exp2(p.acc_shift) * (p.out_levels >= 0 ? 100.0 / (p.out_levels + 1) : 1.0);
  for (int64_t n = 0; n < p.N; ++n) {
    switch (p.zero_points) {
      case Problem::ZeroPoints::kRandom: w_zp[n] = static_cast<int32_t>(uniform(0, wmax)); break;
      case Problem::ZeroPoints::kZero: w_zp[n] = 0; break;
      case Problem::ZeroPoints::kMax: w_zp[n] = wmax; break;
    }
    bias[n] = static_cast<int32_t>(uniform(-(1 << 20), 1 << 20));
    if (p.scale == Problem::Scale::kTypical) {
      quantize_multiplier(100.0 / spread * std::exp2(uniform(-100, 100) / 100.0), &mult[n], &shift[n]);
    } else {  // multipliers near 2^31 and at 2^30, shifts from -31 to +31
      mult[n] = static_cast<int32_t>(uniform(0, 3) == 0 ? (int64_t{1} << 30) : (int64_t{1} << 31) - uniform(1, 64));
      shift[n] = static_cast<int32_t>(uniform(-31, 31));
    }
  }
  QLinearArgs args;
  args.batch = p.batch;
  args.x = x.data();
  args.x_stride = x_stride;
  args.x_zero_point = x_zp;
  args.bias = bias.data();
  args.w_zero_point = w_zp.data();
  args.multiplier = mult.data();
  args.shift = shift.data();
  args.acc_shift = p.acc_shift;
  args.out_zero_point = static_cast<int32_t>(p.out_i32 ? uniform(-1000, 1000) : uniform(0, 255));
  args.out_min = static_cast<int32_t>(uniform(0, 20));
  args.out_max = static_cast<int32_t>(uniform(235, 255));
  if (p.out_levels >= 0) {
    args.out_min = static_cast<int32_t>(uniform(0, 3) == 0 ? 0 : uniform(0, 255 - p.out_levels));
    args.out_max = args.out_min + p.out_levels;
    const int64_t pick = uniform(0, 3);  // at either end of [0, 255], or near the grid, or anywhere
    args.out_zero_point = static_cast<int32_t>(pick == 0 ? 0 : pick == 1 ? 255 : pick == 2 ? args.out_min + uniform(0, p.out_levels) : uniform(0, 255));
  }
  args.y_stride = y_stride;

  const PackedWeights packed = pack_weights(w.data(), p.N, p.K, p.wbits);
  const QLinearKernel& ref = *all_qlinear_kernels().front();
  const auto ref_w = ref.prepare(packed, p.abits);
  const auto kernel_w = kernel.prepare(packed, p.abits);
  if (p.out_i32) {
    std::vector<int32_t> expected(p.batch * y_stride, 0x5A5A5A5A), actual(expected);
    args.y_i32 = expected.data();
    ref.run(*ref_w, args);
    args.y_i32 = actual.data();
    kernel.run(*kernel_w, args);
    for (size_t i = 0; i < expected.size(); ++i)
      ASSERT_EQ(actual[i], expected[i]) << "at m=" << i / y_stride << " n=" << i % y_stride;
  } else {
    std::vector<uint8_t> expected(p.batch * y_stride, 0xA5), actual(expected);
    args.y_u8 = expected.data();
    ref.run(*ref_w, args);
    args.y_u8 = actual.data();
    kernel.run(*kernel_w, args);
    for (size_t i = 0; i < expected.size(); ++i)
      ASSERT_EQ(int{actual[i]}, int{expected[i]}) << "at m=" << i / y_stride << " n=" << i % y_stride;
  }
}

class QLinearKernelTest : public ::testing::TestWithParam<const QLinearKernel*> {
 protected:
  void SetUp() override {
    if (!GetParam()->available()) GTEST_SKIP() << GetParam()->name() << " needs an ISA this CPU lacks";
  }
  const QLinearKernel& kernel() const { return *GetParam(); }
  std::mt19937_64 rng_{test_seed()};
};

TEST_P(QLinearKernelTest, EveryBitWidthPair) {
  SCOPED_TRACE(seed_trace());
  for (int wbits = 1; wbits <= 8; ++wbits)
    for (int abits = 1; abits <= 8; ++abits)
      for (auto [batch, K, N] : {std::tuple<int64_t, int64_t, int64_t>{1, 33, 17}, {5, 64, 16}, {7, 129, 31},
                                 {2, 1, 1}, {10, 784, 64}, {4, 17, 65}, {3, 1000, 10}, {40, 130, 33}}) {
        for (int32_t acc_shift : kAccShifts) {
          Problem p;
          p.batch = batch, p.K = K, p.N = N, p.wbits = wbits, p.abits = abits, p.acc_shift = acc_shift;
          p.out_i32 = (wbits + abits + batch + acc_shift) % 2 == 0;
          ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
        }
      }
}

TEST_P(QLinearKernelTest, AwkwardShapes) {
  SCOPED_TRACE(seed_trace());
  const int64_t sizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 784, 1000, 4099};
  int i = 0;
  for (int64_t K : sizes)
    for (int64_t N : sizes) {
      if (K * N > 300000) continue;  // keeps the reference affordable
      for (int32_t acc_shift : kAccShifts) {
        Problem p;
        p.K = K, p.N = N;
        p.batch = 1 + (i % 10);
        p.wbits = 1 + (i * 5) % 8;
        p.abits = 1 + (i * 3 + i / 8) % 8;
        p.out_i32 = i % 3 == 0;
        p.acc_shift = acc_shift;
        ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
      }
      ++i;
    }
}

TEST_P(QLinearKernelTest, ExtremeZeroPointsSaturatedInputsAndScales) {
  SCOPED_TRACE(seed_trace());
  for (int bits : {1, 2, 3, 4, 7, 8})
    for (auto zp : {Problem::ZeroPoints::kZero, Problem::ZeroPoints::kMax})
      for (bool saturated : {false, true})
        for (auto scale : {Problem::Scale::kTypical, Problem::Scale::kExtreme})
          for (bool out_i32 : {false, true}) {
            Problem p;
            p.batch = 3, p.K = 1000, p.N = 33, p.wbits = bits, p.abits = bits == 7 ? 8 : bits;
            p.zero_points = zp, p.saturated = saturated, p.scale = scale, p.out_i32 = out_i32;
            // Shifted sums past 2^31 too: acc is then defined modulo 2^32 and kernels still agree.
            p.acc_shift = kAccShifts[(bits + saturated + 2 * out_i32) % 4];
            ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
            p.wbits = 8, p.abits = 8 - bits % 8;  // mixed widths, including 8x8
            ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
            p.batch = 35;  // past one 32-row AMX block (smaller batches take its VNNI path)
            ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
          }
}

// Layers too big for L2 take another path in the AVX2 kernel (4-bit weights unpacked in registers).
// Small output grids take the AVX-512 kernels' threshold output stage (call_constants.h): every
// width pair, every grid of 0..15 steps, typical and extreme multipliers and shifts, extreme zero
// points, the acc_shift values, and N across feature blocks and their tails.
TEST_P(QLinearKernelTest, SmallOutputGrids) {
  SCOPED_TRACE(seed_trace());
  int i = 0;
  for (int wbits = 1; wbits <= 8; ++wbits)
    for (int abits = 1; abits <= 8; ++abits)
      for (int levels : {0, 1, 2, 3, 7, 15})
        for (auto scale : {Problem::Scale::kTypical, Problem::Scale::kExtreme}) {
          Problem p;
          p.batch = 1 + i % 37, p.K = 1 + (i * 7) % 300, p.N = 1 + (i * 5) % 40;
          p.wbits = wbits, p.abits = abits, p.out_levels = levels, p.scale = scale;
          p.acc_shift = kAccShifts[i % 4];
          p.zero_points = static_cast<Problem::ZeroPoints>(i % 3);
          p.saturated = i % 11 == 0;
          ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
          ++i;
        }
  for (int levels : {1, 3, 15}) {  // past one 32-row AMX block, and K = 16 / 32 (AMX's VNNI path)
    for (int64_t K : {16, 27, 32, 288}) {
      Problem p;
      p.batch = 70, p.K = K, p.N = 33, p.wbits = 2, p.abits = 2, p.out_levels = levels;
      ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
    }
  }
}

// The thresholds are remembered per layer (call_constants.h): a call whose multipliers, shifts or
// grid changed, in place or not, must not reuse another call's.
TEST_P(QLinearKernelTest, RepeatedCallsWithChangedRequantization) {
  SCOPED_TRACE(seed_trace());
  std::mt19937_64& rng = rng_;
  const int64_t batch = 40, K = 50, N = 20;
  std::vector<uint8_t> x(batch * K), w(N * K);
  for (auto& v : x) v = static_cast<uint8_t>(rng() % 4);
  for (auto& v : w) v = static_cast<uint8_t>(rng() % 4);
  std::vector<int32_t> bias(N, 0), w_zp(N, 1), mult(N), shift(N);
  for (int64_t n = 0; n < N; ++n) quantize_multiplier(0.02 * (1 + n % 5), &mult[n], &shift[n]);
  if (!kernel().supports(2, 2)) GTEST_SKIP() << kernel().name() << " does not run 2-bit layers";
  const PackedWeights packed = pack_weights(w.data(), N, K, 2);
  const QLinearKernel& ref = *all_qlinear_kernels().front();
  const auto ref_w = ref.prepare(packed, 2);
  const auto kernel_w = kernel().prepare(packed, 2);
  QLinearArgs a;
  a.batch = batch, a.x = x.data(), a.x_stride = K, a.x_zero_point = 1;
  a.bias = bias.data(), a.w_zero_point = w_zp.data(), a.multiplier = mult.data(), a.shift = shift.data();
  a.out_zero_point = 1, a.out_min = 0, a.out_max = 3, a.y_stride = N;
  std::vector<uint8_t> expected(batch * N), actual(batch * N);
  auto check = [&](const char* what) {
    SCOPED_TRACE(what);
    a.y_u8 = expected.data();
    ref.run(*ref_w, a);
    a.y_u8 = actual.data();
    kernel().run(*kernel_w, a);
    for (size_t i = 0; i < expected.size(); ++i) ASSERT_EQ(int{actual[i]}, int{expected[i]}) << "at " << i;
  };
  ASSERT_NO_FATAL_FAILURE(check("first call"));
  ASSERT_NO_FATAL_FAILURE(check("same call again"));
  a.out_zero_point = 2;
  ASSERT_NO_FATAL_FAILURE(check("output zero point changed"));
  mult[3] = mult[3] / 2 + 1;
  ASSERT_NO_FATAL_FAILURE(check("one multiplier changed in place"));
  shift[7] -= 1;
  ASSERT_NO_FATAL_FAILURE(check("one shift changed in place"));
  a.out_min = 1, a.out_max = 2;
  ASSERT_NO_FATAL_FAILURE(check("grid moved"));
  a.out_min = 0, a.out_max = 3, a.out_zero_point = 1;
  ASSERT_NO_FATAL_FAILURE(check("back to a grid seen before"));
}

TEST_P(QLinearKernelTest, LargeSubByteLayers) {
  SCOPED_TRACE(seed_trace());
  for (int bits = 1; bits <= 5; ++bits)
    for (int abits : {1, 4, 8}) {
      Problem p;
      p.batch = 5, p.K = 1000, p.N = 300, p.wbits = bits, p.abits = abits, p.out_i32 = abits == 4;
      p.acc_shift = kAccShifts[(bits + abits) % 4];
      ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
      p.batch = 2, p.K = 4099, p.N = 65, p.zero_points = Problem::ZeroPoints::kMax, p.saturated = bits == 4;
      ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
    }
}

TEST_P(QLinearKernelTest, StridesLargerThanRows) {
  SCOPED_TRACE(seed_trace());
  for (int bits : {1, 4, 8})
    for (bool out_i32 : {false, true}) {
      Problem p;
      p.batch = 9, p.K = 65, p.N = 17, p.wbits = bits, p.abits = 8, p.x_pad = 13, p.y_pad = 5;
      p.out_i32 = out_i32;
      ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
    }
}

TEST_P(QLinearKernelTest, LargeBatchUsesThreads) {
  SCOPED_TRACE(seed_trace());
  for (int bits : {2, 8}) {
    Problem p;
    p.batch = 203, p.K = 100, p.N = 40, p.wbits = bits, p.abits = 8, p.out_i32 = bits == 2;
    ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
    p.acc_shift = 7;
    ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
  }
}

// im2col rows of convolutions (K = C * 3 * 3) and batches around the AMX kernel's 32-row blocks and
// 64-row chunks: blocks read straight from x (bytes past K, or the next row's, meeting zero weights),
// tails copied, odd feature blocks, strides that end the readable rows early.
TEST_P(QLinearKernelTest, ConvolutionShapesAroundRowBlocks) {
  SCOPED_TRACE(seed_trace());
  const int64_t batches[] = {31, 32, 33, 64, 65, 97, 130};
  const int64_t depths[] = {27, 63, 64, 65, 144, 288};
  const int64_t features[] = {16, 17, 32, 48, 64, 10};
  int i = 0;
  for (int64_t batch : batches)
    for (int64_t K : depths) {
      Problem p;
      p.batch = batch, p.K = K, p.N = features[i % 6];
      p.wbits = 1 + (i * 3) % 8, p.abits = 1 + (i * 5 + i / 8) % 8;
      if (i % 4 == 0) p.wbits = p.abits = 8;
      p.x_pad = i % 3 == 1 ? 5 : 0, p.y_pad = i % 2;
      p.out_i32 = i % 3 == 2;
      p.zero_points = static_cast<Problem::ZeroPoints>(i % 3);
      p.acc_shift = kAccShifts[i % 4];
      ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
      ++i;
    }
}

// |acc| < 2^31 at K = kMaxInFeatures with every code at its maximum and zero zero points, and with
// the most negative products: checked against an int64 sum, so a wrapped int32 would show. Batch 1,
// and 33 equal rows (past one 32-row AMX block).
TEST_P(QLinearKernelTest, NoOverflowAtMaxInFeatures) {
  const int64_t K = kMaxInFeatures, N = 2;
  for (int bits = 1; bits <= 8; ++bits)
    for (int64_t batch : {1, 33}) {
    if (!kernel().supports(bits, bits)) continue;  // refusing is tested with the reference comparisons
    SCOPED_TRACE("bits=" + std::to_string(bits) + " batch=" + std::to_string(batch));
    const int32_t max_code = (1 << bits) - 1;
    std::vector<uint8_t> x(batch * K, static_cast<uint8_t>(max_code)), w(N * K);
    for (int64_t k = 0; k < K; ++k) w[k] = static_cast<uint8_t>(max_code), w[K + k] = 0;
    // Row 0: (max - 0) * (max - 0); row 1: (0 - max) * (max - 0).
    const int32_t w_zp[N] = {0, max_code}, bias[N] = {0, 0};
    const int32_t mult[N] = {1 << 30, 1 << 30}, shift[N] = {-7, -7};  // acc / 2^8
    int64_t exact[N];
    exact[0] = K * max_code * max_code;
    exact[1] = -K * max_code * max_code;
    QLinearArgs a;
    a.batch = batch, a.x = x.data(), a.x_stride = K, a.x_zero_point = 0, a.bias = bias;
    a.w_zero_point = w_zp, a.multiplier = mult, a.shift = shift, a.y_stride = N;
    std::vector<int32_t> y(batch * N);
    a.y_i32 = y.data();
    const auto prepared = kernel().prepare(pack_weights(w.data(), N, K, bits), bits);
    kernel().run(*prepared, a);
    for (int64_t m = 0; m < batch; ++m)
      for (int n = 0; n < N; ++n) {
        ASSERT_LT(std::abs(exact[n]), int64_t{1} << 31);
        EXPECT_EQ(y[m * N + n], requantize(static_cast<int32_t>(exact[n]), mult[n], shift[n])) << "row " << m;
        EXPECT_NEAR(y[m * N + n], exact[n] / 256.0, 1.0);
      }
    }
}

// The bound build() relies on: with 2^s * K * (2^b - 1)^2 < 2^31 the shifted sum is exact, for the
// FC_NN input layer (K = 784) at the largest s each width allows (16 at 1..3 bits), both signs.
TEST_P(QLinearKernelTest, NoOverflowAtLargestAccShift) {
  const int64_t K = 784, N = 2;
  for (int bits = 1; bits <= 8; ++bits) {
    if (!kernel().supports(bits, bits)) continue;
    const int32_t max_code = (1 << bits) - 1;
    const int64_t sum_bound = K * max_code * max_code;
    int32_t acc_shift = 0;
    while (acc_shift < 16 && (sum_bound << (acc_shift + 1)) < (int64_t{1} << 31)) ++acc_shift;
    SCOPED_TRACE("bits=" + std::to_string(bits) + " acc_shift=" + std::to_string(acc_shift));
    std::vector<uint8_t> x(K, static_cast<uint8_t>(max_code)), w(N * K);
    for (int64_t k = 0; k < K; ++k) w[k] = static_cast<uint8_t>(max_code), w[K + k] = 0;
    const int32_t w_zp[N] = {0, max_code}, bias[N] = {-3, 5};
    const int32_t mult[N] = {1 << 30, 1 << 30}, shift[N] = {-7, -7};  // acc / 2^8
    const int64_t exact[N] = {bias[0] + (sum_bound << acc_shift), bias[1] - (sum_bound << acc_shift)};
    QLinearArgs a;
    a.batch = 1, a.x = x.data(), a.x_stride = K, a.x_zero_point = 0, a.bias = bias;
    a.w_zero_point = w_zp, a.multiplier = mult, a.shift = shift, a.y_stride = N;
    a.acc_shift = acc_shift;
    int32_t y[N];
    a.y_i32 = y;
    const auto prepared = kernel().prepare(pack_weights(w.data(), N, K, bits), bits);
    kernel().run(*prepared, a);
    for (int n = 0; n < N; ++n) {
      ASSERT_LT(std::abs(exact[n]), int64_t{1} << 31);
      EXPECT_EQ(y[n], requantize(static_cast<int32_t>(exact[n]), mult[n], shift[n]));
      EXPECT_NEAR(y[n], exact[n] / 256.0, 1.0);
    }
  }
}

// The bit-serial kernels' whole range, 1..4 x 1..4 bits, on K around their 32- and 64-bit words,
// resnet20's convolution depths (144, 288, 576), N around the 16-feature block and batches around
// the 4-row tile; every zero-point kind, both outputs, every acc_shift. Run for every kernel.
TEST_P(QLinearKernelTest, EveryLowBitPairAroundWordBoundaries) {
  SCOPED_TRACE(seed_trace());
  const int64_t depths[] = {1, 2, 7, 31, 32, 33, 63, 64, 65, 95, 96, 97, 127, 128, 129, 144, 288, 576, 1000, 4099};
  const int64_t widths[] = {1, 3, 15, 16, 17, 31, 33, 64, 65};
  const int64_t batches[] = {1, 2, 3, 4, 5, 7, 8, 9};
  int i = 0;
  for (int wbits = 1; wbits <= 4; ++wbits)
    for (int abits = 1; abits <= 4; ++abits)
      for (int64_t K : depths)
        for (bool out_i32 : {false, true}) {
          Problem p;
          p.K = K, p.N = widths[i % 9], p.batch = batches[(i / 3) % 8], p.wbits = wbits, p.abits = abits;
          p.zero_points = static_cast<Problem::ZeroPoints>(i % 3);
          p.saturated = i % 11 == 5;
          p.scale = i % 4 == 1 ? Problem::Scale::kExtreme : Problem::Scale::kTypical;
          p.x_pad = i % 5, p.y_pad = i % 2, p.out_i32 = out_i32;
          p.acc_shift = kAccShifts[(i / 2) % 4];
          ++i;
          ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
        }
  for (int wbits = 1; wbits <= 4; ++wbits)  // a threaded batch of resnet20's first convolution
    for (int abits = 1; abits <= 4; ++abits) {
      Problem p;
      p.batch = 203, p.K = 144, p.N = 16, p.wbits = wbits, p.abits = abits, p.out_i32 = (wbits + abits) % 2 == 0;
      p.acc_shift = kAccShifts[(wbits * abits) % 4];
      ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
    }
}

// Weight codes whose low bit planes are all zero (sign-binary weights run as 2-bit codes {0, 2};
// the bit-serial kernels drop such planes and shift the dot product back).
TEST_P(QLinearKernelTest, WeightsWithZeroLowPlanes) {
  SCOPED_TRACE(seed_trace());
  int i = 0;
  for (int wbits = 2; wbits <= 4; ++wbits)
    for (int step = 2; step < (1 << wbits); step *= 2)
      for (int abits = 1; abits <= 4; ++abits)
        for (auto [batch, K, N] : {std::tuple<int64_t, int64_t, int64_t>{5, 144, 16}, {3, 97, 33}, {1, 1, 1}}) {
          Problem p;
          p.batch = batch, p.K = K, p.N = N, p.wbits = wbits, p.abits = abits, p.code_step = step;
          p.zero_points = static_cast<Problem::ZeroPoints>(i % 3);
          p.out_i32 = i % 2 == 0, p.acc_shift = i % 5 == 0 ? 24 : kAccShifts[i % 4], p.saturated = i % 7 == 3;
          ++i;
          ASSERT_NO_FATAL_FAILURE(expect_matches_reference(kernel(), p, rng_));
        }
}

INSTANTIATE_TEST_SUITE_P(AllKernels, QLinearKernelTest, ::testing::ValuesIn(all_qlinear_kernels()),
                         [](const auto& info) { return std::string(info.param->name()); });

// A 2x3 layer by hand: x = [[3, 0], [1, 2]], w = [[1, 2], [3, 0], [0, 1]] (2-bit), x_zp = 1, w_zp = 1,
// bias = [10, -5, 0]: acc = bias + sum_k (w - 1)(x - 1) = [[9, 0, -2], [11, -6, 0]];
// multiplier 0.5 (M0 = 2^30, e = 0).
TEST(QLinearTiny, HandComputed) {
  const uint8_t x[] = {3, 0, 1, 2}, w[] = {1, 2, 3, 0, 0, 1};
  const int32_t bias[] = {10, -5, 0}, w_zp[] = {1, 1, 1}, mult[] = {1 << 30, 1 << 30, 1 << 30},
                shift[] = {0, 0, 0};
  // 0.5 * acc rounded as gemmlowp does (ties toward +inf in SRDHM): 4.5 -> 5, 0, -1, 5.5 -> 6, -3, 0.
  const int32_t expected[] = {5, 0, -1, 6, -3, 0};
  for (const QLinearKernel* kernel : all_qlinear_kernels()) {
    if (!kernel->available()) continue;
    SCOPED_TRACE(kernel->name());
    QLinearArgs a;
    a.batch = 2, a.x = x, a.x_stride = 2, a.x_zero_point = 1, a.bias = bias, a.w_zero_point = w_zp;
    a.multiplier = mult, a.shift = shift, a.y_stride = 3;
    int32_t y[6];
    a.y_i32 = y;
    const auto prepared = kernel->prepare(pack_weights(w, 3, 2, 2), 2);
    kernel->run(*prepared, a);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(y[i], expected[i]) << i;
    uint8_t y8[6];
    a.y_i32 = nullptr, a.y_u8 = y8, a.out_zero_point = 2, a.out_min = 1, a.out_max = 7;
    kernel->run(*prepared, a);
    const int expected_u8[] = {7, 2, 1, 7, 1, 2};
    for (int i = 0; i < 6; ++i) EXPECT_EQ(int{y8[i]}, expected_u8[i]) << i;
  }
}

// The same layer with acc_shift = 2: the sums [[-1, 5, -2], [1, -1, 0]] are scaled by 4 and the bias
// is not: acc = [[10 - 4, -5 + 20, 0 - 8], [10 + 4, -5 - 4, 0]] = [[6, 15, -8], [14, -9, 0]].
TEST(QLinearTiny, HandComputedAccShift) {
  const uint8_t x[] = {3, 0, 1, 2}, w[] = {1, 2, 3, 0, 0, 1};
  const int32_t bias[] = {10, -5, 0}, w_zp[] = {1, 1, 1}, mult[] = {1 << 30, 1 << 30, 1 << 30},
                shift[] = {0, 0, 0};
  // 0.5 * acc, ties toward +inf: 3, 7.5 -> 8, -4, 7, -4.5 -> -4, 0.
  const int32_t expected[] = {3, 8, -4, 7, -4, 0};
  for (const QLinearKernel* kernel : all_qlinear_kernels()) {
    if (!kernel->available()) continue;
    SCOPED_TRACE(kernel->name());
    QLinearArgs a;
    a.batch = 2, a.x = x, a.x_stride = 2, a.x_zero_point = 1, a.bias = bias, a.w_zero_point = w_zp;
    a.multiplier = mult, a.shift = shift, a.y_stride = 3, a.acc_shift = 2;
    int32_t y[6];
    a.y_i32 = y;
    const auto prepared = kernel->prepare(pack_weights(w, 3, 2, 2), 2);
    kernel->run(*prepared, a);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(y[i], expected[i]) << i;
    a.acc_shift = kMaxAccShift + 1;
    EXPECT_THROW(kernel->run(*prepared, a), Error);
    a.acc_shift = -1;
    EXPECT_THROW(kernel->run(*prepared, a), Error);
  }
}

TEST(QLinearDispatch, BestKernelHonoursLowbitKernel) {
  const char* forced = std::getenv("LOWBIT_KERNEL");
  EXPECT_EQ(std::string(all_qlinear_kernels().front()->name()), "qlinear_u8_ref");
  if (!forced || !*forced) {
    EXPECT_TRUE(best_qlinear_kernel().available());
    return;
  }
  const std::string wanted = std::string("qlinear_u8_") + forced;
  bool runnable = false;
  for (const QLinearKernel* kernel : all_qlinear_kernels())
    runnable = runnable || (kernel->name() == wanted && kernel->available());
  if (runnable) {
    EXPECT_EQ(std::string(best_qlinear_kernel().name()), wanted);
  } else {  // unknown name, or an ISA this CPU lacks: a one-line lowbit::Error
    EXPECT_THROW(best_qlinear_kernel(), Error);
  }
}

// Per-layer choice: a kernel that runs the pair, on this CPU, that passed the probe. Forced, it is the
// forced kernel, or a lowbit::Error for a pair that kernel cannot run.
TEST(QLinearDispatch, KernelForEveryPairRunsIt) {
  const char* forced = std::getenv("LOWBIT_KERNEL");
  if (forced && *forced) {
    bool runnable = false;
    for (const QLinearKernel* kernel : all_qlinear_kernels())
      runnable = runnable || (kernel->name() == std::string("qlinear_u8_") + forced && kernel->available());
    if (!runnable) GTEST_SKIP() << "LOWBIT_KERNEL=" << forced << " is not runnable here";
  }
  for (int bits = 1; bits <= 8; ++bits)
    for (int act_bits = 1; act_bits <= 8; ++act_bits) {
      SCOPED_TRACE("bits=" + std::to_string(bits) + " act_bits=" + std::to_string(act_bits));
      if (forced && *forced && !best_qlinear_kernel().supports(bits, act_bits)) {
        EXPECT_THROW(qlinear_kernel_for(bits, act_bits), Error);
        continue;
      }
      const QLinearKernel& kernel = qlinear_kernel_for(bits, act_bits);
      EXPECT_TRUE(kernel.available());
      EXPECT_TRUE(kernel.supports(bits, act_bits));
      if ((forced && *forced) || bits > 4 || act_bits > 4) {
        EXPECT_EQ(&kernel, &best_qlinear_kernel());
      }
    }
}

TEST(QLinearArgsCheck, RejectsBadArguments) {
  const uint8_t w[] = {1};
  const auto prepared = all_qlinear_kernels().front()->prepare(pack_weights(w, 1, 1, 1), 1);
  QLinearArgs a;
  a.batch = 1;
  EXPECT_THROW(all_qlinear_kernels().front()->run(*prepared, a), Error);
  for (const QLinearKernel* kernel : all_qlinear_kernels()) {
    EXPECT_THROW(kernel->prepare(pack_weights(w, 1, 1, 1), 9), Error);
    PackedWeights too_deep;
    too_deep.rows = 1, too_deep.cols = kMaxInFeatures + 1, too_deep.bits = 1;
    too_deep.data.resize(too_deep.row_bytes());
    EXPECT_THROW(kernel->prepare(too_deep, 8), Error);
  }
  // Weights prepared by one kernel cannot be run by another with a different layout.
  const QLinearKernel& avx2 = *all_qlinear_kernels()[1];
  if (avx2.available()) {
    const int32_t zero[1] = {0}, mult[1] = {1 << 30};
    const uint8_t x[1] = {1};
    int32_t y[1];
    QLinearArgs b;
    b.batch = 1, b.x = x, b.x_stride = 1, b.bias = zero, b.w_zero_point = zero, b.multiplier = mult;
    b.shift = zero, b.y_i32 = y, b.y_stride = 1;
    EXPECT_THROW(avx2.run(*prepared, b), Error);
    EXPECT_THROW(all_qlinear_kernels().front()->run(*avx2.prepare(pack_weights(w, 1, 1, 1), 1), b), Error);
  }
}

}  // namespace
}  // namespace lowbit::kernels
