// The one place that picks kernels: CPUID at run time, or LOWBIT_KERNEL / LOWBIT_PIXEL_KERNEL /
// LOWBIT_OPS_KERNEL to force one; either way a kernel runs only after the start-up probe (probe.h)
// passed on this CPU.
#include <sys/syscall.h>
#include <unistd.h>

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
      &qlinear_u8_ref(),           &qlinear_u8_avx2(),           &qlinear_u8_avx512vnni(),
      &qlinear_u8_amx(),           &qlinear_u8_bitserial_popcnt(), &qlinear_u8_bitserial_avx2(),
      &qlinear_u8_bitserial_avx512vpopcnt()};
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
  // Fastest first; each is probed against the reference before its first use (probe.h). The
  // bit-serial kernels run only 1..4-bit layers: LOWBIT_KERNEL may name one, CPUID never picks one
  // for every layer (qlinear_kernel_for picks them per layer).
  const char* forced = std::getenv("LOWBIT_KERNEL");
  std::vector<const QLinearKernel*> candidates = {&qlinear_u8_amx(), &qlinear_u8_avx512vnni(), &qlinear_u8_avx2(),
                                                  &qlinear_u8_ref()};
  if (forced && *forced)
    candidates.insert(candidates.begin(), {&qlinear_u8_bitserial_avx512vpopcnt(), &qlinear_u8_bitserial_avx2(),
                                           &qlinear_u8_bitserial_popcnt()});
  return choose_probed_kernel(candidates, "LOWBIT_KERNEL", forced, "qlinear_u8_", probe_qlinear, std::cerr);
}

// The bit-serial kernel of this CPU, probed once over every pair it serves; the reference if none passes.
const QLinearKernel& choose_bitserial_kernel() {
  const std::vector<const QLinearKernel*> candidates = {
      &qlinear_u8_bitserial_avx512vpopcnt(), &qlinear_u8_bitserial_avx2(), &qlinear_u8_bitserial_popcnt(),
      &qlinear_u8_ref()};
  return choose_probed_kernel(candidates, "LOWBIT_KERNEL", nullptr, "qlinear_u8_", probe_qlinear, std::cerr);
}

// Where `bitserial` measured faster than `general` on resnet20's convolution shapes
// (bench_qlinear_bitserial, docs/kernels.md "Bit-serial kernels"): its cost grows with
// bits * act_bits plane pairs, the general kernels' does not.
bool bitserial_faster(const QLinearKernel& bitserial, const QLinearKernel& general, int bits, int act_bits) {
  if (&general == &qlinear_u8_ref()) return true;
  const int pairs = bits * act_bits;
  // AMX runs every width at the int8 rate: 1.0-3.9x the VNNI kernel on these shapes, more than the
  // bit-serial kernel's 1.1-1.5x at W1A1 (docs/kernels.md), so it keeps every layer.
  if (&general == &qlinear_u8_amx()) return false;
  if (&bitserial == &qlinear_u8_bitserial_avx512vpopcnt()) return pairs <= 2;  // W1A1, W1A2, W2A1
  // qlinear_u8_bitserial_avx2 measured slower than qlinear_u8_avx2 at every pair: forced only.
  if (&bitserial == &qlinear_u8_bitserial_avx2()) return false;
  return false;
}

const PixelLinearKernel& choose_pixel_kernel() {
  const auto& all = all_pixel_linear_kernels();  // ref, avx2, avx512vnni, amx, sparse_only_avx2, sparse_avx2
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

bool cpu_has_amx() {
  // Asked once per process (a thread-safe static): Linux keeps the 8 KiB tile data state off until
  // a process requests it, and an AMX instruction before that raises SIGILL.
  static const bool granted = [] {
    __builtin_cpu_init();
    if (!cpu_has_avx512vnni() || !__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-int8"))
      return false;
#if defined(__linux__) && defined(SYS_arch_prctl)
    constexpr long kArchReqXcompPerm = 0x1023;  // ARCH_REQ_XCOMP_PERM (asm/prctl.h, Linux 5.16)
    constexpr long kXfeatureXtiledata = 18;     // XFEATURE_XTILEDATA
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
    return false;
#endif
  }();
  return granted;
}

bool cpu_has_popcnt() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("popcnt");
}

bool cpu_has_avx512vpopcnt() {
  __builtin_cpu_init();
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq");
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

const QLinearKernel& qlinear_kernel_for(int bits, int act_bits) {
  const QLinearKernel& best = best_qlinear_kernel();
  const char* forced = std::getenv("LOWBIT_KERNEL");
  if (forced && *forced) {
    // Forcing is for measuring and debugging one kernel: running another on the layers it cannot
    // take would make the figures lie, so it is refused.
    if (!best.supports(bits, act_bits))
      throw Error(std::string("LOWBIT_KERNEL=") + forced + ": " + best.name() + " cannot run a layer of " +
                  std::to_string(bits) + "-bit weights and " + std::to_string(act_bits) +
                  "-bit activations (it runs 1..4 bits of each); unset LOWBIT_KERNEL to choose per layer");
    return best;
  }
  static const QLinearKernel& bitserial = choose_bitserial_kernel();
  if (&bitserial != &qlinear_u8_ref() && bitserial.supports(bits, act_bits) &&
      bitserial_faster(bitserial, best, bits, act_bits))
    return bitserial;
  return best;
}

const PixelLinearKernel& best_pixel_linear_kernel() {
  static const PixelLinearKernel& chosen = choose_pixel_kernel();
  return chosen;
}

}  // namespace lowbit::kernels
