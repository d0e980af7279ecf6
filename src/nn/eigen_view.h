// Eigen views of lowbit tensors: row-major maps, no copies.
#pragma once

#include <Eigen/Core>

#include "lowbit/tensor.h"

namespace lowbit {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixView = Eigen::Map<RowMatrix>;
using ConstMatrixView = Eigen::Map<const RowMatrix>;
using VectorView = Eigen::Map<Eigen::VectorXf>;
using ConstVectorView = Eigen::Map<const Eigen::VectorXf>;

// The tensor as a [dim(0), row_size()] matrix.
inline MatrixView as_matrix(Tensor& t) { return MatrixView(t.data(), t.dim(0), t.row_size()); }
inline ConstMatrixView as_matrix(const Tensor& t) {
  return ConstMatrixView(t.data(), t.dim(0), t.row_size());
}
inline VectorView as_vector(Tensor& t) { return VectorView(t.data(), t.size()); }
inline ConstVectorView as_vector(const Tensor& t) { return ConstVectorView(t.data(), t.size()); }

}  // namespace lowbit
