// Per-call int32 constants that fold the zero-point cross terms of a qlinear call (qlinear.h) so
// that micro-kernels add them to a raw dot product of centred weights and codes.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/qlinear.h"
#include "kernels/qlinear_ukernel.h"

namespace lowbit::kernels {

// With weights held centred, wc = w - c, and a call's zero points wz[n], xz (all mod 2^32):
//   sum_k (w - wz)(x - xz) = dot(wc, x) - xz * sum(wc) + (c - wz) * (sum(x) - K * xz)
// and acc = bias + 2^s * that sum. The cross terms belong to the sum, so they are shifted here and
// a micro-kernel shifts only dot(wc, x); multiplication by 2^s distributes over + mod 2^32, so
//   acc = dot(wc, x) * 2^s + col_const[n] + row_factor[n] * sum(x)
// equals the reference's (sum mod 2^32) << s bit for bit, with
//   col_const = bias + 2^s * (-xz * sum(wc) - (c - wz) * K * xz),  row_factor = 2^s * (c - wz).
// One layer's thresholds (fill_thresholds) and what they were computed from: they depend on
// nothing else, so later calls with the same multipliers, shifts and grid reuse them.
struct ThresholdSet {
  int64_t n = -1, np = 0;
  int32_t levels = -1, zero_point = 0, out_min = 0;
  std::vector<int32_t> multiplier, shift;  // [N]
  std::vector<int32_t> base;               // [np]
  std::vector<int32_t> thresholds;         // [np / 16][levels][16]
};

struct CallConstants {
  std::vector<int32_t> col_const, row_factor, multiplier, shift;  // [np]; zero for n >= N
  // The threshold output stage for this call: levels < 0, not used; else the set in use.
  int32_t levels = -1;
  const ThresholdSet* thresholds = nullptr;
  // The sets of the last layers seen, replaced in turn: a model's layers take turns at batch 1,
  // and one computation costs microseconds per layer (FC_NN at batch 1: 2.3 us a call became
  // 17 us with one set only).
  std::vector<ThresholdSet> threshold_sets;
  size_t next_set = 0;
};

// Output grids of at most this many steps (out_max - out_min: 2- and 1-bit activations) use the
// threshold output stage. Measured (docs/kernels.md, "The output stage"): 1.2-1.7x faster than the
// 16-lane requantization at 1 and 3 steps, 6 % slower at 15 (4 bits); 7 steps not measured.
inline constexpr int32_t kMaxThresholdLevels = 3;

// For a y_u8 call with out_max - out_min <= max_levels (and M0 >= 0, e in [-31, 31] for every
// feature), sets c.levels = out_max - out_min and fills, per feature n, threshold_base[n] = the
// code of acc = INT32_MIN and the accs t - 1 at which each further code starts (INT32_MAX past the
// last), found by binary search on requantize.h's functions, so exact by construction: the code
// requantize + clamp gives is monotone non-decreasing in acc. Otherwise c.levels = -1. Call after
// fill_call_constants; pass max_levels = -1 for kernels without the threshold stage.
void fill_thresholds(const QLinearArgs& a, int64_t N, int64_t np, int32_t max_levels, CallConstants& c);

// wc_sum: [N], sum_k wc[n][k]; np >= N: the padded feature count micro-kernels read. Grows `c`
// but never shrinks it, so calls at batch 1 pay for no allocation or memset.
void fill_call_constants(const QLinearArgs& a, int64_t N, int64_t np, int64_t K, int32_t centre,
                         const int32_t* wc_sum, CallConstants& c);

// A tile's output-stage fields (qlinear_ukernel.h) from the call: N, these constants, acc_shift,
// zero point and clamp, and y pointed at row `first_row`. The caller sets the input side.
void set_output_stage(const QLinearArgs& a, int64_t N, const CallConstants& c, int64_t first_row,
                      QLinearTile& tile);

}  // namespace lowbit::kernels
