// Encoding and validating lowbit's checksummed model container.
#include "util/container.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "lowbit/error.h"

namespace lowbit {
namespace {

constexpr size_t kFixedHeader = 16;  // magic (8), version (4), header length (4)
constexpr size_t kChecksumBytes = 4;

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t get_u32(std::string_view in, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(in[at + i])} << (8 * i);
  return v;
}

}  // namespace

uint32_t container_crc32(const char* data, size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data), chunk);
    data += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(crc);
}

std::string encode_container(Container container) {
  nlohmann::json sizes = nlohmann::json::array();
  for (const auto& blob : container.blobs) sizes.push_back(blob.size());
  container.header["blobs"] = sizes;
  const std::string header = container.header.dump();
  std::string out(kContainerMagic, sizeof kContainerMagic);
  put_u32(out, container.version);
  put_u32(out, static_cast<uint32_t>(header.size()));
  out += header;
  for (const auto& blob : container.blobs) out += blob;
  put_u32(out, container_crc32(out.data(), out.size()));
  return out;
}

namespace {

// The whole file, or a one-line error naming `path`.
std::string read_model_bytes(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) throw Error(path + ": is a directory");
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) throw Error(path + ": cannot open: " + std::strerror(errno));
  const std::streamoff size = file.tellg();
  if (size < 0) throw Error(path + ": read failed");
  if (size > kContainerMaxBytes) throw Error(path + ": model file larger than 1 GiB");
  std::string bytes(static_cast<size_t>(size), '\0');
  file.seekg(0);
  if (!file.read(bytes.data(), size)) throw Error(path + ": read failed");
  return bytes;
}

}  // namespace

Container read_container(const std::string& path, const std::string& kind) {
  return decode_container(read_model_bytes(path), path, kind);
}

Container decode_container(std::string_view bytes, const std::string& path, const std::string& kind) {
  if (bytes.size() < kFixedHeader + kChecksumBytes)
    throw Error(path + ": not a lowbit model (only " + std::to_string(bytes.size()) + " bytes)");
  if (bytes.size() > static_cast<uint64_t>(kContainerMaxBytes))
    throw Error(path + ": model file larger than 1 GiB");

  if (std::memcmp(bytes.data(), kContainerMagic, sizeof kContainerMagic) != 0)
    throw Error(path + ": not a lowbit model (bad magic)");
  const uint32_t version = get_u32(bytes, 8);
  if (version > kContainerVersion)
    throw Error(path + ": model format version " + std::to_string(version) +
                " is newer than this lowbit reads (" + std::to_string(kContainerVersion) +
                "); upgrade lowbit");
  if (version == 0) throw Error(path + ": model format version 0 is invalid");
  const size_t body = bytes.size() - kChecksumBytes;
  if (get_u32(bytes, body) != container_crc32(bytes.data(), body))
    throw Error(path + ": checksum mismatch (file is truncated or corrupted)");
  const size_t header_length = get_u32(bytes, 12);
  if (header_length > body - kFixedHeader) throw Error(path + ": header length exceeds file");
  if (header_length > static_cast<uint64_t>(kContainerMaxHeaderBytes))
    throw Error(path + ": header of " + std::to_string(header_length) + " bytes is larger than 16 MiB");

  Container container;
  container.version = version;
  try {
    container.header = nlohmann::json::parse(bytes.begin() + kFixedHeader,
                                             bytes.begin() + kFixedHeader + header_length);
  } catch (const nlohmann::json::exception&) {
    throw Error(path + ": header is not valid JSON");
  }
  if (!container.header.is_object()) throw Error(path + ": header is not a JSON object");
  // The kind is read without a conversion that could throw the JSON library's own error.
  const auto stored_kind = container.header.find("kind");
  const std::string found_kind = stored_kind != container.header.end() && stored_kind->is_string()
                                     ? stored_kind->get<std::string>()
                                     : std::string("?");
  if (!kind.empty() && found_kind != kind)
    throw Error(path + ": not a " + kind + " model (kind \"" + found_kind + "\")");
  const auto sizes_at = container.header.find("blobs");
  if (sizes_at == container.header.end() || !sizes_at->is_array())
    throw Error(path + ": header has no blob table");
  const auto& sizes = *sizes_at;
  if (sizes.size() > static_cast<size_t>(kContainerMaxBlobs))
    throw Error(path + ": blob table has " + std::to_string(sizes.size()) + " entries, more than " +
                std::to_string(kContainerMaxBlobs));
  size_t at = kFixedHeader + header_length;
  for (const auto& s : sizes) {
    if (!s.is_number_unsigned() || s.get<uint64_t>() > body - at)
      throw Error(path + ": blob table exceeds file");
    const size_t n = s.get<size_t>();
    container.blobs.emplace_back(bytes.substr(at, n));
    at += n;
  }
  if (at != body) throw Error(path + ": " + std::to_string(body - at) + " unexpected bytes after blobs");
  return container;
}

ContainerFacts examine_container(const std::string& path) {
  const std::string bytes = read_model_bytes(path);
  ContainerFacts facts;
  facts.file_bytes = static_cast<int64_t>(bytes.size());
  if (bytes.size() < kFixedHeader + kChecksumBytes) return facts;
  facts.magic_ok = std::memcmp(bytes.data(), kContainerMagic, sizeof kContainerMagic) == 0;
  facts.version = get_u32(bytes, 8);
  facts.header_bytes = get_u32(bytes, 12);
  const size_t body = bytes.size() - kChecksumBytes;
  facts.stored_checksum = get_u32(bytes, body);
  facts.computed_checksum = container_crc32(bytes.data(), body);
  if (facts.header_bytes <= body - kFixedHeader) {
    facts.header = nlohmann::json::parse(bytes.begin() + kFixedHeader,
                                         bytes.begin() + kFixedHeader + facts.header_bytes, nullptr,
                                         /*allow_exceptions=*/false);
    if (facts.header.is_discarded()) facts.header = nullptr;
  }
  return facts;
}

std::string floats_to_blob(const float* values, int64_t count) {
  return std::string(reinterpret_cast<const char*>(values), static_cast<size_t>(count) * 4);
}

void blob_to_floats(const std::string& blob, float* values, int64_t count, const std::string& what) {
  if (static_cast<int64_t>(blob.size()) != count * 4)
    throw Error(what + ": expected " + std::to_string(count) + " floats, found " +
                std::to_string(blob.size()) + " bytes");
  std::memcpy(values, blob.data(), blob.size());
}

}  // namespace lowbit
