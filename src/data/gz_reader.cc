// GzReader: open with POSIX so errno says why it failed, then let zlib read through gzdopen.
#include "data/gz_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "lowbit/error.h"

namespace lowbit::data {

GzReader::GzReader(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    throw Error(path + ": cannot open: " + std::strerror(S_ISDIR(info.st_mode) ? EISDIR : EINVAL));
  }
  gzFile file = ::gzdopen(fd, "rb");
  if (!file) {
    ::close(fd);
    throw Error(path + ": cannot open: out of memory in zlib");
  }
  ::gzbuffer(file, 1 << 17);
  file_ = file;
}

GzReader::~GzReader() { ::gzclose(static_cast<gzFile>(file_)); }

int64_t GzReader::read(void* buffer, int64_t size) {
  auto file = static_cast<gzFile>(file_);
  auto* out = static_cast<unsigned char*>(buffer);
  int64_t done = 0;
  while (done < size) {
    // gzread takes an unsigned int count, so large reads go in slices.
    unsigned slice = static_cast<unsigned>(std::min<int64_t>(size - done, 1 << 30));
    int got = ::gzread(file, out + done, slice);
    int status = Z_OK;
    const char* message = ::gzerror(file, &status);
    // Z_BUF_ERROR is zlib's "unexpected end of file" of a cut-off gzip stream.
    if (got < 0 || (status != Z_OK && status != Z_STREAM_END))
      throw Error(path_ + ": cannot read: corrupt gzip data (" + message + ")");
    if (got == 0) break;
    done += got;
  }
  return done;
}

}  // namespace lowbit::data
