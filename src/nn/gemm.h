// The one float matrix product every layer uses, with a summation order fixed by the shapes alone.
#pragma once

#include <cstdint>

namespace lowbit {

// c = op(a) op(b), or c += op(a) op(b) when `accumulate`. Row-major throughout: op(a) is [m, k]
// (a is stored [m, k] with row stride lda, or [k, m] when transpose_a), op(b) is [k, n] (b stored
// [k, n], or [n, k] when transpose_b), c is [m, n] with row stride ldc.
//
// Always Eigen's blocked GEMM kernel, single-threaded, blocked by (m, n, k) and the CPU's cache
// sizes only: no fallback to GEMV for one row or column, no coefficient-wise product for small
// shapes, no threading. The kernel packs both operands into aligned buffers first, so the order
// in which each element of c is summed depends on (m, n, k) and nothing else: not on the thread
// count, not on where the buffers happen to be aligned. For m, n > 1 and m + n + k >= 20 this is
// exactly the kernel Eigen's `c.noalias() = a * b` runs, so results equal that expression's.
void gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool transpose_a,
          const float* b, int64_t ldb, bool transpose_b, float* c, int64_t ldc, bool accumulate);

}  // namespace lowbit
