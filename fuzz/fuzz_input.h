// What every fuzz target shares: the input as a file (lowbit's parsers read paths), and the rule
// that a parser may reject input only with lowbit::Error; any other exception, a crash, a leak or
// undefined behaviour is a finding.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "lowbit/error.h"

namespace lowbit::fuzz {

// A per-process scratch file under /tmp (or $TMPDIR) holding exactly `data`.
inline std::string write_input(const uint8_t* data, size_t size, const char* suffix = ".bin") {
  const char* dir = std::getenv("TMPDIR");
  const std::string path = std::string(dir && *dir ? dir : "/tmp") + "/lowbit-fuzz-" +
                           std::to_string(getpid()) + suffix;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// Runs parse(); a lowbit::Error is the one allowed way to refuse the input.
template <typename Parse>
void expect_clean(Parse&& parse) {
  try {
    parse();
  } catch (const Error&) {
  }
}

// How many inputs a target ran and how many of them loaded (got past every check of the loader).
// With LOWBIT_FUZZ_LOAD_STATS set, printed at exit as one line on stderr, e.g.
//   load stats: fuzz_lbq loaded 1234 of 5678 inputs (21.7 %)
// so that scripts/fuzz.sh can report how much of what the fuzzer tried reached the code behind
// the header (libFuzzer exits through exit(), which runs this destructor).
class LoadStats {
 public:
  explicit LoadStats(const char* target) : target_(target) {}
  ~LoadStats() {
    if (!std::getenv("LOWBIT_FUZZ_LOAD_STATS")) return;
    std::fprintf(stderr, "load stats: %s loaded %llu of %llu inputs (%.1f %%)\n", target_, loaded_, runs_,
                 runs_ ? 100.0 * static_cast<double>(loaded_) / static_cast<double>(runs_) : 0.0);
  }
  void ran() { ++runs_; }
  void loaded() { ++loaded_; }

 private:
  const char* target_;
  unsigned long long runs_ = 0, loaded_ = 0;
};

}  // namespace lowbit::fuzz
