// Per-step wall clocks for QuantizedModel::timed_logits (`lowbit bench --layers`); off, a branch per step.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

namespace lowbit {

// One per chunk of images: lap(s) charges the time since the previous lap (or construction) to
// step s. The destructor adds the chunk's times into the shared per-step seconds, one thread at a
// time. With shared == nullptr it reads no clock and allocates nothing.
class StepTimer {
 public:
  StepTimer(double* shared, size_t steps) : shared_(shared) {
    if (!shared_) return;
    local_.assign(steps, 0.0);
    last_ = Clock::now();
  }
  StepTimer(const StepTimer&) = delete;
  StepTimer& operator=(const StepTimer&) = delete;
  ~StepTimer() {
    if (!shared_) return;
#pragma omp critical(lowbit_step_timer)
    for (size_t s = 0; s < local_.size(); ++s) shared_[s] += local_[s];
  }
  void lap(int step) {
    if (!shared_) return;
    const Clock::time_point now = Clock::now();
    local_[static_cast<size_t>(step)] += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  using Clock = std::chrono::steady_clock;
  double* shared_;
  std::vector<double> local_;
  Clock::time_point last_;
};

}  // namespace lowbit
