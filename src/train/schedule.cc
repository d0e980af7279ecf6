// Learning-rate schedules, evaluated per optimizer step.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "lowbit/train.h"

namespace lowbit {

float scheduled_learning_rate(const Schedule& schedule, float learning_rate, int64_t step,
                              int64_t total_steps, int64_t steps_per_epoch) {
  const double lr = learning_rate, t = static_cast<double>(step);
  const double total = static_cast<double>(std::max<int64_t>(total_steps, 1));
  switch (schedule.kind) {
    case ScheduleKind::constant:
      return learning_rate;
    case ScheduleKind::step: {
      const int64_t period = std::max<int64_t>(1, schedule.step_epochs * steps_per_epoch);
      return static_cast<float>(lr * std::pow(static_cast<double>(schedule.gamma),
                                              static_cast<double>(step / period)));
    }
    case ScheduleKind::cosine:
      return static_cast<float>(lr * 0.5 * (1.0 + std::cos(std::numbers::pi * t / total)));
    case ScheduleKind::one_cycle: {
      // As torch.optim.lr_scheduler.OneCycleLR's start (lr / 25, the peak after `warmup` of the
      // steps) with linear phases, the second ending at 0 instead of lr / 25e4.
      constexpr double kStartFactor = 1.0 / 25.0;
      const double peak = std::max(1.0, std::round(static_cast<double>(schedule.warmup) * total));
      if (t < peak) return static_cast<float>(lr * (kStartFactor + (1.0 - kStartFactor) * t / peak));
      return static_cast<float>(lr * std::max(0.0, (total - t) / std::max(1.0, total - peak)));
    }
  }
  return learning_rate;
}

}  // namespace lowbit
