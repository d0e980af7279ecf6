// Choosing quantization ranges from observed values: minmax, percentile, mse and kl calibration.
#pragma once

#include <span>

#include "lowbit/quant_params.h"
#include "lowbit/quantize.h"
#include "lowbit/tensor.h"

namespace lowbit {

// The clipping range for `values` at `bits` (before minmax_params widens it to include 0).
Range calibrate_range(std::span<const float> values, int bits, Calibration calibration,
                      double percentile);

// Calibration::output_mse: inputs [count, in], weight [out, in]; the range alpha * [min, max]
// (alpha on the mse grid) minimizing ||X W^T - fq(X) W^T||^2 over the first 512 rows.
Range output_mse_range(const Tensor& inputs, const Tensor& weight, int bits);
// The same, with the error measured against the float model: ||X W^T - fq(X~) W^T||^2, where
// X~ (`inputs`) is what the layer sees with the earlier layers quantized.
Range output_mse_range(const Tensor& float_inputs, const Tensor& inputs, const Tensor& weight,
                       int bits);

// Symmetric weights: levels scale * (q - zero_point) with zero_point = 2^(b-1) and
// scale = a / (2^(b-1) - 1), so the codes 1..2^b-1 span [-a, a] and real 0 is exact
// (code 0, at -a - scale, is never produced). b = 2 is ternary {-a, 0, a}. b = 1 has no
// symmetric grid holding 0, so it keeps the side of larger magnitude: levels {-a, 0}
// (zero point 1) when |min| > max, else {0, a} (zero point 0); scale a.
QuantParams symmetric_params(Range range, int bits);

// Weight parameters for one tensor or one output channel's row (minmax or mse calibration).
QuantParams choose_weight_params(std::span<const float> values, int bits,
                                 Calibration calibration, bool symmetric);

// mean over values of (x - fake_quantize(x))^2, summed in order in double.
double quantization_mse(std::span<const float> values, const QuantParams& params);

}  // namespace lowbit
