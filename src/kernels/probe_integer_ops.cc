// The start-up probe's cases for the CNN operators (probe.h): each operator of a kernel set run on
// small awkward tensors beside the reference, every output byte and the output's margin compared.
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/integer_ops.h"
#include "kernels/probe.h"
#include "kernels/requantize.h"

namespace lowbit::kernels {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr size_t kMargin = 64;  // sentinel bytes after each output: a kernel must not write there
constexpr uint8_t kSentinel = 0xA5;

class Random {
 public:
  explicit Random(uint64_t seed) : rng_(seed) {}
  int64_t uniform(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng_() % static_cast<uint64_t>(hi - lo + 1)); }
  Bytes bytes(int64_t n, int lo = 0, int hi = 255) {
    Bytes b(static_cast<size_t>(n));
    for (uint8_t& v : b) v = static_cast<uint8_t>(uniform(lo, hi));
    return b;
  }

 private:
  std::mt19937_64 rng_;
};

std::string shape_text(const ImageShape& s) {
  return "[" + std::to_string(s.h) + ", " + std::to_string(s.w) + ", " + std::to_string(s.c) + "]";
}

std::string window_text(const Window& w) {
  return " window " + std::to_string(w.kernel_h) + "x" + std::to_string(w.kernel_w) + " stride " +
         std::to_string(w.stride_h) + "x" + std::to_string(w.stride_w) + " pad " + std::to_string(w.pad_h) + "x" +
         std::to_string(w.pad_w);
}

ImageShape output_of(const ImageShape& in, const Window& w) {
  return {(in.h + 2 * w.pad_h - w.kernel_h) / w.stride_h + 1, (in.w + 2 * w.pad_w - w.kernel_w) / w.stride_w + 1, in.c};
}

// Runs `op(kernel, out)` for both kernels into sentinel-filled buffers of `size` bytes plus the
// margin; "" when they agree on every byte.
template <typename Op>
std::string compare(const std::string& what, int64_t size, const IntegerOpsKernel& kernel,
                    const IntegerOpsKernel& reference, Op op) {
  Bytes want(static_cast<size_t>(size) + kMargin, kSentinel), got(want);
  op(reference, want.data());
  op(kernel, got.data());
  for (size_t i = 0; i < want.size(); ++i)
    if (got[i] != want[i])
      return what + ": " + (i < static_cast<size_t>(size) ? "y[" + std::to_string(i) + "]" : "past the end, byte " + std::to_string(i)) +
             " = " + std::to_string(got[i]) + ", reference " + std::to_string(want[i]);
  return "";
}

// Multipliers of the ranges the loader accepts: M0 in [2^30, 2^31), shift in [lo, hi].
void extreme_multiplier(Random& r, int32_t lo, int32_t hi, int32_t* m, int32_t* e) {
  const int64_t pick = r.uniform(0, 3);
  *m = pick == 0 ? (1 << 30) : pick == 1 ? 2147483647 : static_cast<int32_t>(r.uniform(1 << 30, 2147483647));
  *e = static_cast<int32_t>(r.uniform(lo, hi));
}

void typical_multiplier(Random& r, double scale, int32_t* m, int32_t* e) {
  quantize_multiplier(scale * std::exp2(static_cast<double>(r.uniform(-100, 100)) / 100.0), m, e);
}

int32_t zero_point_of(Random& r, int i) { return i % 3 == 0 ? 0 : i % 3 == 1 ? 255 : static_cast<int32_t>(r.uniform(1, 254)); }

std::string probe_pixels(const IntegerOpsKernel& k, const IntegerOpsKernel& ref, Random& r, int& index) {
  static constexpr int64_t kShapes[][4] = {{1, 1, 1, 1}, {5, 7, 3, 2}, {32, 32, 3, 1}, {3, 4, 2, 3}, {2, 3, 17, 1}, {9, 1, 4, 2}};
  for (const auto& s : kShapes) {
    const ImageShape shape{s[0], s[1], s[2]};
    const int64_t batch = s[3], size = batch * shape.size();
    const Bytes pixels = r.bytes(size), table = r.bytes(256 * shape.c);
    const std::string m = compare("case " + std::to_string(index++) + " (pixels_to_codes " + shape_text(shape) +
                                      " batch " + std::to_string(batch) + ")",
                                  size, k, ref, [&](const IntegerOpsKernel& kk, uint8_t* y) {
                                    kk.pixels_to_codes(pixels.data(), batch, shape, table.data(), y);
                                  });
    if (!m.empty()) return m;
  }
  return "";
}

struct WindowCase {
  ImageShape in;
  Window window;
  int64_t batch;
};

