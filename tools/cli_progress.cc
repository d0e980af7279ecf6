// Step counts of long commands, shown as util/progress's bar or as occasional plain lines.
#include "cli_progress.h"

#include <unistd.h>

#include <cstdio>

#include "cli_common.h"

namespace lowbit::cli {

StepProgress::StepProgress(std::string what)
    : what_(std::move(what)),
      enabled_(!quiet()),
      terminal_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

StepProgress::~StepProgress() {
  if (bar_) bar_->finish();
}

void StepProgress::operator()(size_t done, size_t total) {
  if (!enabled_ || total == 0) return;
  const std::string status = what_ + " " + std::to_string(done) + "/" + std::to_string(total);
  if (terminal_) {
    if (!bar_) bar_ = std::make_unique<Progress>(static_cast<int64_t>(total), true);
    bar_->update(static_cast<int64_t>(done), status);
    return;
  }
  // Plain lines only for work that has taken a second: a log of a fast run stays clean.
  const int tenth = static_cast<int>(10 * done / total);
  if (tenth <= last_tenth_ || done == 0) return;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (seconds < 1) return;
  last_tenth_ = tenth;
  std::fprintf(stderr, "%s (%d%%, %.1fs)\n", status.c_str(), static_cast<int>(100 * done / total),
               seconds);
}

}  // namespace lowbit::cli
