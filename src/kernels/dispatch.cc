// The one place that picks kernels: CPUID at run time, or LOWBIT_KERNEL / LOWBIT_PIXEL_KERNEL to force one.
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/pixel_linear.h"
#include "kernels/qlinear_impl.h"
#include "lowbit/error.h"

namespace lowbit::kernels {

const std::vector<const QLinearKernel*>& all_qlinear_kernels() {
  static const std::vector<const QLinearKernel*> kernels = {
      &qlinear_u8_ref(), &qlinear_u8_avx2(), &qlinear_u8_avx512vnni()};
  return kernels;
}

namespace {

const QLinearKernel& choose_kernel() {
  const char* forced = std::getenv("LOWBIT_KERNEL");
  if (forced && *forced) {
    const std::string wanted = forced;
    for (const QLinearKernel* kernel : all_qlinear_kernels()) {
      const std::string name = kernel->name();
      if (name != wanted && name != "qlinear_u8_" + wanted) continue;
      if (!kernel->available())
        throw Error("LOWBIT_KERNEL=" + wanted + ": this CPU cannot run " + name);
      return *kernel;
    }
    throw Error("LOWBIT_KERNEL=" + wanted + " is not one of ref, avx2, avx512vnni");
  }
  // Fastest first.
  if (qlinear_u8_avx512vnni().available()) return qlinear_u8_avx512vnni();
  if (qlinear_u8_avx2().available()) return qlinear_u8_avx2();
  return qlinear_u8_ref();
}

const PixelLinearKernel& choose_pixel_kernel() {
  const char* forced = std::getenv("LOWBIT_PIXEL_KERNEL");
  if (forced && *forced) {
    const std::string wanted = forced;
    for (const PixelLinearKernel* kernel : all_pixel_linear_kernels()) {
      const std::string name = kernel->name();
      if (name != wanted && name != "pixel_linear_" + wanted) continue;
      if (!kernel->available()) throw Error("LOWBIT_PIXEL_KERNEL=" + wanted + ": this CPU cannot run " + name);
      return *kernel;
    }
    throw Error("LOWBIT_PIXEL_KERNEL=" + wanted + " is not one of ref, avx2, avx512vnni, sparse_only_avx2, sparse_avx2");
  }
  // The sparse kernel needs only AVX2, which every CPU with a non-reference qlinear kernel has.
  const auto& kernels = all_pixel_linear_kernels();
  if (&best_qlinear_kernel() == &qlinear_u8_ref() || !kernels.back()->available()) return *kernels.front();
  return *kernels.back();
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
