// Progress bar with time left, or plain lines when stderr is not a terminal.
#include "util/progress.h"

#include <unistd.h>

#include <cstdio>

namespace lowbit {

Progress::Progress(int64_t total_steps, bool enabled)
    : total_(total_steps > 0 ? total_steps : 1),
      enabled_(enabled),
      terminal_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void Progress::update(int64_t steps_done, const std::string& status) {
  if (!enabled_ || !terminal_) return;
  const auto now = std::chrono::steady_clock::now();
  if (steps_done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double fraction = static_cast<double>(steps_done) / static_cast<double>(total_);
  const double left = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(filled, '#');
  bar.resize(kWidth, '.');
  std::fprintf(stderr, "\r[%s] %3d%% %s  %.1fs left   ", bar.c_str(),
               static_cast<int>(fraction * 100), status.c_str(), left);
  std::fflush(stderr);
}

void Progress::line(const std::string& text) {
  if (!enabled_) return;
  if (terminal_) {
    std::fprintf(stderr, "\r\033[K%s\n", text.c_str());
  } else {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
}

void Progress::finish() {
  if (enabled_ && terminal_) std::fprintf(stderr, "\r\033[K");
}

}  // namespace lowbit
