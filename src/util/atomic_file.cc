// All-or-nothing file writes through a temporary file and rename(2).
#include "lowbit/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "lowbit/error.h"

namespace lowbit {
namespace {

std::string temp_name(const std::string& path) {
  return path + ".tmp." + std::to_string(::getpid());
}

}  // namespace

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicPath out(path);
  {
    std::ofstream file(out.temp_path(), std::ios::binary | std::ios::trunc);
    if (!file) throw Error(path + ": cannot create file: " + std::strerror(errno));
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    file.flush();
    if (!file) throw Error(path + ": write failed: " + std::strerror(errno));
  }
  out.commit();
}

void ensure_writable_dir(const std::string& dir, const std::string& flag) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(flag + " " + dir + ": cannot create directory: " + ec.message());
  if (!fs::is_directory(dir)) throw Error(flag + " " + dir + ": not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw Error(flag + " " + dir + ": directory is not writable: " + std::strerror(errno));
}

AtomicPath::AtomicPath(std::string path) : path_(std::move(path)), temp_(temp_name(path_)) {}

AtomicPath::~AtomicPath() {
  if (!committed_) std::remove(temp_.c_str());
}

void AtomicPath::commit() {
  if (std::rename(temp_.c_str(), path_.c_str()) != 0)
    throw Error(path_ + ": cannot write file: " + std::strerror(errno));
  committed_ = true;
}

}  // namespace lowbit
