// The start-up probe catches faulty kernels, dispatch skips or refuses them, and it passes every
// kernel this CPU can run.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/pixel_linear.h"
#include "kernels/probe.h"
#include "kernels/qlinear.h"
#include "lowbit/error.h"

namespace lowbit::kernels {
namespace {

const QLinearKernel& reference() { return *all_qlinear_kernels().front(); }
const PixelLinearKernel& pixel_reference() { return *all_pixel_linear_kernels().front(); }

// The reference kernel with one injected fault: `corrupt` may change the arguments before the run
// (a kernel that mishandles some input) or the outputs after it (one that computes a wrong value).
class FaultyKernel final : public QLinearKernel {
 public:
  using Fault = std::function<void(const PreparedWeights&, QLinearArgs&, bool after)>;
  // max_bits 4: a kernel that serves only 1..4 bits (as the bit-serial ones) and refuses the rest.
  FaultyKernel(const char* name, Fault fault, int max_bits = 8) : name_(name), fault_(std::move(fault)), max_bits_(max_bits) {}
  const char* name() const override { return name_; }
  bool available() const override { return true; }
  bool supports(int bits, int act_bits) const override {
    return bits >= 1 && bits <= max_bits_ && act_bits >= 1 && act_bits <= max_bits_;
  }
  std::unique_ptr<PreparedWeights> prepare(const PackedWeights& w, int act_bits) const override {
    if (!supports(w.bits, act_bits)) throw Error(std::string(name_) + ": not these widths");
    return reference().prepare(w, act_bits);
  }
  void run(const PreparedWeights& w, const QLinearArgs& args) const override {
    QLinearArgs a = args;
    fault_(w, a, false);
    reference().run(w, a);
    fault_(w, a, true);
  }

