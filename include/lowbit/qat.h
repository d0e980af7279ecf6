// Quantization-aware training with learned step sizes (LSQ, Esser et al. 2019), exported as a
// QuantPlan that the integer engine runs exactly (docs/qat.md).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/model.h"
#include "lowbit/quant_params.h"
#include "lowbit/quantize.h"
#include "lowbit/tensor.h"
#include "lowbit/train.h"

namespace lowbit {

// A uniform quantizer on a learned step s (LSQ eq. 1):
//   v_hat = s * clamp(round(v / s), -Qn, Qp).
// It is the engine's asymmetric form with zero_point = Qn and code = clamp(round(v / s), -Qn, Qp)
// + Qn, so Qn + Qp <= 2^bits - 1. Rounding is half to even, as QuantParams::quantize.
// Sign-binary (sign, bits 1, Qn = Qp = 1): v_hat = s * sign(v), sign(0) = +1, code = (v >= 0);
// "round" becomes sign inside the clip range [-s, s] (docs/qat.md).
struct LsqQuantizer {
  float step = 1.0f;
  int32_t negative = 0;  // Qn: levels below zero
  int32_t positive = 1;  // Qp: levels above zero
  int bits = 1;          // code width
  bool sign = false;     // levels {-s, +s} in 1-bit codes

  int32_t code(float v) const;  // in [0, Qn + Qp], or {0, 1} for sign
  float fake_quantize(float v) const {
    return step * static_cast<float>(sign ? 2 * code(v) - 1 : code(v) - negative);
  }
  // The straight-through estimator: dv_hat/dv = 1 inside [-Qn s, Qp s], 0 outside.
  bool passes(float v) const;
  // LSQ eq. 3, before the gradient scale g: dv_hat/ds = round(v/s) - v/s inside the range
  // (sign: sign(v) - v/s), -Qn below it, Qp above it.
  float step_gradient(float v) const;
  QuantParams params() const;
};

// Weight levels for b >= 2: signed symmetric two's-complement-like, Qn = 2^(b-1), Qp = 2^(b-1) - 1.
// ternary (b = 2 only): Qn = Qp = 1, levels {-s, 0, s}, code 3 unused.
// b = 1: sign-binary, levels {-s, +s} (the engine runs them as 2-bit codes {0, 2}, zero point 1).
LsqQuantizer weight_quantizer(int bits, bool ternary);
// LSQ gradient scale g = 1 / sqrt(N * Qp) (Qp: the larger of Qn, Qp).
float lsq_gradient_scale(int64_t count, const LsqQuantizer& q);

struct QatOptions {
  int weight_bits = 2;
  int act_bits = 2;
  bool ternary = false;         // weights {-s, 0, s} (needs weight_bits == 2)
  int epochs = 10;
  int64_t batch_size = 64;
  float learning_rate = 2e-3f;  // weights and biases; decays linearly to 0 over the run
  float step_learning_rate = 1e-3f;  // the learned steps (LSQ parameters)
  uint64_t seed = 0;
  int64_t init_count = 1024;    // training images used to initialize the activation steps
  // Knowledge distillation (Hinton et al. 2015, T = 1): the loss is (1 - distill) * NLL +
  // distill * KL(float model || quantized model) on each image; 0 turns it off.
  float distill = 0.0f;
  // Sign-binary weights: the STE passes a latent weight's gradient while |w| < range * s. LSQ's
  // own window is range 1; 3 was the best of 1, 2, 3 and unbounded on MNIST (docs/qat.md).
  float sign_ste_range = 3.0f;
  bool progress = true;
};

struct QatResult {
  Model model;    // the fine-tuned latent float weights (what the STE trains)
  QuantPlan plan; // codes and learned steps, ready for QuantizedModel::build / SimulatedModel
  std::vector<EpochStats> history;
};

// images: [count, features] normalized; labels: count class indices. The model must be
// Linear/ReLU/log-softmax (as plan_quantization). Every Linear's input is fake-quantized
// (after ReLU unsigned, Qn = 0; the first input keeps its min/max zero point and learns its
// step) and its weights per output channel. Bit-identical for one seed on any thread count.
QatResult quantization_aware_training(const Model& float_model, const Tensor& images,
                                      std::span<const uint8_t> labels, const QatOptions& options);

}  // namespace lowbit
