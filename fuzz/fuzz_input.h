// What every fuzz target shares: the input as a file (lowbit's parsers read paths), and the rule
// that a parser may reject input only with lowbit::Error; any other exception, a crash, a leak or
// undefined behaviour is a finding.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
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

}  // namespace lowbit::fuzz
