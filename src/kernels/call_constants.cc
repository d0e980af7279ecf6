// Folding a qlinear call's zero points and bias into per-feature constants (call_constants.h).
#include "kernels/call_constants.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/requantize.h"

namespace lowbit::kernels {

void fill_call_constants(const QLinearArgs& a, int64_t N, int64_t np, int64_t K, int32_t centre,
                         const int32_t* wc_sum_in, CallConstants& c) {
  const size_t padded = static_cast<size_t>(np);
  if (c.col_const.size() < padded) {
    c.col_const.resize(padded);
    c.row_factor.resize(padded);
    c.multiplier.resize(padded);
    c.shift.resize(padded);
  }
  const uint32_t xz = static_cast<uint32_t>(a.x_zero_point);
  const uint32_t k = static_cast<uint32_t>(K);
  // Distinct arrays (restrict) so the loop vectorizes; it runs for every call, also at batch 1.
  int32_t* __restrict col_const = c.col_const.data();
  int32_t* __restrict row_factor = c.row_factor.data();
  const int32_t* __restrict bias = a.bias;
  const int32_t* __restrict w_zero_point = a.w_zero_point;
  const int32_t* __restrict wc_sum = wc_sum_in;
  const int s = a.acc_shift;
  for (int64_t n = 0; n < N; ++n) {
    const uint32_t factor = static_cast<uint32_t>(centre) - static_cast<uint32_t>(w_zero_point[n]);
    const uint32_t cross = 0u - xz * static_cast<uint32_t>(wc_sum[n]) - factor * k * xz;
    col_const[n] = static_cast<int32_t>(static_cast<uint32_t>(bias[n]) + (cross << s));
    row_factor[n] = static_cast<int32_t>(factor << s);
  }
  std::copy(a.multiplier, a.multiplier + N, c.multiplier.begin());
  std::copy(a.shift, a.shift + N, c.shift.begin());
  for (int64_t n = N; n < np; ++n)  // padding features: computed, never stored
    c.col_const[n] = c.row_factor[n] = c.multiplier[n] = c.shift[n] = 0;
}

namespace {

// The y_u8 output as a function of acc alone (requantize.h): monotone non-decreasing in acc when
// M0 >= 0, as every step of requantize() and the clamp is.
int32_t code_of(int32_t acc, int32_t multiplier, int32_t shift, const QLinearArgs& a) {
  return clamp_to_u8(requantize(acc, multiplier, shift), a.out_zero_point, a.out_min, a.out_max);
}

// The smallest acc in (lo, hi] whose code reaches `level`, given code(lo) < level <= code(hi):
// a binary search on the reference itself, first narrowed around the real-valued guess (the
// bracket is checked, so a wrong guess costs time, never exactness).
int64_t first_acc_reaching(int32_t level, int64_t lo, int64_t hi, int32_t multiplier, int32_t shift,
                           const QLinearArgs& a) {
  const double real = std::ldexp(static_cast<double>(multiplier), shift - 31);
  if (real > 0) {
    const double guess = std::floor((level - a.out_zero_point - 0.5) / real);
    constexpr double kSlack = 4;
    if (guess - kSlack > static_cast<double>(lo) && guess - kSlack < static_cast<double>(hi)) {
      const int64_t g = static_cast<int64_t>(guess - kSlack);
      if (code_of(static_cast<int32_t>(g), multiplier, shift, a) < level) lo = g;
    }
    if (guess + kSlack > static_cast<double>(lo) && guess + kSlack < static_cast<double>(hi)) {
      const int64_t g = static_cast<int64_t>(guess + kSlack);
      if (code_of(static_cast<int32_t>(g), multiplier, shift, a) >= level) hi = g;
    }
  }
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (code_of(static_cast<int32_t>(mid), multiplier, shift, a) >= level) hi = mid;
    else lo = mid;
  }
  return hi;
}

bool same_inputs(const ThresholdSet& t, const QLinearArgs& a, int64_t N, int64_t np, int32_t levels) {
  return t.n == N && t.np == np && t.levels == levels && t.zero_point == a.out_zero_point &&
         t.out_min == a.out_min && std::equal(a.multiplier, a.multiplier + N, t.multiplier.begin()) &&
         std::equal(a.shift, a.shift + N, t.shift.begin());
}

// The sets kept per CallConstants: more than the layers of the models in presets.cc.
constexpr size_t kThresholdSets = 64;

}  // namespace

