// A structure-aware libFuzzer mutator for lowbit's model container (util/container.h): it decodes
// the input, changes one JSON header field or one blob, and encodes it again with consistent blob
// sizes and a valid CRC, so that most inputs reach the model loaders' own checks instead of
// stopping at the checksum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/container.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace lowbit::fuzz {

// Decodes without checking the CRC or "kind" (the loader does that); false if not a container.
inline bool decode_loosely(const uint8_t* data, size_t size, Container& c) {
  if (size < 20 || std::memcmp(data, kContainerMagic, 8) != 0) return false;
  auto u32 = [&](size_t at) {
    return uint32_t{data[at]} | uint32_t{data[at + 1]} << 8 | uint32_t{data[at + 2]} << 16 | uint32_t{data[at + 3]} << 24;
  };
  c.version = u32(8);
  const size_t header_length = u32(12), body = size - 4;
  if (header_length > body - 16) return false;
  c.header = nlohmann::json::parse(data + 16, data + 16 + header_length, nullptr, false);
  if (c.header.is_discarded() || !c.header.is_object() || !c.header["blobs"].is_array()) return false;
  size_t at = 16 + header_length;
  for (const auto& s : c.header["blobs"]) {
    if (!s.is_number_unsigned() || s.get<uint64_t>() > body - at) return false;
    c.blobs.emplace_back(reinterpret_cast<const char*>(data) + at, s.get<size_t>());
    at += s.get<size_t>();
  }
  c.header.erase("blobs");
  return true;
}

// Values that have broken parsers: limits, wrap-arounds, non-integers, huge and tiny floats.
inline nlohmann::json interesting_value(std::mt19937_64& rng) {
  static const std::vector<nlohmann::json> values = {
      0, 1, -1, 2, 7, 8, 9, 16, 24, 25, 31, 32, 255, 256, 784, 32768, 32769, 65536,
      2147483647, 2147483648LL, -2147483648LL, 4294967298LL, 4294967300LL, -6148914691236516944LL,
      1e10, 1e30, 1e39, -1e39, 784.9, 0.5, -0.0, 1e-45, nlohmann::json::array(), nlohmann::json::object(),
      "", "sign", "affine", nullptr, true, nlohmann::json::array({0}), nlohmann::json::array({-1}),
      nlohmann::json::array({3, -6148914691236516944LL}), nlohmann::json::array({4096, 4096}),
      nlohmann::json::array({1, -28, -28})};
  return values[rng() % values.size()];
}

// Every leaf and container of the header, as JSON pointers.
inline void collect_pointers(const nlohmann::json& j, const nlohmann::json::json_pointer& at,
                             std::vector<nlohmann::json::json_pointer>& out) {
  out.push_back(at);
  if (j.is_object())
    for (auto it = j.begin(); it != j.end(); ++it) collect_pointers(it.value(), at / it.key(), out);
  if (j.is_array())
    for (size_t i = 0; i < j.size(); ++i) collect_pointers(j[i], at / i, out);
}

inline size_t mutate_container(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  Container c;
  if (!decode_loosely(data, size, c)) return LLVMFuzzerMutate(data, size, max_size);
  std::mt19937_64 rng(seed);
  std::vector<nlohmann::json::json_pointer> pointers;
  collect_pointers(c.header, nlohmann::json::json_pointer(), pointers);
  // An empty header has no value to change: then only blobs and the version are mutated.
  switch (pointers.size() < 2 ? 3 + rng() % 3 : rng() % 6) {
    case 0:
    case 1: {  // one header value replaced by one that has broken parsers
      const auto& at = pointers[1 + rng() % (pointers.size() - 1)];
      c.header[at] = interesting_value(rng);
      break;
    }
    case 2: {  // one header number nudged: mostly still valid, so the checks behind it are reached
      const auto& at = pointers[1 + rng() % (pointers.size() - 1)];
      nlohmann::json& v = c.header[at];
      if (v.is_number_integer()) v = v.get<int64_t>() + static_cast<int64_t>(rng() % 5) - 2;
      else if (v.is_number_float()) v = v.get<double>() * (rng() % 2 ? 2.0 : 0.5);
      break;
    }
    case 3:
    case 4: {  // bytes of one blob, its size kept four times in five so that the sizes stay consistent
      if (c.blobs.empty()) break;
      std::string& blob = c.blobs[rng() % c.blobs.size()];
      const size_t size = blob.size(), room = blob.size() + 64;
      blob.resize(room);
      const size_t mutated = LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(blob.data()), size, room);
      blob.resize(rng() % 5 == 3 ? mutated : size);
      break;
    }
    case 5:  // the version
      c.version = static_cast<uint32_t>(rng() % 4);
      break;
  }
  const std::string out = encode_container(std::move(c));
  if (out.size() > max_size) return LLVMFuzzerMutate(data, size, max_size);
  std::memcpy(data, out.data(), out.size());
  return out.size();
}

// The CRC over everything but the last 4 bytes, written there: lets raw byte mutations through.
inline std::string with_valid_crc(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (size < 4) return bytes;
  const std::string body = bytes.substr(0, size - 4);
  const uint32_t crc = container_crc32(body.data(), body.size());
  for (int i = 0; i < 4; ++i) bytes[size - 4 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  return bytes;
}

}  // namespace lowbit::fuzz
