// Reads a file that may or may not be gzipped (zlib inflates .gz and passes raw bytes through),
// turning every failure into a one-line lowbit::Error that names the file.
#pragma once

#include <cstdint>
#include <string>

namespace lowbit::data {

class GzReader {
 public:
  // Throws "<path>: cannot open: <reason>" when the file is missing, unreadable or not a file.
  // zlib inflates ahead of what is read by up to twice `buffer_bytes`, so corrupt data is found
  // up to that far before it is reached; readers that say where it was choose a small buffer.
  explicit GzReader(const std::string& path, unsigned buffer_bytes = 1 << 17);
  ~GzReader();
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to `size` bytes; fewer only at the end of the data. Throws on a corrupt gzip stream;
  // a stream cut short throws only once every byte before the cut has been returned.
  int64_t read(void* buffer, int64_t size);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  void* file_ = nullptr;  // gzFile; void* keeps zlib.h out of this header
};

}  // namespace lowbit::data
