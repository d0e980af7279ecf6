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

GzReader::GzReader(const std::string& path, unsigned buffer_bytes) : path_(path) {
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
  ::gzbuffer(file, buffer_bytes);
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
    // Z_BUF_ERROR is zlib's "unexpected end of file" of a cut-off gzip stream. zlib sets it when
    // its read-ahead reaches the cut, and still returns what it inflated before: that is returned
    // first, so that the error comes with the read that finds no more data.
    const bool cut = status == Z_BUF_ERROR && got > 0;
    if (got < 0 || (status != Z_OK && status != Z_STREAM_END && !cut)) {
      std::string why = message;  // zlib starts it with the name given to gzdopen, "<fd:N>: "
      if (why.rfind("<fd:", 0) == 0 && why.find(": ") != std::string::npos) why.erase(0, why.find(": ") + 2);
      throw Error(path_ + ": cannot read: corrupt gzip data (" + why + ")");
    }
    if (got == 0) break;
    done += got;
  }
  return done;
}

}  // namespace lowbit::data
