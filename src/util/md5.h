// MD5 (RFC 1321), for checking downloads and dataset files against their published checksums.
// Not for anything that needs a secure hash: MD5 is what the dataset publishers give.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace lowbit {

class Md5 {
 public:
  Md5();
  void update(const void* data, size_t size);
  // The digest as 32 lowercase hex digits. Ends the hash: call update() no more after it.
  std::string hex_digest();

 private:
  void block(const uint8_t* bytes);  // one 64-byte block
  std::array<uint32_t, 4> state_;
  uint64_t length_ = 0;  // bytes hashed so far
  std::array<uint8_t, 64> pending_{};
  size_t pending_size_ = 0;
};

// MD5 of a whole string, e.g. md5_hex("abc") == "900150983cd24fb0d6963f7d28e17f72".
std::string md5_hex(const std::string& bytes);

// True when `text` is 32 hex digits (either case).
bool is_md5_hex(const std::string& text);

}  // namespace lowbit
