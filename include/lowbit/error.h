// The one exception type lowbit throws for bad input: its message is a single line that names
// the file or flag and what was wrong.
#pragma once

#include <stdexcept>
#include <string>

namespace lowbit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace lowbit
