// A streaming reader of tar archives (POSIX ustar and GNU tar headers), gzipped or not, for
// reading datasets straight from the archive they are distributed as, without extracting it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "data/gz_reader.h"

namespace lowbit::data {

struct TarMember {
  std::string name;   // as stored, "./" prefixes removed; the GNU long name or pax "path" if given
  int64_t size = 0;   // bytes of data that follow the header
  char type = '0';    // typeflag: '0' regular file, '5' directory, others as POSIX says
  int64_t offset = 0; // of the header in the uncompressed archive, for messages

  bool is_regular() const { return type == '0' || type == '\0' || type == '7'; }
  bool is_directory() const { return type == '5'; }
};

// Limits against hostile headers, checked before anything is allocated or skipped.
inline constexpr int64_t kTarMaxLongName = 4096;           // a GNU 'L' long-name member
inline constexpr int64_t kTarMaxPaxHeader = int64_t{1} << 20; // a pax 'x' extended header

class TarReader {
 public:
  // Opens `path`, a .tar or .tar.gz (zlib reads both). Throws "<path>: cannot open: <reason>".
  explicit TarReader(const std::string& path);

  // Moves to the next member, skipping what is left of the current one and its padding to the
  // next 512-byte block; nullopt at the end-of-archive (zero) blocks, after which the rest of the
  // file is read to its end so that a corrupt gzip trailer is still found. Every header's
  // checksum, magic, size and typeflag are validated. Throws lowbit::Error, one line starting
  // with the archive's path, on a bad header, a truncated archive or corrupt gzip data.
  std::optional<TarMember> next();

  // Reads exactly `size` bytes of the current member's data; `size` must not exceed remaining().
  void read(void* buffer, int64_t size);
  int64_t remaining() const { return remaining_; }

  const std::string& path() const { return gz_.path(); }
  // "<archive>: member <name>: <what>", for errors about the current member's contents.
  [[noreturn]] void fail(const std::string& what) const;

 private:
  // Reads `size` bytes or throws. `where` names what is being read for the errors, as
  // "member NAME" or "the header at byte N": "<archive>: truncated: the archive ends inside
  // <where>", "<archive>: <where>: cannot read: corrupt gzip data (...)".
  void read_exactly(void* buffer, int64_t size, const std::string& where);
  void skip(int64_t size, const std::string& where);
  int64_t gz_read(void* buffer, int64_t size, const std::string& where);
  std::string read_small_member(int64_t size, int64_t limit, const std::string& what);

  GzReader gz_;
  int64_t position_ = 0;   // bytes read from the uncompressed archive
  int64_t remaining_ = 0;  // data bytes of the current member not read yet
  int64_t padding_ = 0;    // bytes after them up to the next block
  std::string member_;     // name of the current member, "" before the first
  bool ended_ = false;
};

}  // namespace lowbit::data
