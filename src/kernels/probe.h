// The start-up probe: a kernel is used only after it has matched the reference on the running CPU.
//
// A kernel that compiles right can still compute wrong on a CPU the developers never ran it on
// (GCC 12 once miscompiled a blend under AVX-512BW+VL; docs/kernels.md, "Start-up probe"). So the
// first time dispatch.cc picks a kernel, by CPUID or because an environment variable forces it,
// it runs a fixed set of small layers through that kernel and through the reference and compares
// every output byte. The cases cover every weight x activation bit-width pair, zero and maximal
// zero points, saturated inputs, positive and negative requantization shifts, multipliers at both
// ends of their range, saturating int32 outputs, the u8 clamp, strides, threaded batches, the
// large-layer weight path, and for the pixel kernels one and three channels, every density, the
// identity and increasing tables and int16 sums at their bound.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "kernels/integer_ops.h"
#include "kernels/pixel_linear.h"
#include "kernels/qlinear.h"
#include "lowbit/error.h"

namespace lowbit::kernels {

// "" when `kernel` agrees with `reference` on every probe case, else the first mismatch in words
// ("case 12 (wbits=3 abits=5 K=67 N=19 u8 zero points max): y[1][7] = 12, reference 13").
std::string probe_qlinear(const QLinearKernel& kernel, const QLinearKernel& reference);
std::string probe_pixel_linear(const PixelLinearKernel& kernel, const PixelLinearKernel& reference);
// The CNN operators (probe_integer_ops.cc): every operator of the set on awkward shapes (odd
// channels, windows, strides and padding, global pools of more than 256 cells), zero points 0 and
// 255, saturated sums, extreme multipliers; each output's margin must stay untouched.
std::string probe_integer_ops(const IntegerOpsKernel& kernel, const IntegerOpsKernel& reference);

// The kernel to use, from `fastest_first` (ends with the reference, which is never probed).
// forced (an environment variable's value, may be null or empty) names one by full name or by the
// part after `prefix`; it must exist, be available and pass the probe, else lowbit::Error. With
// nothing forced: the first available candidate that passes, and every one that fails is reported
// on `log` in one line, naming it and its first mismatch.
template <typename Kernel, typename Probe>
const Kernel& choose_probed_kernel(const std::vector<const Kernel*>& fastest_first, const char* env_name,
                                   const char* forced, const std::string& prefix, Probe probe,
                                   std::ostream& log) {
  const Kernel& reference = *fastest_first.back();
  if (forced && *forced) {
    const std::string wanted = forced;
    std::string names;
    for (const Kernel* kernel : fastest_first) {
      const std::string name = kernel->name();
      names += (names.empty() ? "" : ", ") + name.substr(name.rfind(prefix, 0) == 0 ? prefix.size() : 0);
      if (name != wanted && name != prefix + wanted) continue;
      if (!kernel->available()) throw Error(std::string(env_name) + "=" + wanted + ": this CPU cannot run " + name);
      if (kernel == &reference) return *kernel;
      const std::string mismatch = probe(*kernel, reference);
      if (!mismatch.empty())
        throw Error(std::string(env_name) + "=" + wanted + ": " + name + " disagrees with " + reference.name() +
                    " on this CPU, " + mismatch);
      return *kernel;
    }
    throw Error(std::string(env_name) + "=" + wanted + " is not one of " + names);
  }
  for (const Kernel* kernel : fastest_first) {
    if (!kernel->available()) continue;
    if (kernel == &reference) return *kernel;
    const std::string mismatch = probe(*kernel, reference);
    if (mismatch.empty()) return *kernel;
    log << "lowbit: not using " << kernel->name() << ": it disagrees with " << reference.name()
        << " on this CPU, " << mismatch << "\n";
  }
  return reference;
}

}  // namespace lowbit::kernels
