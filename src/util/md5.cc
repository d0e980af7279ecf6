// MD5 as RFC 1321 section 3 specifies it: 64-byte blocks, four rounds of 16 steps.
#include "util/md5.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace lowbit {
namespace {

// Per-step left rotations (RFC 1321, 3.4).
constexpr int kShift[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                            5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                            4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                            6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

// T[i] = floor(2^32 * |sin(i + 1)|), i in radians (RFC 1321, 3.4).
constexpr uint32_t kSine[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee,
    0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
    0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa,
    0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
    0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05,
    0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039,
    0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
    0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

uint32_t rotate_left(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

}  // namespace

Md5::Md5() : state_{0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u} {}

void Md5::block(const uint8_t* bytes) {
  uint32_t x[16];
  for (int i = 0; i < 16; ++i)  // little-endian words (RFC 1321, 2)
    x[i] = uint32_t{bytes[4 * i]} | uint32_t{bytes[4 * i + 1]} << 8 |
           uint32_t{bytes[4 * i + 2]} << 16 | uint32_t{bytes[4 * i + 3]} << 24;
  uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3];
  for (int i = 0; i < 64; ++i) {
    uint32_t f;
    int k;
    if (i < 16) f = (b & c) | (~b & d), k = i;
    else if (i < 32) f = (d & b) | (~d & c), k = (5 * i + 1) % 16;
    else if (i < 48) f = b ^ c ^ d, k = (3 * i + 5) % 16;
    else f = c ^ (b | ~d), k = (7 * i) % 16;
    const uint32_t rotated = b + rotate_left(a + f + kSine[i] + x[k], kShift[i]);
    a = d, d = c, c = b, b = rotated;
  }
  state_[0] += a, state_[1] += b, state_[2] += c, state_[3] += d;
}

void Md5::update(const void* data, size_t size) {
  const auto* in = static_cast<const uint8_t*>(data);
  length_ += size;
  if (pending_size_ > 0) {
    const size_t take = std::min(size, 64 - pending_size_);
    std::memcpy(pending_.data() + pending_size_, in, take);
    pending_size_ += take, in += take, size -= take;
    if (pending_size_ < 64) return;
    block(pending_.data());
    pending_size_ = 0;
  }
  for (; size >= 64; in += 64, size -= 64) block(in);
  std::memcpy(pending_.data(), in, size);
  pending_size_ = size;
}

std::string Md5::hex_digest() {
  // Padding: a 1 bit, zeros to 56 mod 64 bytes, then the bit length, little-endian (RFC 1321, 3.1-3.2).
  const uint64_t bits = length_ * 8;
  const uint8_t one = 0x80, zero = 0;
  update(&one, 1);
  while (pending_size_ != 56) update(&zero, 1);
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(bits >> (8 * i));
  update(length, 8);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint32_t word : state_)
    for (int i = 0; i < 4; ++i) {
      const uint8_t byte = static_cast<uint8_t>(word >> (8 * i));
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    }
  return out;
}

std::string md5_hex(const std::string& bytes) {
  Md5 md5;
  md5.update(bytes.data(), bytes.size());
  return md5.hex_digest();
}

bool is_md5_hex(const std::string& text) {
  if (text.size() != 32) return false;
  for (char c : text)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace lowbit
