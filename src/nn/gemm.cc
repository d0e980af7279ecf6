// gemm() through Eigen's internal GEMM entry point, which the public product expressions reach only
// for some shapes (see gemm.h).
#include "nn/gemm.h"

#include <algorithm>

#include <Eigen/Core>

// The entry point below is Eigen's internal API; its signature is that of the 3.4 series.
#if !EIGEN_VERSION_AT_LEAST(3, 4, 0) || EIGEN_VERSION_AT_LEAST(3, 4, 90)
#error "nn/gemm.cc calls Eigen 3.4's internal GEMM; check its signature for this Eigen version"
#endif

namespace lowbit {
namespace {

// Eigen 3.4's level-3 product: what `Map<RowMajor> c; c.noalias() += op(a) * op(b)` calls after
// its shape heuristics. A row-major a is a RowMajor lhs; a transposed row-major a is ColMajor.
template <int AOrder, int BOrder>
void eigen_gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                int64_t ldb, float* c, int64_t ldc) {
  using Index = Eigen::Index;
  using Blocking = Eigen::internal::gemm_blocking_space<Eigen::RowMajor, float, float, Eigen::Dynamic,
                                                         Eigen::Dynamic, Eigen::Dynamic>;
  using Product = Eigen::internal::general_matrix_matrix_product<Index, float, AOrder, false, float,
                                                                  BOrder, false, Eigen::RowMajor, 1>;
  // Blocking for one thread, as Eigen's serial path builds it.
  Blocking blocking(m, n, k, 1, true);
  Product::run(m, n, k, a, lda, b, ldb, c, 1, ldc, 1.0f, blocking, nullptr);
}

}  // namespace

void gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool transpose_a,
          const float* b, int64_t ldb, bool transpose_b, float* c, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (!accumulate)
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
  if (k <= 0) return;
  constexpr int R = Eigen::RowMajor, C = Eigen::ColMajor;
  if (!transpose_a && !transpose_b) eigen_gemm<R, R>(m, n, k, a, lda, b, ldb, c, ldc);
  else if (!transpose_a && transpose_b) eigen_gemm<R, C>(m, n, k, a, lda, b, ldb, c, ldc);
  else if (transpose_a && !transpose_b) eigen_gemm<C, R>(m, n, k, a, lda, b, ldb, c, ldc);
  else eigen_gemm<C, C>(m, n, k, a, lda, b, ldb, c, ldc);
}

}  // namespace lowbit
