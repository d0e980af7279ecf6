// Training progress on stderr: a live bar on a terminal, one plain line per epoch otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lowbit {

class Progress {
 public:
  Progress(int64_t total_steps, bool enabled);
  // Redraws the bar (at most ~10 times a second) with `status`, e.g. "epoch 3/10 loss 0.21".
  void update(int64_t steps_done, const std::string& status);
  // Ends an epoch: a plain line when not on a terminal.
  void line(const std::string& text);
  void finish();

 private:
  int64_t total_;
  bool enabled_, terminal_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace lowbit
