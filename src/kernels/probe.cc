// The start-up probe's cases (probe.h): small layers run through a kernel and its reference, compared
// byte for byte. Deterministic: the same cases on every run and CPU.
#include "kernels/probe.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/requantize.h"

namespace lowbit::kernels {
namespace {

constexpr int32_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int32_t kInt32Max = std::numeric_limits<int32_t>::max();

enum class ZeroPoints { kRandom, kZero, kMax };
// kTypical: multipliers that map the sums onto a few hundred codes. kExtreme: multipliers near 2^31
// and at 2^30, shifts anywhere in [-31, 31]. kEdges: per column, the corners of requantize()
// (shift +31 and -31, multiplier 2^31 - 1, biases at INT32_MIN and INT32_MAX) and, for int32
// outputs, an output zero point that makes the final add saturate.
enum class Scale { kTypical, kExtreme, kEdges };

struct Case {
  int64_t batch = 1, K = 1, N = 1;
  int wbits = 8, abits = 8;
  int64_t x_pad = 0, y_pad = 0;
  bool out_i32 = false;
  ZeroPoints zero_points = ZeroPoints::kRandom;
  bool saturated = false;  // every input and weight code at its maximum
  Scale scale = Scale::kTypical;
  int32_t acc_shift = 0;
  int out_levels = -1;     // >= 0: a u8 grid of this many steps (the AVX-512 threshold output stage)
  // Pixel kernels only.
  int64_t channels = 0;    // 0: a qlinear case; else K = channels * per_channel
  int zero_percent = 80;   // share of pixels that are 0
  enum class Table { kRandom, kIncreasing, kIdentity } table = Table::kRandom;
  bool background_code_zero = false;
  bool extreme_pixels = false;  // every pixel 255, every weight code 0: int16 sums at their bound
};

std::string describe(int index, const Case& c) {
  std::string s = "case " + std::to_string(index) + " (wbits=" + std::to_string(c.wbits) +
                  " abits=" + std::to_string(c.abits) + " batch=" + std::to_string(c.batch) +
                  " K=" + std::to_string(c.K) + " N=" + std::to_string(c.N) + (c.out_i32 ? " int32" : " u8") +
                  " acc_shift=" + std::to_string(c.acc_shift);
  if (c.zero_points != ZeroPoints::kRandom) s += c.zero_points == ZeroPoints::kZero ? " zero-points=0" : " zero-points=max";
  if (c.saturated) s += " saturated";
  if (c.scale != Scale::kTypical) s += c.scale == Scale::kExtreme ? " extreme-scales" : " requantize-edges";
  if (c.channels) s += " channels=" + std::to_string(c.channels) + " zero-pixels=" + std::to_string(c.zero_percent) + "%";
  if (c.extreme_pixels) s += " int16-bound";
  if (c.out_levels >= 0) s += " out-levels=" + std::to_string(c.out_levels);
  return s + ")";
}

class Random {
 public:
  explicit Random(uint64_t seed) : rng_(seed) {}
  int64_t uniform(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng_() % static_cast<uint64_t>(hi - lo + 1)); }