std::string probe_im2col(const IntegerOpsKernel& k, const IntegerOpsKernel& ref, Random& r, int& index) {
  static const WindowCase kCases[] = {
      {{5, 4, 3}, {3, 2, 2, 1, 1, 0}, 2},    {{32, 32, 3}, {3, 3, 1, 1, 1, 1}, 1}, {{8, 8, 16}, {3, 3, 1, 1, 1, 1}, 2},
      {{9, 7, 33}, {3, 3, 2, 2, 1, 1}, 1},   {{6, 6, 1}, {5, 5, 1, 1, 2, 2}, 1},   {{11, 13, 5}, {7, 7, 2, 2, 3, 3}, 1},
      {{4, 4, 64}, {1, 1, 2, 2, 0, 0}, 3},   {{3, 5, 7}, {1, 1, 1, 1, 0, 0}, 2},   {{7, 9, 2}, {2, 3, 1, 2, 0, 1}, 2},
      {{2, 2, 100}, {2, 2, 1, 1, 1, 1}, 1},  {{1, 1, 9}, {3, 3, 1, 1, 1, 1}, 2},   {{4, 6, 31}, {3, 3, 1, 1, 2, 2}, 1},
  };
  int i = 0;
  for (const WindowCase& c : kCases) {
    const ImageShape out = output_of(c.in, c.window);
    const int64_t K = c.window.kernel_h * c.window.kernel_w * c.in.c, size = c.batch * out.h * out.w * K;
    const Bytes x = r.bytes(c.batch * c.in.size());
    const uint8_t pad = static_cast<uint8_t>(zero_point_of(r, i++));
    const std::string m = compare("case " + std::to_string(index++) + " (im2col " + shape_text(c.in) +
                                      window_text(c.window) + " batch " + std::to_string(c.batch) + " pad code " +
                                      std::to_string(pad) + ")",
                                  size, k, ref, [&](const IntegerOpsKernel& kk, uint8_t* y) {
                                    kk.im2col(x.data(), c.batch, c.in, c.window, out, pad, y);
                                  });
    if (!m.empty()) return m;
  }
  return "";
}

// Pooling windows: padding at most half the kernel, as the loader requires.
const std::vector<WindowCase>& pool_cases() {
  static const std::vector<WindowCase> cases = {
      {{32, 32, 32}, {2, 2, 2, 2, 0, 0}, 1}, {{16, 16, 64}, {2, 2, 2, 2, 0, 0}, 2}, {{4, 4, 128}, {4, 4, 1, 1, 0, 0}, 2},
      {{7, 5, 3}, {3, 3, 2, 2, 1, 1}, 2},    {{9, 9, 17}, {3, 3, 1, 1, 1, 1}, 1},   {{5, 6, 31}, {2, 3, 1, 2, 0, 0}, 1},
      {{3, 3, 33}, {3, 3, 1, 1, 0, 0}, 3},   {{8, 8, 16}, {3, 3, 2, 2, 1, 1}, 1},   {{1, 1, 200}, {1, 1, 1, 1, 0, 0}, 2},
      {{6, 6, 47}, {2, 2, 2, 2, 0, 0}, 1},   {{20, 20, 16}, {20, 20, 1, 1, 0, 0}, 1}, {{17, 17, 24}, {17, 17, 1, 1, 0, 0}, 1},
      {{8, 8, 64}, {8, 8, 1, 1, 0, 0}, 4},   {{5, 5, 15}, {3, 3, 1, 1, 1, 1}, 1},
  };
  return cases;
}

std::string probe_max_pool(const IntegerOpsKernel& k, const IntegerOpsKernel& ref, Random& r, int& index) {
  for (const WindowCase& c : pool_cases()) {
    const ImageShape out = output_of(c.in, c.window);
    const Bytes x = r.bytes(c.batch * c.in.size());
    const std::string m = compare("case " + std::to_string(index++) + " (max_pool " + shape_text(c.in) +
                                      window_text(c.window) + " batch " + std::to_string(c.batch) + ")",
                                  c.batch * out.size(), k, ref, [&](const IntegerOpsKernel& kk, uint8_t* y) {
                                    kk.max_pool(x.data(), c.batch, c.in, c.window, out, y);
                                  });
    if (!m.empty()) return m;
  }
  return "";
}

