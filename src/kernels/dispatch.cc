// The one place that picks kernels: CPUID at run time, or LOWBIT_KERNEL / LOWBIT_PIXEL_KERNEL /
// LOWBIT_OPS_KERNEL to force one; either way a kernel runs only after the start-up probe (probe.h)
// passed on this CPU.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "kernels/integer_ops.h"
#include "kernels/integer_ops_simd.h"
#include "kernels/pixel_linear.h"
#include "kernels/probe.h"
#include "kernels/qlinear_impl.h"
#include "lowbit/error.h"

namespace lowbit::kernels {

const std::vector<const QLinearKernel*>& all_qlinear_kernels() {
  static const std::vector<const QLinearKernel*> kernels = {
      &qlinear_u8_ref(), &qlinear_u8_avx2(), &qlinear_u8_avx512vnni()};
  return kernels;
}

const std::vector<const IntegerOpsKernel*>& all_integer_ops_kernels() {
  static const IntegerOpsKernel ref = {"integer_ops_u8_ref", [] { return true; }, &pixels_to_codes, &im2col,
                                       &max_pool, &avg_pool, &add, &relu};
  static const IntegerOpsKernel avx2 = {"integer_ops_u8_avx2", &cpu_has_avx2, &pixels_to_codes_u8__avx2,
                                        &im2col_u8__avx2, &max_pool_u8__avx2, &avg_pool_u8__avx2,
                                        &add_u8__avx2, &relu_u8__avx2};
  static const IntegerOpsKernel avx512 = {"integer_ops_u8_avx512", &cpu_has_avx512bw, &pixels_to_codes_u8__avx512,
                                          &im2col_u8__avx512, &max_pool_u8__avx512, &avg_pool_u8__avx512,
                                          &add_u8__avx512, &relu_u8__avx512};
  static const std::vector<const IntegerOpsKernel*> kernels = {&ref, &avx2, &avx512};
  return kernels;
}

namespace {

const IntegerOpsKernel& choose_integer_ops() {
  const auto& all = all_integer_ops_kernels();  // ref, avx2, avx512
  const std::vector<const IntegerOpsKernel*> candidates(all.rbegin(), all.rend());
  const char* forced = std::getenv("LOWBIT_OPS_KERNEL");
  // Unforced, LOWBIT_KERNEL=ref (or no SIMD qlinear kernel passing) runs the whole engine as reference code.
  if (!(forced && *forced) && &best_qlinear_kernel() == &qlinear_u8_ref()) return *all.front();
  return choose_probed_kernel(candidates, "LOWBIT_OPS_KERNEL", forced, "integer_ops_u8_", probe_integer_ops,
                              std::cerr);
}

const QLinearKernel& choose_kernel() {
  // Fastest first; each is probed against the reference before its first use (probe.h).
  const std::vector<const QLinearKernel*> candidates = {&qlinear_u8_avx512vnni(), &qlinear_u8_avx2(),
                                                        &qlinear_u8_ref()};
  return choose_probed_kernel(candidates, "LOWBIT_KERNEL", std::getenv("LOWBIT_KERNEL"), "qlinear_u8_",
                              probe_qlinear, std::cerr);
}

const PixelLinearKernel& choose_pixel_kernel() {
  const auto& all = all_pixel_linear_kernels();  // ref, avx2, avx512vnni, sparse_only_avx2, sparse_avx2
  const PixelLinearKernel& reference = *all.front();
  const char* forced = std::getenv("LOWBIT_PIXEL_KERNEL");
  if (forced && *forced) {
    std::vector<const PixelLinearKernel*> candidates(all.rbegin(), all.rend());
    return choose_probed_kernel(candidates, "LOWBIT_PIXEL_KERNEL", forced, "pixel_linear_", probe_pixel_linear,
                                std::cerr);
  }
  // The sparse kernel (its dense chunks run best_qlinear_kernel()), then map + the chosen qlinear
  // kernel; LOWBIT_KERNEL=ref, or no qlinear kernel but the reference passing, gives the reference.
  const QLinearKernel& qlinear = best_qlinear_kernel();
  if (&qlinear == &qlinear_u8_ref()) return reference;
  const std::vector<const PixelLinearKernel*> candidates = {all.back(), &pixel_linear_mapped(qlinear), &reference};
  return choose_probed_kernel(candidates, "LOWBIT_PIXEL_KERNEL", nullptr, "pixel_linear_", probe_pixel_linear,
                              std::cerr);
}

}  // namespace

// CPU feature checks live here only; each kernel's available() asks these.
bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("bmi2");
}

bool cpu_has_avx512vnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

bool cpu_has_avx512bw() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}

const IntegerOpsKernel& best_integer_ops_kernel() {
  static const IntegerOpsKernel& chosen = choose_integer_ops();
  return chosen;
}

const QLinearKernel& best_qlinear_kernel() {
  // Chosen once, thread-safely; a bad LOWBIT_KERNEL throws, and throws again on the next call
  // (a static whose initializer throws stays uninitialized).
  static const QLinearKernel& chosen = choose_kernel();
  return chosen;
}

const PixelLinearKernel& best_pixel_linear_kernel() {
  static const PixelLinearKernel& chosen = choose_pixel_kernel();
  return chosen;
}

}  // namespace lowbit::kernels
