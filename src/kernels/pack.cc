// The canonical packed weight format: each row an LSB-first bit stream of `bits`-wide codes.
#include <cstdint>
#include <string>

#include "kernels/qlinear.h"
#include "lowbit/error.h"

namespace lowbit::kernels {

// codes: [rows, cols], each code in [0, 2^bits - 1] (higher bits are dropped).
PackedWeights pack_weights(const uint8_t* codes, int64_t rows, int64_t cols, int bits) {
  if (bits < 1 || bits > 8) throw Error("pack_weights: bits must be in 1..8, got " + std::to_string(bits));
  if (rows < 0 || cols < 0) throw Error("pack_weights: negative shape");
  PackedWeights packed;
  packed.rows = rows;
  packed.cols = cols;
  packed.bits = bits;
  const int64_t row_bytes = packed.row_bytes();
  packed.data.assign(static_cast<size_t>(rows * row_bytes), 0);
  const uint32_t mask = (1u << bits) - 1;
  for (int64_t n = 0; n < rows; ++n) {
    uint8_t* row = packed.data.data() + n * row_bytes;
    for (int64_t k = 0; k < cols; ++k) {
      const int64_t bit = k * bits;
      // A code spans at most two bytes (bits <= 8).
      const uint32_t value = (codes[n * cols + k] & mask) << (bit % 8);
      row[bit / 8] |= static_cast<uint8_t>(value);
      if ((bit % 8) + bits > 8) row[bit / 8 + 1] |= static_cast<uint8_t>(value >> 8);
    }
  }
  return packed;
}

// codes: [rows, cols].
void unpack_weights(const PackedWeights& packed, uint8_t* codes) {
  const int64_t row_bytes = packed.row_bytes();
  const uint32_t mask = (1u << packed.bits) - 1;
  for (int64_t n = 0; n < packed.rows; ++n) {
    const uint8_t* row = packed.data.data() + n * row_bytes;
    for (int64_t k = 0; k < packed.cols; ++k) {
      const int64_t bit = k * packed.bits;
      uint32_t value = row[bit / 8];
      if ((bit % 8) + packed.bits > 8) value |= uint32_t{row[bit / 8 + 1]} << 8;
      codes[n * packed.cols + k] = static_cast<uint8_t>((value >> (bit % 8)) & mask);
    }
  }
}

}  // namespace lowbit::kernels
