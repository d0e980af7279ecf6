// Progress of a long command on stderr: a live bar on a terminal; otherwise, once the work has
// taken a second, a plain line each tenth of it; nothing with --quiet.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "util/progress.h"

namespace lowbit::cli {

class StepProgress {
 public:
  // what: the work being counted, e.g. "sweep rows" (the line says "sweep rows 8/72").
  explicit StepProgress(std::string what);
  ~StepProgress();
  // Not thread-safe: callers on several threads serialize their calls.
  void operator()(size_t done, size_t total);

 private:
  std::string what_;
  bool enabled_, terminal_;
  int last_tenth_ = 0;
  std::unique_ptr<Progress> bar_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace lowbit::cli