 private:
  const char* name_;
  Fault fault_;
  int max_bits_;
};

void first_output_plus_one(QLinearArgs& a) {
  if (a.y_i32) a.y_i32[0] += 1; else a.y_u8[0] ^= 1;
}

// Each fault hides in one corner that the probe must reach.
std::vector<std::unique_ptr<FaultyKernel>> faulty_kernels() {
  std::vector<std::unique_ptr<FaultyKernel>> k;
  k.push_back(std::make_unique<FaultyKernel>("wrong_at_3x5_bits", [](const PreparedWeights& w, QLinearArgs& a, bool after) {
    if (after && w.bits == 3 && a.x_zero_point >= 0 && a.batch > 0) {
      // act_bits is not in the args; 3-bit weights with inputs above 4 bits show as codes > 15.
      bool wide = false;
      for (int64_t k = 0; k < w.cols; ++k) wide = wide || a.x[k] > 15;
      if (wide) first_output_plus_one(a);
    }
  }));
  k.push_back(std::make_unique<FaultyKernel>("drops_large_acc_shift", [](const PreparedWeights&, QLinearArgs& a, bool after) {
    if (!after && a.acc_shift > 16) a.acc_shift = 16;
  }));
  k.push_back(std::make_unique<FaultyKernel>("ignores_negative_shift", [](const PreparedWeights& w, QLinearArgs& a, bool after) {
    thread_local std::vector<int32_t> shift;
    if (after) return;
    shift.assign(a.shift, a.shift + w.rows);
    for (auto& s : shift) s = s < -20 ? -20 : s;  // a kernel whose right shift stops at 20
    a.shift = shift.data();
  }));
  k.push_back(std::make_unique<FaultyKernel>("no_int32_saturation", [](const PreparedWeights& w, QLinearArgs& a, bool after) {
    if (!after || !a.y_i32) return;
    for (int64_t m = 0; m < a.batch; ++m)
      for (int64_t n = 0; n < w.rows; ++n)
        if (a.y_i32[m * a.y_stride + n] == std::numeric_limits<int32_t>::max()) a.y_i32[m * a.y_stride + n] = 0;
  }));
  k.push_back(std::make_unique<FaultyKernel>("wrong_max_zero_point", [](const PreparedWeights& w, QLinearArgs& a, bool after) {
    if (!after && a.x_zero_point > 0 && a.w_zero_point[0] == (1 << w.bits) - 1 && w.cols > 900) a.x_zero_point -= 1;
  }));
  k.push_back(std::make_unique<FaultyKernel>("wrong_in_the_fifth_row", [](const PreparedWeights&, QLinearArgs& a, bool after) {
    if (after && a.batch >= 5) {  // a tail of rows past a 4-row tile
      if (a.y_i32) a.y_i32[4 * a.y_stride] += 1; else a.y_u8[4 * a.y_stride] ^= 1;
    }
  }));
  k.push_back(std::make_unique<FaultyKernel>("wrong_past_row_32", [](const PreparedWeights&, QLinearArgs& a, bool after) {
    if (after && a.batch > 40) {  // the second 32-row block of the AMX kernel
      if (a.y_i32) a.y_i32[40 * a.y_stride] += 1; else a.y_u8[40 * a.y_stride] ^= 1;
    }
  }));
  k.push_back(std::make_unique<FaultyKernel>("writes_into_padding", [](const PreparedWeights& w, QLinearArgs& a, bool after) {
    if (after && a.y_stride > w.rows && a.y_u8) a.y_u8[w.rows] = 0;
  }));
  k.push_back(std::make_unique<FaultyKernel>("wraps_at_deepest_k", [](const PreparedWeights& w, QLinearArgs& a, bool after) {
    if (after && w.cols == kMaxInFeatures && a.y_i32) a.y_i32[0] = -a.y_i32[0];
  }));
  return k;
}

TEST(Probe, CatchesEveryInjectedFault) {
  for (const auto& kernel : faulty_kernels()) {
    SCOPED_TRACE(kernel->name());
    const std::string mismatch = probe_qlinear(*kernel, reference());
    EXPECT_NE(mismatch, "");
    EXPECT_NE(mismatch.find("case "), std::string::npos) << mismatch;
  }
}

// A kernel for 1..4 bits only is probed on the cases within its widths (it would refuse the others)
// and still has every corner of its range checked.
TEST(Probe, CatchesFaultsOfALowBitKernel) {
  std::vector<std::unique_ptr<FaultyKernel>> kernels;
  kernels.push_back(std::make_unique<FaultyKernel>("low_bit_clean", [](const PreparedWeights&, QLinearArgs&, bool) {}, 4));
  for (int bits = 1; bits <= 4; ++bits)
    for (int act_bits = 1; act_bits <= 4; ++act_bits)
      kernels.push_back(std::make_unique<FaultyKernel>("wrong_at_one_pair", [bits, act_bits](const PreparedWeights& w, QLinearArgs& a, bool after) {
        // act_bits is not in the args: recognise the pair by the largest input code.
        int largest = 0;
        for (int64_t k = 0; k < w.cols && a.batch > 0; ++k) largest = std::max<int>(largest, a.x[k]);
        if (after && a.batch > 0 && w.bits == bits && largest < (1 << act_bits) && largest >= (1 << (act_bits - 1)))
          first_output_plus_one(a);
      }, 4));
  kernels.push_back(std::make_unique<FaultyKernel>("low_bit_drops_large_acc_shift", [](const PreparedWeights&, QLinearArgs& a, bool after) {
    if (!after && a.acc_shift > 16) a.acc_shift = 16;
  }, 4));
  kernels.push_back(std::make_unique<FaultyKernel>("low_bit_no_int32_saturation", [](const PreparedWeights& w, QLinearArgs& a, bool after) {
    if (!after || !a.y_i32) return;
    for (int64_t m = 0; m < a.batch; ++m)
      for (int64_t n = 0; n < w.rows; ++n)
        if (a.y_i32[m * a.y_stride + n] == std::numeric_limits<int32_t>::max()) a.y_i32[m * a.y_stride + n] = 0;
  }, 4));
  kernels.push_back(std::make_unique<FaultyKernel>("low_bit_wraps_at_deepest_k", [](const PreparedWeights& w, QLinearArgs& a, bool after) {
    if (after && w.cols == kMaxInFeatures && w.bits > 1 && a.y_i32) a.y_i32[0] = -a.y_i32[0];
  }, 4));
  kernels.push_back(std::make_unique<FaultyKernel>("low_bit_wrong_in_threaded_batch", [](const PreparedWeights&, QLinearArgs& a, bool after) {
    if (after && a.batch > 100) first_output_plus_one(a);
  }, 4));
  EXPECT_EQ(probe_qlinear(*kernels.front(), reference()), "");
  for (size_t i = 1; i < kernels.size(); ++i) {
    SCOPED_TRACE(std::string(kernels[i]->name()) + " #" + std::to_string(i));
    const std::string mismatch = probe_qlinear(*kernels[i], reference());
    EXPECT_NE(mismatch.find("case "), std::string::npos) << mismatch;
    EXPECT_EQ(mismatch.find("refused"), std::string::npos) << mismatch;
  }
}

TEST(Probe, PassesTheReferenceAgainstItself) {
  EXPECT_EQ(probe_qlinear(reference(), reference()), "");
  EXPECT_EQ(probe_pixel_linear(pixel_reference(), pixel_reference()), "");
}

// What the dispatch runs on this CPU: every kernel the CPU has must pass (a failure here is a
// kernel bug on this CPU, the probe's whole reason to exist); the rest are skipped.
TEST(Probe, EveryAvailableKernelPassesOnThisCpu) {
  for (const QLinearKernel* kernel : all_qlinear_kernels()) {
    if (!kernel->available()) {
      std::printf("skipped %s: this CPU lacks its ISA\n", kernel->name());
      continue;
    }
    EXPECT_EQ(probe_qlinear(*kernel, reference()), "") << kernel->name();
  }
  for (const PixelLinearKernel* kernel : all_pixel_linear_kernels()) {
    if (!kernel->available()) {
      std::printf("skipped %s: this CPU lacks its ISA\n", kernel->name());
      continue;
    }
    EXPECT_EQ(probe_pixel_linear(*kernel, pixel_reference()), "") << kernel->name();
  }
}

// A pixel kernel that is right except on rows longer than 1,000 pixels.
class FaultyPixelKernel final : public PixelLinearKernel {
 public:
  const char* name() const override { return "pixel_wrong_on_long_rows"; }
  bool available() const override { return true; }
  std::unique_ptr<PreparedWeights> prepare(const PackedWeights& w, int act_bits, const PixelTable& t) const override {
    return pixel_reference().prepare(w, act_bits, t);
  }
  void run(const PreparedWeights& w, const QLinearArgs& a) const override {
    pixel_reference().run(w, a);
    if (w.cols > 1000 && a.y_u8) a.y_u8[0] ^= 1;
    if (w.cols > 1000 && a.y_i32) a.y_i32[0] += 1;
  }
};

TEST(Probe, CatchesAFaultyPixelKernel) {
  const FaultyPixelKernel faulty;
  EXPECT_NE(probe_pixel_linear(faulty, pixel_reference()), "");
}

TEST(ChooseProbedKernel, SkipsAFailingKernelAndSaysSoOnce) {
  const auto faulty = faulty_kernels();
  const std::vector<const QLinearKernel*> candidates = {faulty[1].get(), &reference()};
  std::ostringstream log;
  const QLinearKernel& chosen =
      choose_probed_kernel(candidates, "LOWBIT_KERNEL", nullptr, "qlinear_u8_", probe_qlinear, log);
  EXPECT_EQ(&chosen, &reference());
  const std::string said = log.str();
  EXPECT_NE(said.find("not using drops_large_acc_shift"), std::string::npos) << said;
  EXPECT_NE(said.find("acc_shift=24"), std::string::npos) << said;  // the first mismatch, named
  EXPECT_EQ(said.find('\n'), said.size() - 1) << said;               // one line
}

TEST(ChooseProbedKernel, TakesTheFirstKernelThatPasses) {
  const auto faulty = faulty_kernels();
  const FaultyKernel good("good", [](const PreparedWeights&, QLinearArgs&, bool) {});
  const std::vector<const QLinearKernel*> candidates = {faulty[0].get(), &good, &reference()};
  std::ostringstream log;
  EXPECT_EQ(&choose_probed_kernel(candidates, "LOWBIT_KERNEL", "", "qlinear_u8_", probe_qlinear, log), &good);
  EXPECT_NE(log.str().find("wrong_at_3x5_bits"), std::string::npos);
}

TEST(ChooseProbedKernel, ForcingAFailingKernelIsAnError) {
  const auto faulty = faulty_kernels();
  const std::vector<const QLinearKernel*> candidates = {faulty[2].get(), &reference()};
  std::ostringstream log;
  try {
    choose_probed_kernel(candidates, "LOWBIT_KERNEL", "ignores_negative_shift", "qlinear_u8_", probe_qlinear, log);
    FAIL() << "forcing a kernel that fails the probe must throw";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("LOWBIT_KERNEL=ignores_negative_shift"), std::string::npos) << what;
    EXPECT_NE(what.find("disagrees with qlinear_u8_ref"), std::string::npos) << what;
  }
  EXPECT_THROW(choose_probed_kernel(candidates, "LOWBIT_KERNEL", "fast", "qlinear_u8_", probe_qlinear, log), Error);
  // The reference, forced, needs no probe.
  EXPECT_EQ(&choose_probed_kernel(candidates, "LOWBIT_KERNEL", "ref", "qlinear_u8_", probe_qlinear, log), &reference());
}

// Wall and CPU time of this thread: on a shared machine the CPU time is the probe's own work.
class Timer {
 public:
  Timer() : wall_(std::chrono::steady_clock::now()), cpu_(cpu_ms()) {}
  void print(const char* name) const {
    const double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wall_).count();
    std::printf("probe %s: %.2f ms wall, %.2f ms CPU\n", name, wall, cpu_ms() - cpu_);
  }

 private:
  static double cpu_ms() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
  }
  std::chrono::steady_clock::time_point wall_;
  double cpu_;
};

// The probe's cost at start-up, printed for docs/kernels.md (no time limit is asserted).
TEST(Probe, ReportsItsCost) {
  for (const QLinearKernel* kernel : all_qlinear_kernels()) {
    if (!kernel->available()) continue;
    const Timer timer;
    const std::string mismatch = probe_qlinear(*kernel, reference());
    timer.print(kernel->name());
    EXPECT_EQ(mismatch, "");
  }
  for (const PixelLinearKernel* kernel : all_pixel_linear_kernels()) {
    if (!kernel->available()) continue;
    const Timer timer;
    const std::string mismatch = probe_pixel_linear(*kernel, pixel_reference());
    timer.print(kernel->name());
    EXPECT_EQ(mismatch, "");
  }
}

}  // namespace
}  // namespace lowbit::kernels
