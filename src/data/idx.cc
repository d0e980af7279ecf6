// IDX reader: check the header against the limits before allocating, then read the payload in
// chunks so a lying header costs no more memory than the file really holds.
#include "lowbit/idx.h"

#include <algorithm>

#include "data/gz_reader.h"
#include "lowbit/error.h"

namespace lowbit {
namespace {

constexpr int64_t kChunk = int64_t{1} << 20;

std::string kind_name(int32_t magic) {
  return magic == kIdxImagesMagic ? "image" : "label";
}

int64_t big_endian_u32(const unsigned char* bytes) {
  return (int64_t{bytes[0]} << 24) | (int64_t{bytes[1]} << 16) | (int64_t{bytes[2]} << 8) |
         int64_t{bytes[3]};
}

// Reads and checks the header; leaves `reader` at the first data byte.
IdxHeader read_header(data::GzReader& reader, int32_t expected_magic) {
  const std::string& path = reader.path();
  const int64_t header_size = expected_magic == kIdxImagesMagic ? 16 : 8;
  unsigned char bytes[16] = {};
  int64_t got = reader.read(bytes, header_size);
  if (got == 0) throw Error(path + ": empty file (expected an IDX " + kind_name(expected_magic) + " file)");
  if (got >= 4 && big_endian_u32(bytes) != expected_magic) {
    int64_t magic = big_endian_u32(bytes);
    std::string hint = magic == kIdxImagesMagic   ? " (this is an IDX image file)"
                       : magic == kIdxLabelsMagic ? " (this is an IDX label file)"
                                                  : "";
    throw Error(path + ": not an IDX " + kind_name(expected_magic) + " file: magic " +
                std::to_string(magic) + ", expected " + std::to_string(expected_magic) + hint);
  }
  if (got < header_size)
    throw Error(path + ": truncated: " + std::to_string(got) + " bytes, shorter than the " +
                std::to_string(header_size) + "-byte IDX " + kind_name(expected_magic) + " header");

  IdxHeader header;
  header.magic = expected_magic;
  header.count = big_endian_u32(bytes + 4);
  if (header.count > kIdxMaxCount)
    throw Error(path + ": header says " + std::to_string(header.count) + " " +
                kind_name(expected_magic) + "s, more than the limit of " +
                std::to_string(kIdxMaxCount));
  if (expected_magic == kIdxImagesMagic) {
    header.rows = big_endian_u32(bytes + 8);
    header.cols = big_endian_u32(bytes + 12);
    if (header.rows < 1 || header.cols < 1 || header.rows > kIdxMaxSide || header.cols > kIdxMaxSide)
      throw Error(path + ": header says images of " + std::to_string(header.rows) + "x" +
                  std::to_string(header.cols) + "; each side must be 1.." +
                  std::to_string(kIdxMaxSide));
    // Cannot overflow: 1e7 * 4096 * 4096 < 2^63.
    int64_t bytes_total = header.count * header.rows * header.cols;
    if (bytes_total > kIdxMaxBytes)
      throw Error(path + ": header says " + std::to_string(bytes_total) +
                  " bytes of pixels, more than the limit of " + std::to_string(kIdxMaxBytes));
  }
  return header;
}

std::string describe(const IdxHeader& header, int64_t size) {
  if (header.magic == kIdxLabelsMagic) return std::to_string(header.count) + " labels";
  return std::to_string(header.count) + " images of " + std::to_string(header.rows) + "x" +
         std::to_string(header.cols) + " (" + std::to_string(size) + " bytes)";
}

// Reads exactly `size` payload bytes and checks that nothing follows them.
std::vector<uint8_t> read_payload(data::GzReader& reader, const IdxHeader& header, int64_t size) {
  std::vector<uint8_t> out;
  int64_t done = 0;
  while (done < size) {
    int64_t want = std::min(kChunk, size - done);
    out.resize(done + want);
    int64_t got = reader.read(out.data() + done, want);
    done += got;
    if (got < want)
      throw Error(reader.path() + ": truncated: header says " + describe(header, size) +
                  " but file has " + std::to_string(done) + " bytes after the header");
  }
  unsigned char extra[4096];
  if (int64_t got = reader.read(extra, sizeof extra); got > 0)
    throw Error(reader.path() + ": trailing bytes: header says " + describe(header, size) +
                " but more data follows" + (got < int64_t{sizeof extra}
                                                ? " (" + std::to_string(got) + " extra bytes)"
                                                : ""));
  return out;
}

}  // namespace

IdxHeader read_idx_header(const std::string& path, int32_t expected_magic) {
  data::GzReader reader(path);
  return read_header(reader, expected_magic);
}

IdxImages read_idx_images(const std::string& path) {
  data::GzReader reader(path);
  IdxHeader header = read_header(reader, kIdxImagesMagic);
  IdxImages images;
  images.count = header.count;
  images.rows = header.rows;
  images.cols = header.cols;
  images.pixels = read_payload(reader, header, header.count * header.rows * header.cols);
  return images;
}

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  data::GzReader reader(path);
  IdxHeader header = read_header(reader, kIdxLabelsMagic);
  return read_payload(reader, header, header.count);
}

}  // namespace lowbit
