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
struct CallConstants {
  std::vector<int32_t> col_const, row_factor, multiplier, shift;  // [np]; zero for n >= N
};

// wc_sum: [N], sum_k wc[n][k]; np >= N: the padded feature count micro-kernels read. Grows `c`
// but never shrinks it, so calls at batch 1 pay for no allocation or memset.
void fill_call_constants(const QLinearArgs& a, int64_t N, int64_t np, int64_t K, int32_t centre,
                         const int32_t* wc_sum, CallConstants& c);

// A tile's output-stage fields (qlinear_ukernel.h) from the call: N, these constants, acc_shift,
// zero point and clamp, and y pointed at row `first_row`. The caller sets the input side.
void set_output_stage(const QLinearArgs& a, int64_t N, const CallConstants& c, int64_t first_row,
                      QLinearTile& tile);

}  // namespace lowbit::kernels