void fill_thresholds(const QLinearArgs& a, int64_t N, int64_t np, int32_t max_levels, CallConstants& c) {
  c.levels = -1;
  c.thresholds = nullptr;
  const int32_t levels = a.out_max - a.out_min;
  if (!a.y_u8 || levels > max_levels || levels < 0) return;
  for (int64_t n = 0; n < N; ++n)  // past the contract the code need not be monotone
    if (a.multiplier[n] < 0 || a.shift[n] < -31 || a.shift[n] > 31) return;
  c.levels = levels;
  for (const ThresholdSet& t : c.threshold_sets)
    if (same_inputs(t, a, N, np, levels)) {
      c.thresholds = &t;
      return;
    }
  ThresholdSet* replaced;
  if (c.threshold_sets.size() < kThresholdSets) {
    c.threshold_sets.reserve(kThresholdSets);
    replaced = &c.threshold_sets.emplace_back();
  } else {
    replaced = &c.threshold_sets[c.next_set];
    c.next_set = (c.next_set + 1) % kThresholdSets;
  }
  ThresholdSet& set = *replaced;
  const size_t padded = static_cast<size_t>(np);
  set.n = -1;  // incomplete until filled
  set.base.assign(padded, a.out_min);  // padding features: computed, never stored
  set.thresholds.assign(padded * static_cast<size_t>(levels), INT32_MAX);  // [np / 16][levels][16]
  constexpr int64_t kMin = INT32_MIN, kMax = INT32_MAX;
  for (int64_t n = 0; n < N; ++n) {
    const int32_t m = a.multiplier[n], e = a.shift[n];
    const int32_t low = code_of(INT32_MIN, m, e, a), high = code_of(INT32_MAX, m, e, a);
    set.base[n] = low;
    int32_t* t = set.thresholds.data() + (n / kTileCols) * levels * kTileCols + n % kTileCols;
    int64_t lo = kMin;
    for (int32_t level = low + 1; level <= high; ++level) {
      const int64_t first = first_acc_reaching(level, lo, kMax, m, e, a);
      t[(level - low - 1) * kTileCols] = static_cast<int32_t>(first - 1);  // reached iff acc > first - 1
      lo = first - 1;
    }
  }
  set.multiplier.assign(a.multiplier, a.multiplier + N);
  set.shift.assign(a.shift, a.shift + N);
  set.levels = levels, set.zero_point = a.out_zero_point, set.out_min = a.out_min, set.np = np, set.n = N;
  c.thresholds = &set;
}

void set_output_stage(const QLinearArgs& a, int64_t N, const CallConstants& c, int64_t first_row,
                      QLinearTile& tile) {
  tile.n = N;
  tile.col_const = c.col_const.data();
  tile.row_factor = c.row_factor.data();
  tile.multiplier = c.multiplier.data();
  tile.shift = c.shift.data();
  tile.acc_shift = a.acc_shift;
  tile.out_zero_point = a.out_zero_point;
  tile.out_min = a.out_min;
  tile.out_max = a.out_max;
  const bool thresholds = c.levels >= 0 && c.thresholds;
  tile.threshold_base = thresholds ? c.thresholds->base.data() : nullptr;
  tile.thresholds = thresholds ? c.thresholds->thresholds.data() : nullptr;
  tile.levels = thresholds ? c.levels : 0;
  tile.y_stride = a.y_stride;
  tile.y_u8 = a.y_u8 ? a.y_u8 + first_row * a.y_stride : nullptr;
  tile.y_i32 = a.y_i32 ? a.y_i32 + first_row * a.y_stride : nullptr;
}

}  // namespace lowbit::kernels
