// TarReader: 512-byte header blocks validated field by field (POSIX.1-2001 ustar, GNU tar's
// variant of it, GNU long names and pax path/size records), member data streamed in place.
#include "data/tar_reader.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "lowbit/error.h"

namespace lowbit::data {
namespace {

constexpr int64_t kBlock = 512;

// Header field offsets and sizes (POSIX.1-2001, pax "ustar Interchange Format").
constexpr int kNameAt = 0, kNameSize = 100;
constexpr int kSizeAt = 124, kSizeSize = 12;
constexpr int kChecksumAt = 148, kChecksumSize = 8;
constexpr int kTypeAt = 156;
constexpr int kMagicAt = 257, kVersionAt = 263;
constexpr int kPrefixAt = 345, kPrefixSize = 155;

// A NUL-terminated field of at most `size` bytes.
std::string field_text(const unsigned char* block, int at, int size) {
  const char* begin = reinterpret_cast<const char*>(block + at);
  return std::string(begin, strnlen(begin, size));
}

// An octal number field: optional leading spaces, digits, then NUL or space padding.
std::optional<int64_t> octal_field(const unsigned char* block, int at, int size) {
  int i = 0;
  while (i < size && block[at + i] == ' ') ++i;
  int64_t value = 0;
  int digits = 0;
  for (; i < size && block[at + i] >= '0' && block[at + i] <= '7'; ++i, ++digits)
    value = value * 8 + (block[at + i] - '0');
  for (; i < size; ++i)
    if (block[at + i] != ' ' && block[at + i] != '\0') return std::nullopt;
  if (digits == 0) return std::nullopt;
  return value;
}

// The header checksum: the sum of all 512 bytes with the checksum field read as eight spaces.
// POSIX sums unsigned bytes; some old tars summed signed ones, so both are accepted.
bool checksum_matches(const unsigned char* block, int64_t stored) {
  int64_t unsigned_sum = 0, signed_sum = 0;
  for (int i = 0; i < kBlock; ++i) {
    const bool in_field = i >= kChecksumAt && i < kChecksumAt + kChecksumSize;
    const unsigned char byte = in_field ? ' ' : block[i];
    unsigned_sum += byte;
    signed_sum += static_cast<signed char>(byte);
  }
  return stored == unsigned_sum || stored == signed_sum;
}

bool all_zero(const unsigned char* block) {
  return std::all_of(block, block + kBlock, [](unsigned char b) { return b == 0; });
}

std::string strip_dot_slash(std::string name) {
  while (name.rfind("./", 0) == 0) name.erase(0, 2);
  return name;
}

}  // namespace

// A small zlib buffer keeps its read-ahead, and so where corrupt data is reported, within 16 KiB
// of what is being read; member data is read in large pieces, which zlib inflates in place.
TarReader::TarReader(const std::string& path) : gz_(path, 8192) {}

void TarReader::fail(const std::string& what) const {
  throw Error(path() + ": member " + member_ + ": " + what);
}

int64_t TarReader::gz_read(void* buffer, int64_t size, const std::string& where) {
  try {
    const int64_t got = gz_.read(buffer, size);
    position_ += got;
    return got;
  } catch (const Error& e) {
    // GzReader says "<path>: cannot read: ..."; say what was being read.
    std::string message = e.what();
    if (message.rfind(path() + ": ", 0) == 0) message.erase(0, path().size() + 2);
    throw Error(path() + ": " + where + ": " + message);
  }
}

void TarReader::read_exactly(void* buffer, int64_t size, const std::string& where) {
  const int64_t got = gz_read(buffer, size, where);
  if (got < size)
    throw Error(path() + ": truncated: the archive ends inside " + where + " (at byte " +
                std::to_string(position_) + " of the uncompressed archive)");
}

void TarReader::skip(int64_t size, const std::string& where) {
  unsigned char buffer[1 << 16];
  while (size > 0) {
    const int64_t want = std::min<int64_t>(size, sizeof buffer);
    read_exactly(buffer, want, where);
    size -= want;
  }
}

void TarReader::read(void* buffer, int64_t size) {
  if (size > remaining_)
    fail("asked for " + std::to_string(size) + " bytes, " + std::to_string(remaining_) + " left");
  read_exactly(buffer, size, "member " + member_);
  remaining_ -= size;
}

std::string TarReader::read_small_member(int64_t size, int64_t limit, const std::string& what) {
  if (size > limit)
    throw Error(path() + ": " + what + " at byte " + std::to_string(position_ - kBlock) + " is " +
                std::to_string(size) + " bytes, more than the limit of " + std::to_string(limit));
  std::string text(size, '\0');
  read_exactly(text.data(), size, "the " + what);
  skip((kBlock - size % kBlock) % kBlock, "the " + what);
  return text;
}

std::optional<TarMember> TarReader::next() {
  if (ended_) return std::nullopt;
  if (!member_.empty()) skip(remaining_ + padding_, "member " + member_);
  remaining_ = padding_ = 0;

  std::optional<std::string> long_name;  // from a GNU 'L' member or a pax "path" record
  std::optional<int64_t> pax_size;
  for (;;) {
    unsigned char block[kBlock];
    const int64_t offset = position_;
    const std::string where = "the header at byte " + std::to_string(offset);
    const int64_t got = gz_read(block, kBlock, where);
    if (got == 0 && offset == 0) throw Error(path() + ": empty file, not a tar archive");
    if (got == 0)
      throw Error(path() + ": truncated: the archive ends after " +
                  (member_.empty() ? std::string("its headers") : "member " + member_) +
                  " without the zero blocks that end a tar archive");
    if (got < kBlock)
      throw Error(path() + ": truncated: the archive ends inside the header at byte " +
                  std::to_string(offset));
    if (all_zero(block)) {
      if (offset == 0) throw Error(path() + ": not a tar archive: its first block is all zeros");
      // The end: two zero blocks, then padding to GNU tar's 10 KiB records. Read on to the end
      // of the file so that zlib checks the gzip trailer's CRC and length.
      ended_ = true;
      member_.clear();
      unsigned char rest[1 << 16];
      while (gz_read(rest, sizeof rest, "the end of the archive") > 0) {
      }
      return std::nullopt;
    }

    const auto stored_checksum = octal_field(block, kChecksumAt, kChecksumSize);
    const bool is_ustar = std::memcmp(block + kMagicAt, "ustar", 5) == 0 &&
                          (block[kMagicAt + 5] == '\0' || block[kMagicAt + 5] == ' ');
    if (!stored_checksum || !checksum_matches(block, *stored_checksum) || !is_ustar) {
      const std::string at = "at byte " + std::to_string(offset);
      if (offset == 0)
        throw Error(path() + ": not a tar archive: its first 512 bytes are not a valid ustar header");
      if (!is_ustar) throw Error(path() + ": bad tar header " + at + ": no ustar magic");
      if (!stored_checksum)
        throw Error(path() + ": bad tar header " + at + ": checksum field is not an octal number");
      throw Error(path() + ": bad tar header " + at + ": checksum " +
                  std::to_string(*stored_checksum) + " does not match the header's bytes");
    }
    const auto size = octal_field(block, kSizeAt, kSizeSize);
    if (!size)
      throw Error(path() + ": bad tar header at byte " + std::to_string(offset) +
                  ": size field is not an octal number");

    TarMember member;
    member.offset = offset;
    member.type = static_cast<char>(block[kTypeAt]);
    member.size = pax_size.value_or(*size);
    member.name = field_text(block, kNameAt, kNameSize);
    // Only POSIX ustar ("ustar\0" "00") has a prefix field; GNU tar keeps other data there.
    const bool posix = block[kMagicAt + 5] == '\0' && block[kVersionAt] == '0' && block[kVersionAt + 1] == '0';
    if (posix) {
      const std::string prefix = field_text(block, kPrefixAt, kPrefixSize);
      if (!prefix.empty()) member.name = prefix + "/" + member.name;
    }
    if (long_name) member.name = *long_name;

    if (member.type == 'L') {  // GNU: the data is the next member's name
      std::string name = read_small_member(member.size, kTarMaxLongName, "GNU long-name member");
      long_name = name.substr(0, name.find('\0'));
      continue;
    }
    if (member.type == 'x') {  // pax: "LENGTH key=value\n" records for the next member
      const std::string records = read_small_member(member.size, kTarMaxPaxHeader, "pax header");
      const auto bad = [&](const std::string& why) {
        return Error(path() + ": bad pax header at byte " + std::to_string(offset) + ": " + why);
      };
      for (size_t at = 0; at < records.size();) {
        const size_t space = records.find(' ', at);
        if (space == std::string::npos || space == at || space - at > 9) throw bad("no record length");
        size_t length = 0;
        for (size_t i = at; i < space; ++i) {
          if (records[i] < '0' || records[i] > '9') throw bad("record length is not a number");
          length = length * 10 + (records[i] - '0');
        }
        if (length <= space - at + 1 || at + length > records.size() || records[at + length - 1] != '\n')
          throw bad("record length " + std::to_string(length) + " does not fit the header");
        const std::string record = records.substr(space + 1, at + length - 1 - (space + 1));
        const size_t equals = record.find('=');
        if (equals == std::string::npos) throw bad("record without '='");
        const std::string key = record.substr(0, equals), value = record.substr(equals + 1);
        if (key == "path") long_name = value;
        if (key == "size") {
          if (value.empty() || value.size() > 15 ||
              !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
            throw bad("size " + value + " is not a number");
          pax_size = std::stoll(value);
        }
        at += length;
      }
      continue;
    }
    if (member.type == 'g' || member.type == 'K') {  // pax global header, GNU long link name
      skip(member.size + (kBlock - member.size % kBlock) % kBlock, "the tar extension header at byte " + std::to_string(offset));
      continue;
    }

    member.name = strip_dot_slash(member.name);
    if (member.name.empty())
      throw Error(path() + ": bad tar header at byte " + std::to_string(offset) + ": empty name");
    member_ = member.name;
    // Links and devices carry no data whatever their size field says (POSIX: typeflags 1-6).
    if (member.type >= '1' && member.type <= '6') member.size = 0;
    remaining_ = member.size;
    padding_ = (kBlock - remaining_ % kBlock) % kBlock;
    return member;
  }
}

}  // namespace lowbit::data