 private:
  std::mt19937_64 rng_;
};

// Everything of one case but the weights' layout, which each kernel prepares itself.
struct Instance {
  std::vector<uint8_t> x, w;  // x: [batch, x_stride] codes (or pixels), w: [N, K] codes
  std::vector<int32_t> bias, w_zp, mult, shift;
  PixelTable table;
  QLinearArgs args;
  PackedWeights packed;
  int abits = 8;
};

Instance make_instance(const Case& c, Random& r) {
  Instance in;
  const int wmax = (1 << c.wbits) - 1, amax = (1 << c.abits) - 1;
  const int64_t x_stride = c.K + c.x_pad;
  in.x.resize(static_cast<size_t>(c.batch * x_stride));
  in.w.resize(static_cast<size_t>(c.N * c.K));
  if (c.channels) {
    in.table.per_channel = c.K / c.channels;
    for (int64_t ch = 0; ch < c.channels; ++ch)
      for (int v = 0; v < 256; ++v) {
        int code = static_cast<int>(r.uniform(0, amax));
        if (c.table == Case::Table::kIncreasing) code = static_cast<int>(std::lround(v * amax / 255.0));
        if (c.table == Case::Table::kIdentity) code = v;  // abits = 8
        in.table.codes.push_back(static_cast<uint8_t>(code));
      }
    if (c.background_code_zero)
      for (int64_t ch = 0; ch < c.channels; ++ch) in.table.codes[ch * 256] = 0;
    for (auto& v : in.x) v = r.uniform(0, 99) < c.zero_percent ? 0 : static_cast<uint8_t>(r.uniform(1, 255));
    for (auto& v : in.w) v = static_cast<uint8_t>(r.uniform(0, wmax));
    if (c.extreme_pixels) {
      std::fill(in.x.begin(), in.x.end(), uint8_t{255});
      std::fill(in.w.begin(), in.w.end(), uint8_t{0});
    }
  } else {
    for (auto& v : in.x) v = static_cast<uint8_t>(c.saturated ? amax : r.uniform(0, amax));
    for (auto& v : in.w) v = static_cast<uint8_t>(c.saturated ? wmax : r.uniform(0, wmax));
  }
  int32_t x_zp = static_cast<int32_t>(r.uniform(0, amax));
  if (c.zero_points == ZeroPoints::kZero) x_zp = 0;
  if (c.zero_points == ZeroPoints::kMax) x_zp = amax;
  const double spread = std::max(1.0, std::sqrt(static_cast<double>(c.K)) * (amax + 1) * (wmax + 1) / 4.0) *
                        std::exp2(c.acc_shift) * (c.out_levels >= 0 ? 100.0 / (c.out_levels + 1) : 1.0);
  in.bias.resize(c.N), in.w_zp.resize(c.N), in.mult.resize(c.N), in.shift.resize(c.N);
  for (int64_t n = 0; n < c.N; ++n) {
    in.w_zp[n] = static_cast<int32_t>(r.uniform(0, wmax));
    if (c.zero_points == ZeroPoints::kZero) in.w_zp[n] = 0;
    if (c.zero_points == ZeroPoints::kMax) in.w_zp[n] = wmax;
    const int64_t bias_range = std::min<int64_t>(1 << 20, static_cast<int64_t>(spread));
    in.bias[n] = static_cast<int32_t>(r.uniform(-bias_range, bias_range));
    switch (c.scale) {
      case Scale::kTypical:
        quantize_multiplier(100.0 / spread * std::exp2(r.uniform(-100, 100) / 100.0), &in.mult[n], &in.shift[n]);
        break;
      case Scale::kExtreme:
        in.mult[n] = static_cast<int32_t>(r.uniform(0, 3) == 0 ? (int64_t{1} << 30) : kInt32Max - r.uniform(0, 63));
        in.shift[n] = static_cast<int32_t>(r.uniform(-31, 31));
        break;
      case Scale::kEdges: {
        static constexpr int32_t kShifts[] = {31, -31, 0, 30, -30, 1, -1, 15};
        in.shift[n] = kShifts[n % 8];
        in.mult[n] = n % 3 == 0 ? kInt32Max : n % 3 == 1 ? (1 << 30) : (1 << 30) + 1;
        if (n % 5 == 0) in.bias[n] = kInt32Min;
        if (n % 5 == 1) in.bias[n] = kInt32Max;
        break;
      }
    }
  }
  QLinearArgs& a = in.args;
  a.batch = c.batch;
  a.x = in.x.data();
  a.x_stride = x_stride;
  a.x_zero_point = x_zp;
  a.bias = in.bias.data();
  a.w_zero_point = in.w_zp.data();
  a.multiplier = in.mult.data();
  a.shift = in.shift.data();
  a.acc_shift = c.acc_shift;
  a.out_zero_point = static_cast<int32_t>(c.out_i32 ? r.uniform(-1000, 1000) : r.uniform(0, 255));
  if (c.out_i32 && c.scale == Scale::kEdges) a.out_zero_point = r.uniform(0, 1) ? kInt32Max - 3 : kInt32Min + 3;
  a.out_min = static_cast<int32_t>(r.uniform(0, 20));
  a.out_max = static_cast<int32_t>(r.uniform(235, 255));
  if (c.out_levels >= 0) {
    a.out_min = static_cast<int32_t>(r.uniform(0, 255 - c.out_levels));
    a.out_max = a.out_min + c.out_levels;
    a.out_zero_point = a.out_min + static_cast<int32_t>(r.uniform(0, c.out_levels));
  }
  a.y_stride = c.N + c.y_pad;
  in.packed = pack_weights(in.w.data(), c.N, c.K, c.wbits);
  in.abits = c.abits;
  return in;
}

// Runs both (prepare and run) into sentinel-filled outputs, padding included; "" when equal.
template <typename Kernel, typename Prepare>
std::string compare(int index, const Case& c, Instance& in, const Kernel& kernel, const Kernel& reference,
                    Prepare prepare) {
  const size_t size = static_cast<size_t>(c.batch * in.args.y_stride);
  std::vector<int32_t> y32[2] = {std::vector<int32_t>(size, 0x5A5A5A5A), std::vector<int32_t>(size, 0x5A5A5A5A)};
  std::vector<uint8_t> y8[2] = {std::vector<uint8_t>(size, 0xA5), std::vector<uint8_t>(size, 0xA5)};
  const Kernel* kernels[2] = {&reference, &kernel};
  for (int i = 0; i < 2; ++i) {
    QLinearArgs a = in.args;
    if (c.out_i32) a.y_i32 = y32[i].data(); else a.y_u8 = y8[i].data();
    try {
      const auto prepared = prepare(*kernels[i], in);
      kernels[i]->run(*prepared, a);
    } catch (const Error& e) {
      if (i == 0) throw;  // the probe's own case is wrong: a bug here, not in the kernel
      return describe(index, c) + ": the kernel refused it (" + e.what() + ")";
    }
  }
  for (size_t j = 0; j < size; ++j) {
    const int64_t got = c.out_i32 ? y32[1][j] : y8[1][j], want = c.out_i32 ? y32[0][j] : y8[0][j];
    if (got == want) continue;
    const int64_t m = static_cast<int64_t>(j) / in.args.y_stride, n = static_cast<int64_t>(j) % in.args.y_stride;
    return describe(index, c) + ": y[" + std::to_string(m) + "][" + std::to_string(n) + "] = " +
           std::to_string(got) + ", reference " + std::to_string(want);
  }
  return "";
}

std::vector<Case> qlinear_cases() {
  std::vector<Case> cases;
  struct Shape { int64_t batch, K, N; };
  // The last shape is past one 32-row AMX block (smaller batches run on its VNNI fallback).
  static constexpr Shape kShapes[] = {{1, 33, 17}, {5, 64, 16}, {3, 129, 31}, {2, 1, 1}, {4, 17, 65}, {7, 40, 10},
                                      {33, 70, 20}};
  static constexpr int32_t kAccShifts[] = {0, 1, 7, 16, 24};
  int i = 0;
  for (int wbits = 1; wbits <= 8; ++wbits)
    for (int abits = 1; abits <= 8; ++abits, ++i) {
      Case c;
      const Shape& s = kShapes[i % 7];
      c.batch = s.batch, c.K = s.K, c.N = s.N, c.wbits = wbits, c.abits = abits;
      c.x_pad = i % 3, c.y_pad = i % 2;
      c.zero_points = static_cast<ZeroPoints>(i % 3);
      c.saturated = i % 7 == 3;
      // Extreme zero points and saturated codes push every u8 output to its clamp, which would hide
      // a wrong sum: those cases read int32 outputs.
      c.out_i32 = (wbits + abits + i / 8) % 2 == 0 || c.zero_points != ZeroPoints::kRandom || c.saturated;
      c.scale = i % 4 == 1 ? Scale::kExtreme : Scale::kTypical;
      c.acc_shift = kAccShifts[i % 5];
      cases.push_back(c);
    }
  for (int bits : {1, 4, 8})
    for (bool out_i32 : {false, true}) {
      Case c;
      c.batch = 3, c.K = 50, c.N = 37, c.wbits = bits, c.abits = 9 - bits, c.out_i32 = out_i32;
      c.scale = Scale::kEdges, c.saturated = out_i32, c.acc_shift = out_i32 ? 24 : 3;
      cases.push_back(c);
    }
  for (int bits : {1, 4}) {  // sub-byte weights too large for L2 stay packed (qlinear_tiled.cc)
    Case c;
    c.batch = 1, c.K = 1000, c.N = 272, c.wbits = bits, c.abits = bits == 1 ? 8 : 3, c.zero_points = ZeroPoints::kMax;
    c.out_i32 = true;
    cases.push_back(c);
  }
  for (int bits : {1, 8}) {  // the deepest K, every code at its maximum
    Case c;
    c.batch = 1, c.K = kMaxInFeatures, c.N = 2, c.wbits = bits, c.abits = bits, c.out_i32 = true;
    c.zero_points = ZeroPoints::kZero, c.saturated = true;
    cases.push_back(c);
  }
  // Past one 32-row AMX block (qlinear_amx.cc): a block read straight from x and a tail copied,
  // three feature blocks (a pair and a single), K below, at and past the 64-byte k block. Under 64
  // rows, so no OpenMP region at start-up.
  for (int i = 0; i < 3; ++i) {
    static constexpr int64_t kK[] = {27, 64, 130};
    Case c;
    c.batch = 63 - 15 * i, c.K = kK[i], c.N = 48 - 15 * i, c.wbits = 8 - 3 * i, c.abits = 8 - i;
    c.x_pad = i, c.y_pad = 1 - i % 2, c.out_i32 = i == 1, c.acc_shift = 3 * i;
    cases.push_back(c);
  }
  // Within the bit-serial kernels' 1..4 x 1..4 bits: requantize corners, the deepest K at 4 x 4
  // bits, and a threaded batch of resnet20's first convolution shape.
  for (auto [wbits, abits] : {std::pair{1, 4}, {4, 4}, {3, 2}})
    for (bool out_i32 : {false, true}) {
      Case c;
      c.batch = 5, c.K = 97, c.N = 33, c.wbits = wbits, c.abits = abits, c.out_i32 = out_i32;
      c.scale = Scale::kEdges, c.saturated = out_i32, c.acc_shift = out_i32 ? 24 : 5, c.x_pad = 3, c.y_pad = 1;
      cases.push_back(c);
    }
  {
    Case c;
    c.batch = 1, c.K = kMaxInFeatures, c.N = 17, c.wbits = 4, c.abits = 4, c.out_i32 = true;
    c.zero_points = ZeroPoints::kMax, c.saturated = true;
    cases.push_back(c);
  }
  {
    Case c;
    c.batch = 131, c.K = 144, c.N = 16, c.wbits = 2, c.abits = 2, c.acc_shift = 3;
    cases.push_back(c);
  }
  // u8 grids of 1, 3 and 15 steps (1-, 2- and 4-bit activations): the AVX-512 kernels' threshold
  // output stage, with requantize corners and past one AMX block.
  for (int i = 0; i < 4; ++i) {
    static constexpr int kLevels[] = {1, 3, 15, 3};
    Case c;
    c.batch = i == 3 ? 40 : 3 + i, c.K = 27 + 20 * i, c.N = 17 + 8 * i, c.wbits = 1 + i, c.abits = i == 2 ? 4 : 2;
    c.out_levels = kLevels[i], c.acc_shift = 2 * i, c.zero_points = static_cast<ZeroPoints>(i % 3);
    c.scale = i == 1 ? Scale::kEdges : Scale::kTypical, c.y_pad = i % 2;
    cases.push_back(c);
  }
  return cases;
}

std::vector<Case> pixel_cases() {
  std::vector<Case> cases;
  static constexpr int64_t kPerChannel[] = {784, 50, 33, 7};
  static constexpr int kZeroPercent[] = {80, 0, 50, 100};
  int i = 0;
  for (int wbits = 1; wbits <= 8; ++wbits)
    for (int abits = 1; abits <= 8; ++abits, ++i) {
      Case c;
      c.channels = i % 4 == 3 ? 3 : 1;
      c.K = c.channels * kPerChannel[i % 4];
      c.batch = 1 + i % 3, c.N = i % 2 ? 20 : 17, c.wbits = wbits, c.abits = abits;
      c.zero_percent = kZeroPercent[(i / 4) % 4];
      c.table = abits == 8 && i % 3 == 0 ? Case::Table::kIdentity
                : i % 2                  ? Case::Table::kIncreasing
                                         : Case::Table::kRandom;
      c.background_code_zero = c.table == Case::Table::kRandom && i % 4 == 2;
      c.out_i32 = (wbits + abits) % 2 == 0, c.acc_shift = (wbits * abits) % 17, c.x_pad = c.y_pad = i % 3;
      cases.push_back(c);
    }
  for (int zero_percent : {10, 90}) {  // three channels: a dense chunk and a sparse one
    Case c;
    c.channels = 3, c.K = 3 * 64, c.batch = 40, c.N = 17, c.zero_percent = zero_percent, c.abits = 4, c.wbits = 3;
    c.table = Case::Table::kIncreasing;
    cases.push_back(c);
  }
  for (int wbits = 1; wbits <= 8; ++wbits) {
    Case c;
    c.channels = 1, c.K = 784, c.batch = 1, c.N = 20, c.wbits = wbits, c.abits = 1 + (wbits * 3) % 8;
    c.table = Case::Table::kIncreasing, c.extreme_pixels = true, c.out_i32 = true;
    cases.push_back(c);
  }
  {  // a long row with 8-bit identity tables
    Case c;
    c.channels = 1, c.K = 4099, c.batch = 1, c.N = 16, c.abits = 8, c.table = Case::Table::kIdentity;
    c.zero_percent = 50;
    cases.push_back(c);
  }
  return cases;
}

// Every case in turn, each from the same seeded stream, so a mismatch names a case that replays.
// Cases the kernel does not serve (serves(case) false) are drawn but not run, so the stream and the
// case numbers are the same for every kernel.
template <typename Kernel, typename Prepare, typename Serves>
std::string probe_cases(const std::vector<Case>& cases, const Kernel& kernel, const Kernel& reference,
                        Prepare prepare, Serves serves) {
  Random r(20261201);
  for (size_t i = 0; i < cases.size(); ++i) {
    Instance in = make_instance(cases[i], r);
    if (!serves(cases[i])) continue;
    std::string mismatch = compare(static_cast<int>(i), cases[i], in, kernel, reference, prepare);
    if (!mismatch.empty()) return mismatch;
  }
  return "";
}

}  // namespace

std::string probe_qlinear(const QLinearKernel& kernel, const QLinearKernel& reference) {
  return probe_cases(qlinear_cases(), kernel, reference,
                     [](const QLinearKernel& k, const Instance& in) { return k.prepare(in.packed, in.abits); },
                     [&kernel](const Case& c) { return kernel.supports(c.wbits, c.abits); });
}

std::string probe_pixel_linear(const PixelLinearKernel& kernel, const PixelLinearKernel& reference) {
  return probe_cases(pixel_cases(), kernel, reference, [](const PixelLinearKernel& k, const Instance& in) {
    return k.prepare(in.packed, in.abits, in.table);
  }, [](const Case&) { return true; });
}

}  // namespace lowbit::kernels
