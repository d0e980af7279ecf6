// AdaRound (Nagel et al. 2020, arXiv:2004.10568): each weight rounds up or down as a learned
// rectified sigmoid decides, chosen to reconstruct the layer's output on calibration inputs.
#include <algorithm>
#include <cmath>

#include <Eigen/Core>

#include "lowbit/error.h"
#include "quant/rounding.h"

namespace lowbit {
namespace {

using MatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ArrayF = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Stretch of the rectified sigmoid h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1)
// (AdaRound eq. 23): h reaches exactly 0 and 1 at finite V.
constexpr float kZeta = 1.1f, kGamma = -0.1f;

MatrixD as_double(const Tensor& t) {
  MatrixD m(t.dim(0), t.row_size());
  for (int64_t i = 0; i < m.rows(); ++i)
    for (int64_t k = 0; k < m.cols(); ++k) m(i, k) = t[i * m.cols() + k];
  return m;
}

}  // namespace

std::vector<uint8_t> round_with_adaround(const Tensor& weight, const std::vector<QuantParams>& params,
                                         const Tensor& inputs, const Tensor& float_inputs,
                                         const AdaRoundOptions& options) {
  const int64_t out = weight.dim(0), in = weight.row_size();
  if (inputs.row_size() != in || float_inputs.row_size() != in ||
      float_inputs.dim(0) != inputs.dim(0))
    throw Error("AdaRound: inputs do not match the weight's columns");
  if (params.size() != 1 && static_cast<int64_t>(params.size()) != out)
    throw Error("AdaRound: need one set of weight parameters or one per output channel");
  if (options.iterations < 1 || options.warmup < 0 || options.warmup >= 1)
    throw Error("AdaRound: iterations must be >= 1 and warm-up in [0, 1)");
  const int64_t count = std::max<int64_t>(inputs.dim(0), 1);

  // The loss (1/count) ||X~ W~^T - X W^T||_F^2 (X~: the quantized model's inputs, X: the float
  // model's, W: the float weights) has gradient 2 (W~ H - G) in W~, with H = X~^T X~ / count and
  // G = W X^T X~ / count: both are computed once, in double, and each step costs one product.
  const MatrixD x_quantized = as_double(inputs);
  const MatrixD h_double = x_quantized.transpose() * x_quantized / static_cast<double>(count);
  const MatrixD g_double =
      as_double(weight) * (as_double(float_inputs).transpose() * x_quantized) / static_cast<double>(count);
  const MatrixF h = h_double.cast<float>(), g = g_double.cast<float>();

  // Per weight: floor(w / s) + z (the code below), the row's scale and zero point, and V with
  // h(V) = w / s - floor(w / s) (AdaRound's initialization: the soft weight starts at w).
  ArrayF floor_code(out, in), scale(out, in), zero_point(out, in), v(out, in);
  const float qmax = static_cast<float>(params[0].qmax());
  for (int64_t o = 0; o < out; ++o) {
    const QuantParams& p = params.size() == 1 ? params[0] : params[o];
    for (int64_t k = 0; k < in; ++k) {
      const float ratio = weight[o * in + k] / p.scale;
      const float lower = std::floor(ratio);
      const float fraction = std::clamp(ratio - lower, 0.0f, 1.0f);
      floor_code(o, k) = lower + static_cast<float>(p.zero_point);
      scale(o, k) = p.scale;
      zero_point(o, k) = static_cast<float>(p.zero_point);
      const float sigmoid = (fraction - kGamma) / (kZeta - kGamma);  // in (0.083, 0.917)
      v(o, k) = -std::log(1.0f / sigmoid - 1.0f);
    }
  }

  const int warmup = static_cast<int>(options.warmup * options.iterations);
  const float lambda = static_cast<float>(options.lambda);
  const float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f;  // Adam's defaults
  ArrayF first_moment = ArrayF::Zero(out, in), second_moment = ArrayF::Zero(out, in);
  MatrixF soft_weight(out, in), gradient(out, in);
  float beta1_power = 1, beta2_power = 1;
  for (int t = 0; t < options.iterations; ++t) {
    const ArrayF sigmoid = 1.0f / (1.0f + (-v).exp());
    const ArrayF stretched = sigmoid * (kZeta - kGamma) + kGamma;
    const ArrayF soft = stretched.min(1.0f).max(0.0f);
    const ArrayF code = (floor_code + soft).min(qmax).max(0.0f);
    soft_weight = (scale * (code - zero_point)).matrix();
    gradient.noalias() = soft_weight * h;
    gradient -= g;
    // d soft / d V: zero where h or the code is clipped.
    const ArrayF active = ((stretched > 0.0f) && (stretched < 1.0f) && (floor_code + soft >= 0.0f) &&
                           (floor_code + soft <= qmax)).cast<float>();
    ArrayF d_soft = 2.0f * gradient.array() * scale;
    if (t >= warmup) {
      // Regularizer lambda * sum (1 - |2h - 1|^beta), beta annealed linearly from beta_start to
      // beta_end after the warm-up (AdaRound eq. 24 and its released schedule).
      const float progress = static_cast<float>(t - warmup) / static_cast<float>(options.iterations - warmup);
      const float beta = static_cast<float>(options.beta_end +
                                            (options.beta_start - options.beta_end) * (1.0f - progress));
      const ArrayF centered = 2.0f * soft - 1.0f;
      const ArrayF magnitude = centered.abs();
      // d/dh (1 - |2h - 1|^beta) = -2 beta |2h - 1|^(beta - 1) sign(2h - 1)
      // (A floor of 1e-30 instead of select(): Eigen 3.4 does not vectorize select, and beta >= 2
      // makes the floor's power vanish.)
      const ArrayF power = ((beta - 1.0f) * magnitude.max(1e-30f).log()).exp();
      d_soft -= lambda * 2.0f * beta * power * centered.sign();
    }
    const ArrayF grad_v = d_soft * active * (kZeta - kGamma) * sigmoid * (1.0f - sigmoid);
    first_moment = beta1 * first_moment + (1.0f - beta1) * grad_v;
    second_moment = beta2 * second_moment + (1.0f - beta2) * grad_v.square();
    beta1_power *= beta1;
    beta2_power *= beta2;
    const float step = static_cast<float>(options.learning_rate) * std::sqrt(1.0f - beta2_power) /
                       (1.0f - beta1_power);
    v -= step * first_moment / (second_moment.sqrt() + epsilon);
  }

  // Hard rounding: up where h(V) >= 1/2, i.e. V >= 0 (zeta and gamma are symmetric about 1/2).
  std::vector<uint8_t> codes(weight.size());
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k) {
      const float code = floor_code(o, k) + (v(o, k) >= 0.0f ? 1.0f : 0.0f);
      codes[o * in + k] = static_cast<uint8_t>(std::clamp(code, 0.0f, qmax));
    }
  return codes;
}

}  // namespace lowbit
