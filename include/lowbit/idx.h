// Reader for the IDX format of MNIST-style datasets, gzipped or raw.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // [count, rows, cols]
};

// Magic 2051, then count, rows, cols (big-endian u32), then count*rows*cols bytes. Gzipped files
// are inflated whatever their name (zlib reads raw files unchanged). Throws lowbit::Error naming
// `path` on a bad magic, a header claiming more than the limits below, or a byte count that does
// not match the header exactly (truncated or with trailing bytes).
IdxImages read_idx_images(const std::string& path);
// Magic 2049, then count, then count bytes.
std::vector<uint8_t> read_idx_labels(const std::string& path);

inline constexpr int32_t kIdxImagesMagic = 2051;
inline constexpr int32_t kIdxLabelsMagic = 2049;

// The header alone, checked like the readers do, without reading the data: for fast listings.
// For label files rows and cols are 0.
struct IdxHeader {
  int32_t magic = 0;
  int64_t count = 0, rows = 0, cols = 0;
};
IdxHeader read_idx_header(const std::string& path, int32_t expected_magic);

// Limits against hostile headers: no more than this many images, and sides no larger than this.
inline constexpr int64_t kIdxMaxCount = 10'000'000;
inline constexpr int64_t kIdxMaxSide = 4096;
inline constexpr int64_t kIdxMaxBytes = int64_t{2} << 30;  // 2 GiB of pixels at most

}  // namespace lowbit
