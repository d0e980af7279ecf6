// Folding a qlinear call's zero points and bias into per-feature constants (call_constants.h).
#include "kernels/call_constants.h"

#include <algorithm>

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
  tile.y_stride = a.y_stride;
  tile.y_u8 = a.y_u8 ? a.y_u8 + first_row * a.y_stride : nullptr;
  tile.y_i32 = a.y_i32 ? a.y_i32 + first_row * a.y_stride : nullptr;
}

}  // namespace lowbit::kernels