std::string probe_avg_pool(const IntegerOpsKernel& k, const IntegerOpsKernel& ref, Random& r, int& index) {
  int i = 0;
  for (const WindowCase& c : pool_cases())
    for (const bool include_pad : {true, false}) {
      const ImageShape out = output_of(c.in, c.window);
      // Every third case saturated: all codes 255 (the largest sums), zero point 0.
      const bool saturated = i % 3 == 2;
      const Bytes x = saturated ? Bytes(static_cast<size_t>(c.batch * c.in.size()), 255) : r.bytes(c.batch * c.in.size());
      AvgPoolArgs a;
      a.window = c.window;
      a.count_include_pad = include_pad;
      a.in_zero_point = saturated ? 0 : zero_point_of(r, i);
      a.out_zero_point = zero_point_of(r, i + 1);
      a.out_min = i % 2 ? a.out_zero_point : 0;
      a.out_max = 255;
      const int64_t area = c.window.kernel_h * c.window.kernel_w;
      // The sum shift as the builder picks it (the largest that fits), none (old files), or between.
      const int32_t most = avg_pool_sum_shift(area);
      a.sum_shift = i % 3 == 0 ? most : i % 3 == 1 ? 0 : most / 2;
      std::vector<int32_t> mult(static_cast<size_t>(area)), shift(static_cast<size_t>(area));
      const bool extreme = i % 4 == 1;
      for (int64_t d = 1; d <= area; ++d) {
        if (extreme) extreme_multiplier(r, -31, 30, &mult[d - 1], &shift[d - 1]);
        else typical_multiplier(r, std::ldexp(1.0, -a.sum_shift) / static_cast<double>(d), &mult[d - 1], &shift[d - 1]);
      }
      a.multiplier = mult.data();
      a.shift = shift.data();
      const std::string m = compare("case " + std::to_string(index++) + " (avg_pool " + shape_text(c.in) +
                                        window_text(c.window) + " batch " + std::to_string(c.batch) +
                                        (include_pad ? " count_include_pad" : "") + (extreme ? " extreme-scales" : "") +
                                        " sum_shift " + std::to_string(a.sum_shift) +
                                        (saturated ? " saturated" : "") + ")",
                                    c.batch * out.size(), k, ref, [&](const IntegerOpsKernel& kk, uint8_t* y) {
                                      kk.avg_pool(x.data(), c.batch, c.in, out, a, y);
                                    });
      if (!m.empty()) return m;
      ++i;
    }
  return "";
}

std::string probe_add(const IntegerOpsKernel& k, const IntegerOpsKernel& ref, Random& r, int& index) {
  static constexpr int64_t kSizes[] = {1, 7, 31, 32, 33, 64, 100, 1000, 4099};
  int i = 0;
  for (int count = 2; count <= kMaxAddInputs; ++count)
    for (int64_t n : kSizes) {
      if (count > 3 && n > 100 && n != 4099) continue;
      std::vector<Bytes> x;
      const uint8_t* xs[kMaxAddInputs];
      int32_t zp[kMaxAddInputs], mult[kMaxAddInputs], shift[kMaxAddInputs];
      const bool extreme = i % 3 == 1;
      for (int t = 0; t < count; ++t) {
        x.push_back(r.bytes(n));
        zp[t] = zero_point_of(r, i + t);
        // The terms' multipliers are s_k / (2 max s) <= 1/2 (shift <= 0), so the sum fits int32.
        if (extreme) extreme_multiplier(r, -31, 0, &mult[t], &shift[t]);
        else typical_multiplier(r, 0.25, &mult[t], &shift[t]);
      }
      for (int t = 0; t < count; ++t) xs[t] = x[t].data();
      AddArgs a;
      a.count = count;
      a.x = xs;
      a.zero_point = zp;
      a.multiplier = mult;
      a.shift = shift;
      if (extreme) extreme_multiplier(r, -31, 30, &a.out_multiplier, &a.out_shift);
      else typical_multiplier(r, std::exp2(-kAddLeftShift + 1), &a.out_multiplier, &a.out_shift);
      a.out_zero_point = zero_point_of(r, i + 2);
      a.out_min = i % 2 ? a.out_zero_point : 0;
      a.out_max = i % 5 == 4 ? 200 : 255;
      const std::string m = compare("case " + std::to_string(index++) + " (add of " + std::to_string(count) + " x " +
                                        std::to_string(n) + (extreme ? " extreme-scales" : "") + ")",
                                    n, k, ref, [&](const IntegerOpsKernel& kk, uint8_t* y) { kk.add(a, n, y); });
      if (!m.empty()) return m;
      ++i;
    }
  return "";
}

std::string probe_relu(const IntegerOpsKernel& k, const IntegerOpsKernel& ref, Random& r, int& index) {
  static constexpr int64_t kSizes[] = {1, 31, 32, 33, 127, 128, 129, 1000};
  int i = 0;
  for (int64_t n : kSizes) {
    const Bytes x = r.bytes(n);
    const uint8_t zp = static_cast<uint8_t>(zero_point_of(r, i++));
    const std::string m = compare("case " + std::to_string(index++) + " (relu of " + std::to_string(n) +
                                      " zero point " + std::to_string(zp) + ")",
                                  n, k, ref, [&](const IntegerOpsKernel& kk, uint8_t* y) { kk.relu(x.data(), n, zp, y); });
    if (!m.empty()) return m;
  }
  return "";
}

}  // namespace

std::string probe_integer_ops(const IntegerOpsKernel& kernel, const IntegerOpsKernel& reference) {
  Random r(20261202);
  int index = 0;
  for (auto probe : {probe_pixels, probe_im2col, probe_max_pool, probe_avg_pool, probe_add, probe_relu}) {
    std::string mismatch = probe(kernel, reference, r, index);
    if (!mismatch.empty()) return mismatch;
  }
  return "";
}

}  // namespace lowbit::kernels
