// Weight rounding: nearest, GPTQ (Frantar et al. 2022) with error feedback, or AdaRound
// (Nagel et al. 2020) with learned up/down decisions.
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

// AdaRound's hyper-parameters (docs/quantization.md, "Rounding"). The paper's lambda, zeta, gamma
// and beta schedule; the iteration count and learning rate were chosen by measuring on FC_NN.
struct AdaRoundOptions {
  int iterations = 1000;          // full-batch Adam steps
  double learning_rate = 5e-2;    // Adam, on V
  double lambda = 0.01;           // weight of the rounding regularizer
  double warmup = 0.2;            // fraction of the steps without the regularizer
  double beta_start = 20, beta_end = 2;  // regularizer exponent, annealed linearly after warm-up
};

// AdaRound: each weight's code is floor(w / s) + z or one more (then clamped to the code range),
// decided by minimizing (1/count) ||X~ W~^T - X W^T||_F^2 + lambda sum (1 - |2 h(V) - 1|^beta)
// over the soft weights W~ = s (clamp(floor(w / s) + z + h(V)) - z), then rounding h(V) >= 1/2 up.
// inputs: [count, in], what the layer sees with the earlier layers quantized (X~); float_inputs:
// [count, in], what it sees in the float model (X) — AdaRound's asymmetric reconstruction; pass
// the same tensor twice for the plain ||(W - W~) X^T||. Deterministic: full-batch, fixed order.
std::vector<uint8_t> round_with_adaround(const Tensor& weight, const std::vector<QuantParams>& params,
                                         const Tensor& inputs, const Tensor& float_inputs,
                                         const AdaRoundOptions& options = {});

}  // namespace lowbit
