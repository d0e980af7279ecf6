// Weight rounding: nearest, or GPTQ (Frantar et al. 2022) with error feedback.
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/quant_params.h"
#include "lowbit/tensor.h"

namespace lowbit {

// Fraction of the mean diagonal of H added to its diagonal before inverting (GPTQ's "percdamp").
inline constexpr double kGptqDampening = 0.01;

// weight: [out, in]; params: 1 (per tensor) or `out` (per channel). Codes [out, in].
std::vector<uint8_t> round_to_nearest(const Tensor& weight, const std::vector<QuantParams>& params);

// GPTQ: H = 2 X^T X from inputs [count, in]; columns are quantized in order 0..in-1 and each
// column's error e_i = (w_i - q_i) / U_ii is subtracted as e_i * U_i,j from the later columns j,
// where U is the upper Cholesky factor of (H + damp I)^-1 (GPTQ Algorithm 1, without lazy
// batches). Inputs that are always 0 (H_ii = 0) get H_ii = 1: their weights never matter.
std::vector<uint8_t> round_with_gptq(const Tensor& weight, const std::vector<QuantParams>& params,
                                     const Tensor& inputs);

}  // namespace lowbit
