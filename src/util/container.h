// The file container shared by float and quantized models: magic, version, JSON header, binary
// blobs, CRC-32. Layout in docs/model-format.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lowbit {

inline constexpr char kContainerMagic[8] = {'L', 'O', 'W', 'B', 'I', 'T', 'M', 'F'};
// The newest format version this lowbit reads. Version 2 added sign-binary weight layers to
// quantized files, version 3 graph models (with buffers) to float files; writers use the lowest
// version that holds their content (Container::version).
inline constexpr uint32_t kContainerVersion = 4;
inline constexpr int64_t kContainerMaxBytes = int64_t{1} << 30;
// Limits against hostile headers (docs/security.md): the JSON header and the number of blobs.
inline constexpr int64_t kContainerMaxHeaderBytes = int64_t{1} << 24;
inline constexpr int64_t kContainerMaxBlobs = 65536;

struct Container {
  nlohmann::json header;           // must hold "kind"; "blobs" is filled in by encode
  std::vector<std::string> blobs;  // raw little-endian payloads, in order
  uint32_t version = 1;            // written as is; read_container sets the file's
};

// Serializes to bytes (the header gains "blobs": [sizes]).
std::string encode_container(Container container);
// Reads and validates `path`: size, magic, version, checksum, header JSON, blob sizes, and that
// header "kind" equals `kind` (any kind when empty). Every failure is a one-line lowbit::Error naming `path`.
Container read_container(const std::string& path, const std::string& kind);
// The same checks on a file's bytes held in memory; errors name `path`.
Container decode_container(std::string_view bytes, const std::string& path, const std::string& kind);

// What `lowbit inspect` shows of a file before trusting it: the fixed fields and the checksum as
// stored and as computed, whether or not they are valid.
struct ContainerFacts {
  int64_t file_bytes = 0;
  bool magic_ok = false;           // false also for files shorter than the fixed fields
  uint32_t version = 0;
  uint32_t header_bytes = 0;
  uint32_t stored_checksum = 0, computed_checksum = 0;
  nlohmann::json header;           // null when the header is not JSON or overruns the file
  bool checksum_ok() const { return magic_ok && stored_checksum == computed_checksum; }
};
// Reads `path` (throws lowbit::Error only when it cannot be read or exceeds 1 GiB).
ContainerFacts examine_container(const std::string& path);

// The CRC-32 (zlib's) that ends every container, over all bytes before it.
uint32_t container_crc32(const char* data, size_t size);

// Float tensors to and from blobs (little-endian IEEE 754, the machine's own order on x86-64).
std::string floats_to_blob(const float* values, int64_t count);
void blob_to_floats(const std::string& blob, float* values, int64_t count, const std::string& what);

}  // namespace lowbit
