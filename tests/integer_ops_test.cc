// The CNN operators' SIMD kernel sets against the reference, bit for bit, over random awkward shapes;
// and the start-up probe catches a faulty set. LOWBIT_TEST_SEED=N replays a run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/integer_ops.h"
#include "kernels/probe.h"
#include "kernels/requantize.h"
#include "lowbit/error.h"

namespace lowbit::kernels {
namespace {

using Bytes = std::vector<uint8_t>;
const IntegerOpsKernel& reference() { return *all_integer_ops_kernels().front(); }

uint64_t test_seed() {
  static const uint64_t seed = [] {
    const char* s = std::getenv("LOWBIT_TEST_SEED");
    const uint64_t v = s && *s ? std::strtoull(s, nullptr, 10) : std::random_device{}();
    std::printf("integer_ops_test seed %llu (LOWBIT_TEST_SEED=%llu replays it)\n", static_cast<unsigned long long>(v),
                static_cast<unsigned long long>(v));
    return v;
  }();
  return seed;
}

struct Rng {
  std::mt19937_64 gen;
  int64_t operator()(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(gen() % static_cast<uint64_t>(hi - lo + 1)); }
  template <size_t N>
  int64_t pick(const int64_t (&v)[N]) { return v[(*this)(0, N - 1)]; }
  Bytes bytes(int64_t n) {
    Bytes b(static_cast<size_t>(n));
    for (uint8_t& v : b) v = static_cast<uint8_t>(gen());
    return b;
  }
  int32_t zero_point() {
    const int64_t p = (*this)(0, 2);
    return p == 0 ? 0 : p == 1 ? 255 : static_cast<int32_t>((*this)(1, 254));
  }
};

// Channel counts around the vector widths (16, 32, 64 bytes) and small primes.
constexpr int64_t kChannels[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 127, 128, 129};
constexpr int64_t kSides[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17};

// Every available non-reference set, or a skip naming the missing ones.
std::vector<const IntegerOpsKernel*> simd_kernels() {
  std::vector<const IntegerOpsKernel*> k;
  for (const IntegerOpsKernel* kernel : all_integer_ops_kernels())
    if (kernel != &reference()) {
      if (kernel->available()) k.push_back(kernel);
      else std::printf("skipped %s: this CPU lacks its ISA\n", kernel->name());
    }
  return k;
}

// The reference and `kernel` into buffers with a 64-byte sentinel margin: equal bytes, margin untouched.
void expect_same(const IntegerOpsKernel& kernel, int64_t size, const std::string& what,
                 const std::function<void(const IntegerOpsKernel&, uint8_t*)>& op) {
  Bytes want(static_cast<size_t>(size) + 64, 0xA5), got(want);
  op(reference(), want.data());
  op(kernel, got.data());
  for (size_t i = 0; i < want.size(); ++i)
    if (got[i] != want[i]) {
      ADD_FAILURE() << kernel.name() << " " << what << ": byte " << i << " of " << size << " = " << int{got[i]}
                    << ", reference " << int{want[i]} << " (seed " << test_seed() << ")";
      return;
    }
}

ImageShape output_of(const ImageShape& in, const Window& w) {
  return {(in.h + 2 * w.pad_h - w.kernel_h) / w.stride_h + 1, (in.w + 2 * w.pad_w - w.kernel_w) / w.stride_w + 1, in.c};
}

// A random window that fits `in`; pooling windows pad at most half the kernel, as the loader requires.
Window random_window(Rng& r, const ImageShape& in, bool pooling) {
  for (;;) {
    Window w;
    w.kernel_h = r(1, 3) + (r(0, 9) == 0 ? 4 : 0), w.kernel_w = r(1, 3) + (r(0, 9) == 0 ? 2 : 0);
    w.stride_h = r(1, 3), w.stride_w = r(1, 3);
    w.pad_h = r(0, pooling ? w.kernel_h / 2 : w.kernel_h - 1), w.pad_w = r(0, pooling ? w.kernel_w / 2 : w.kernel_w - 1);
    if (pooling && r(0, 7) == 0) w = {in.h, in.w, 1, 1, 0, 0};  // a global pool
    if (w.kernel_h <= in.h + 2 * w.pad_h && w.kernel_w <= in.w + 2 * w.pad_w) return w;
  }
}

std::string describe(const ImageShape& in, const Window& w, int64_t batch) {
  char s[200];
  std::snprintf(s, sizeof s, "in [%lld, %lld, %lld] window %lldx%lld stride %lldx%lld pad %lldx%lld batch %lld",
                static_cast<long long>(in.h), static_cast<long long>(in.w), static_cast<long long>(in.c),
                static_cast<long long>(w.kernel_h), static_cast<long long>(w.kernel_w),
                static_cast<long long>(w.stride_h), static_cast<long long>(w.stride_w),
                static_cast<long long>(w.pad_h), static_cast<long long>(w.pad_w), static_cast<long long>(batch));
  return s;
}

TEST(IntegerOpsKernels, PixelsAndIm2colMatchTheReference) {
  Rng r{std::mt19937_64(test_seed())};
  for (const IntegerOpsKernel* kernel : simd_kernels())
    for (int i = 0; i < 300; ++i) {
      const ImageShape in{r.pick(kSides), r.pick(kSides), r.pick(kChannels)};
      const int64_t batch = r(1, 3);
      const Bytes x = r.bytes(batch * in.size()), table = r.bytes(256 * in.c);
      expect_same(*kernel, batch * in.size(), "pixels_to_codes " + describe(in, {}, batch),
                  [&](const IntegerOpsKernel& k, uint8_t* y) { k.pixels_to_codes(x.data(), batch, in, table.data(), y); });
      const Window w = random_window(r, in, false);
      const ImageShape out = output_of(in, w);
      const uint8_t pad = static_cast<uint8_t>(r.zero_point());
      expect_same(*kernel, batch * out.h * out.w * w.kernel_h * w.kernel_w * in.c,
                  "im2col " + describe(in, w, batch) + " pad " + std::to_string(pad),
                  [&](const IntegerOpsKernel& k, uint8_t* y) { k.im2col(x.data(), batch, in, w, out, pad, y); });
    }
}

TEST(IntegerOpsKernels, PoolingMatchesTheReference) {
  Rng r{std::mt19937_64(test_seed() + 1)};
  for (const IntegerOpsKernel* kernel : simd_kernels())
    for (int i = 0; i < 300; ++i) {
      ImageShape in{r.pick(kSides), r.pick(kSides), r.pick(kChannels)};
      if (i % 50 == 0) in = {r(16, 24), r(16, 24), r.pick(kChannels)};  // global pools of 256+ cells
      const int64_t batch = r(1, 3);
      const bool saturated = i % 10 == 3;
      const Bytes x = saturated ? Bytes(static_cast<size_t>(batch * in.size()), 255) : r.bytes(batch * in.size());
      const Window w = random_window(r, in, true);
      const ImageShape out = output_of(in, w);
      const std::string what = describe(in, w, batch) + (saturated ? " saturated" : "");
      expect_same(*kernel, batch * out.size(), "max_pool " + what,
                  [&](const IntegerOpsKernel& k, uint8_t* y) { k.max_pool(x.data(), batch, in, w, out, y); });
      AvgPoolArgs a;
      a.window = w;
      a.count_include_pad = r(0, 1);
      a.in_zero_point = saturated ? 0 : r.zero_point();
      a.out_zero_point = r.zero_point();
      a.out_min = r(0, 1) ? a.out_zero_point : 0;
      const int64_t area = w.kernel_h * w.kernel_w;
      a.sum_shift = static_cast<int32_t>(r(0, avg_pool_sum_shift(area)));
      std::vector<int32_t> m(static_cast<size_t>(area)), e(static_cast<size_t>(area));
      const bool extreme = r(0, 3) == 0;
      for (int64_t d = 1; d <= area; ++d) {
        if (extreme) {
          m[d - 1] = static_cast<int32_t>(r(1 << 30, 2147483647)), e[d - 1] = static_cast<int32_t>(r(-31, 30));
        } else {
          quantize_multiplier(static_cast<double>(r(50, 200)) / 100.0 / static_cast<double>(d) / std::ldexp(1.0, a.sum_shift),
                              &m[d - 1], &e[d - 1]);
        }
      }
      a.multiplier = m.data(), a.shift = e.data();
      expect_same(*kernel, batch * out.size(),
                  "avg_pool " + what + (a.count_include_pad ? " count_include_pad" : "") + (extreme ? " extreme" : "") +
                      " sum_shift " + std::to_string(a.sum_shift),
                  [&](const IntegerOpsKernel& k, uint8_t* y) { k.avg_pool(x.data(), batch, in, out, a, y); });
    }
}

TEST(IntegerOpsKernels, AddAndReluMatchTheReference) {
  Rng r{std::mt19937_64(test_seed() + 2)};
  constexpr int64_t kSizes[] = {1, 2, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1000, 4096, 4099};
  for (const IntegerOpsKernel* kernel : simd_kernels())
    for (int i = 0; i < 300; ++i) {
      const int64_t n = r.pick(kSizes);
      const int count = static_cast<int>(r(2, kMaxAddInputs));
      std::vector<Bytes> x;
      const uint8_t* xs[kMaxAddInputs];
      int32_t zp[kMaxAddInputs], m[kMaxAddInputs], e[kMaxAddInputs];
      const bool extreme = r(0, 2) == 0;
      for (int t = 0; t < count; ++t) {
        x.push_back(r.bytes(n));
        xs[t] = x.back().data();
        zp[t] = r.zero_point();
        // The terms' multipliers are s_k / (2 max s) <= 1/2: shift <= 0 (the sum fits int32).
        if (extreme) m[t] = static_cast<int32_t>(r(1 << 30, 2147483647)), e[t] = static_cast<int32_t>(r(-31, 0));
        else quantize_multiplier(static_cast<double>(r(10, 50)) / 100.0, &m[t], &e[t]);
      }
      AddArgs a;
      a.count = count, a.x = xs, a.zero_point = zp, a.multiplier = m, a.shift = e;
      if (extreme) a.out_multiplier = static_cast<int32_t>(r(1 << 30, 2147483647)), a.out_shift = static_cast<int32_t>(r(-31, 30));
      else quantize_multiplier(static_cast<double>(r(100, 400)) / 100.0 * std::ldexp(1.0, -kAddLeftShift), &a.out_multiplier, &a.out_shift);
      a.out_zero_point = r.zero_point();
      a.out_min = r(0, 1) ? a.out_zero_point : 0;
      a.out_max = r(0, 3) == 0 ? static_cast<int32_t>(r(a.out_min, 255)) : 255;
      expect_same(*kernel, n, "add of " + std::to_string(count) + " x " + std::to_string(n) + (extreme ? " extreme" : ""),
                  [&](const IntegerOpsKernel& k, uint8_t* y) { k.add(a, n, y); });
      const uint8_t z = static_cast<uint8_t>(r.zero_point());
      expect_same(*kernel, n, "relu of " + std::to_string(n) + " zero point " + std::to_string(z),
                  [&](const IntegerOpsKernel& k, uint8_t* y) { k.relu(x[0].data(), n, z, y); });
    }
}

// The reference with one operator wrong in one corner, each of which the probe must reach.
void relu_wrong_tail(const uint8_t* x, int64_t n, uint8_t z, uint8_t* y) {
  relu(x, n, z, y);
  if (n % 32 == 1) y[n - 1] ^= 1;
}
void avg_pool_wrong_past_256_cells(const uint8_t* x, int64_t batch, const ImageShape& in, const ImageShape& out,
                                   const AvgPoolArgs& a, uint8_t* y) {
  avg_pool(x, batch, in, out, a, y);
  if (a.window.kernel_h * a.window.kernel_w > 256) y[0] ^= 1;
}
void add_wrong_for_eight(const AddArgs& a, int64_t n, uint8_t* y) {
  add(a, n, y);
  if (a.count == kMaxAddInputs) y[n - 1] ^= 1;
}
void im2col_past_the_end(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& w, const ImageShape& out,
                         uint8_t pad, uint8_t* cols) {
  im2col(x, batch, in, w, out, pad, cols);
  if (in.c % 2 == 1) cols[batch * out.h * out.w * w.kernel_h * w.kernel_w * in.c] = pad;
}
void max_pool_wrong_on_wide_channels(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& w,
                                     const ImageShape& out, uint8_t* y) {
  max_pool(x, batch, in, w, out, y);
  if (in.c > 64) y[in.c - 1] ^= 1;
}

TEST(IntegerOpsProbe, PassesEveryAvailableSetAndCatchesEachInjectedFault) {
  for (const IntegerOpsKernel* kernel : all_integer_ops_kernels()) {
    if (!kernel->available()) {
      std::printf("skipped %s: this CPU lacks its ISA\n", kernel->name());
      continue;
    }
    EXPECT_EQ(probe_integer_ops(*kernel, reference()), "") << kernel->name();
  }
  std::vector<IntegerOpsKernel> faulty(5, reference());
  faulty[0].relu = relu_wrong_tail;
  faulty[1].avg_pool = avg_pool_wrong_past_256_cells;
  faulty[2].add = add_wrong_for_eight;
  faulty[3].im2col = im2col_past_the_end;
  faulty[4].max_pool = max_pool_wrong_on_wide_channels;
  for (IntegerOpsKernel& k : faulty) {
    k.kernel_name = "integer_ops_u8_faulty";
    const std::string mismatch = probe_integer_ops(k, reference());
    EXPECT_NE(mismatch.find("case "), std::string::npos) << mismatch;
  }
  // Dispatch skips a failing set and says so, and refuses it when forced.
  const std::vector<const IntegerOpsKernel*> candidates = {&faulty[2], &reference()};
  std::ostringstream log;
  EXPECT_EQ(&choose_probed_kernel(candidates, "LOWBIT_OPS_KERNEL", nullptr, "integer_ops_u8_", probe_integer_ops, log),
            &reference());
  EXPECT_NE(log.str().find("not using integer_ops_u8_faulty"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("add of 8"), std::string::npos) << log.str();
  EXPECT_THROW(choose_probed_kernel(candidates, "LOWBIT_OPS_KERNEL", "faulty", "integer_ops_u8_", probe_integer_ops, log),
               Error);
}

}  // namespace
}  // namespace lowbit::kernels
