// Writing output files all-or-nothing: to a temporary file beside the target, then rename.
#pragma once

#include <string>
#include <string_view>

namespace lowbit {

// Writes `bytes` to `path` atomically. Throws lowbit::Error naming `path` if it cannot.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Makes sure `dir` exists (creating parents) and that a file can be created in it.
// Throws lowbit::Error naming `flag` and `dir` otherwise.
void ensure_writable_dir(const std::string& dir, const std::string& flag);

// A temporary path beside `path` for writers that need a file name (plotting libraries),
// renamed over `path` by commit(); removed by the destructor if commit() never ran.
class AtomicPath {
 public:
  explicit AtomicPath(std::string path);
  ~AtomicPath();
  AtomicPath(const AtomicPath&) = delete;
  AtomicPath& operator=(const AtomicPath&) = delete;
  const std::string& temp_path() const { return temp_; }
  void commit();

 private:
  std::string path_, temp_;
  bool committed_ = false;
};

}  // namespace lowbit
