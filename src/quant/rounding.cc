// Weight rounding to codes: nearest, and GPTQ's Hessian-aware error feedback.
#include "quant/rounding.h"

#include <algorithm>
#include <numeric>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "lowbit/error.h"

namespace lowbit {
namespace {

using MatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

const QuantParams& row_params(const std::vector<QuantParams>& params, int64_t row) {
  return params.size() == 1 ? params[0] : params[row];
}

// H = 2 X^T X + damp I, damp = kGptqDampening * mean(diag H).
MatrixD dampened_hessian(const Tensor& inputs, int64_t in) {
  MatrixD x(inputs.dim(0), in);
  for (int64_t i = 0; i < x.rows(); ++i)
    for (int64_t k = 0; k < in; ++k) x(i, k) = inputs[i * in + k];
  MatrixD h = 2.0 * (x.transpose() * x);
  for (int64_t k = 0; k < in; ++k)
    if (h(k, k) == 0) h(k, k) = 1;
  const double damp = kGptqDampening * h.diagonal().mean();
  h.diagonal().array() += damp;
  return h;
}

}  // namespace

std::vector<uint8_t> round_to_nearest(const Tensor& weight, const std::vector<QuantParams>& params) {
  const int64_t out = weight.dim(0), in = weight.row_size();
  std::vector<uint8_t> codes(weight.size());
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k)
      codes[o * in + k] = static_cast<uint8_t>(row_params(params, o).quantize(weight[o * in + k]));
  return codes;
}

std::vector<uint8_t> round_with_gptq(const Tensor& weight, const std::vector<QuantParams>& params,
                                     const Tensor& inputs) {
  const int64_t out = weight.dim(0), in = weight.row_size();
  if (inputs.row_size() != in) throw Error("GPTQ: inputs do not match the weight's columns");
  const MatrixD unordered = dampened_hessian(inputs, in);
  // "act order" (GPTQ repository): the columns whose inputs carry the most energy go first,
  // while the most later columns remain to absorb their error. Ties keep index order.
  std::vector<int64_t> order(in);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return unordered(a, a) > unordered(b, b);
  });
  MatrixD h(in, in);
  for (int64_t i = 0; i < in; ++i)
    for (int64_t j = 0; j < in; ++j) h(i, j) = unordered(order[i], order[j]);
  const MatrixD h_inverse = h.llt().solve(MatrixD::Identity(in, in));
  Eigen::LLT<MatrixD> factor(h_inverse);
  if (factor.info() != Eigen::Success) throw Error("GPTQ: inverse Hessian is not positive definite");
  const MatrixD u = factor.matrixU();
  MatrixD w(out, in);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k) w(o, k) = weight[o * in + order[k]];
  std::vector<uint8_t> codes(weight.size());
  for (int64_t k = 0; k < in; ++k) {
    for (int64_t o = 0; o < out; ++o) {
      const QuantParams& p = row_params(params, o);
      const int32_t q = p.quantize(static_cast<float>(w(o, k)));
      codes[o * in + order[k]] = static_cast<uint8_t>(q);
      const double error = (w(o, k) - p.dequantize(q)) / u(k, k);
      w.row(o).tail(in - k - 1) -= error * u.row(k).tail(in - k - 1);
    }
  }
  return codes;
}

}  // namespace lowbit
