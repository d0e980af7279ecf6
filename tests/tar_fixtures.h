// Test helpers for tar archives and CIFAR-10 files: ustar headers built by hand, members streamed
// into memory or into a .tar.gz, and CIFAR-10 batch files of any record count.
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace lowbit::testing_tar {

using Bytes = std::vector<uint8_t>;

constexpr int64_t kRecordBytes = 3073;
constexpr int64_t kFullRecords = 10000;
inline const char* const kBatchNames[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                          "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};

inline void put_octal(Bytes& block, int at, int width, int64_t value) {
  std::snprintf(reinterpret_cast<char*>(block.data() + at), width, "%0*llo", width - 1,
                static_cast<long long>(value));
}

// Writes the checksum field of a 512-byte header the way GNU tar does: six octal digits, NUL, space.
inline void fix_checksum(Bytes& block, size_t at = 0) {
  std::memset(block.data() + at + 148, ' ', 8);
  int64_t sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += block[at + i];
  std::snprintf(reinterpret_cast<char*>(block.data() + at + 148), 7, "%06llo",
                static_cast<long long>(sum));
  block[at + 154] = '\0';
  block[at + 155] = ' ';
}

enum class Format { gnu, posix };

// A valid header: GNU ("ustar  \0") or POSIX ("ustar\0" "00", with `prefix` in its prefix field).
inline Bytes header(const std::string& name, int64_t size, char type = '0',
                    Format format = Format::gnu, const std::string& prefix = "") {
  Bytes block(512, 0);
  std::memcpy(block.data(), name.data(), std::min<size_t>(name.size(), 100));
  put_octal(block, 100, 8, type == '5' ? 0755 : 0644);
  put_octal(block, 108, 8, 0);
  put_octal(block, 116, 8, 0);
  put_octal(block, 124, 12, size);
  put_octal(block, 136, 12, 1230768000);  // 2009-01-01
  block[156] = static_cast<uint8_t>(type);
  if (format == Format::gnu) {
    std::memcpy(block.data() + 257, "ustar  ", 8);
  } else {
    std::memcpy(block.data() + 257, "ustar", 6);
    std::memcpy(block.data() + 263, "00", 2);
    std::memcpy(block.data() + 345, prefix.data(), std::min<size_t>(prefix.size(), 155));
  }
  std::memcpy(block.data() + 265, "root", 4);
  std::memcpy(block.data() + 297, "root", 4);
  fix_checksum(block);
  return block;
}

// Fills `n` bytes of a member's data starting at byte `offset` of it.
using Fill = std::function<void(int64_t offset, uint8_t* out, int64_t n)>;

inline Fill bytes_of(const Bytes& data) {
  return [data](int64_t offset, uint8_t* out, int64_t n) { std::copy_n(data.begin() + offset, n, out); };
}

// Streams a tar archive to `sink`: headers, data in 1 MiB pieces, padding, the end blocks.
class TarWriter {
 public:
  using Sink = std::function<void(const uint8_t*, size_t)>;
  explicit TarWriter(Sink sink) : sink_(std::move(sink)) {}

  void raw(const Bytes& bytes) { sink_(bytes.data(), bytes.size()); }

  void add(const std::string& name, int64_t size, const Fill& fill, char type = '0',
           Format format = Format::gnu) {
    raw(header(name, size, type, format));
    data(size, fill);
  }
  void add(const std::string& name, const Bytes& data_bytes) {
    add(name, static_cast<int64_t>(data_bytes.size()), bytes_of(data_bytes));
  }
  // Data and padding to the next 512-byte block.
  void data(int64_t size, const Fill& fill) {
    Bytes chunk(std::min<int64_t>(size, 1 << 20));
    for (int64_t at = 0; at < size;) {
      const int64_t n = std::min<int64_t>(size - at, static_cast<int64_t>(chunk.size()));
      fill(at, chunk.data(), n);
      sink_(chunk.data(), static_cast<size_t>(n));
      at += n;
    }
    raw(Bytes((512 - size % 512) % 512, 0));
  }
  // Two zero blocks and GNU tar's padding to a 10 KiB record.
  void end() { raw(Bytes(2 * 512 + 8 * 512, 0)); }

 private:
  Sink sink_;
};

// An archive built in memory: `build` adds members and ends it (or does not, to truncate it).
inline Bytes tar_bytes(const std::function<void(TarWriter&)>& build) {
  Bytes out;
  TarWriter writer([&](const uint8_t* p, size_t n) { out.insert(out.end(), p, p + n); });
  build(writer);
  return out;
}

// The same written straight into a gzip file, for archives too large to hold in memory.
inline void write_tar_gz(const std::string& path, const std::function<void(TarWriter&)>& build) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  gzFile file = gzopen(path.c_str(), "wb6");
  ASSERT_NE(file, nullptr) << path;
  TarWriter writer([&](const uint8_t* p, size_t n) { gzwrite(file, p, static_cast<unsigned>(n)); });
  build(writer);
  gzclose(file);
}

// CIFAR-10 test content: image i of file f (0..5) has label (f + i) % 10 and pixels that differ
// per file, image and position, so that mix-ups show.
inline uint8_t cifar_label(int file, int64_t i) { return static_cast<uint8_t>((file + i) % 10); }
inline uint8_t cifar_pixel(int file, int64_t i, int64_t k) {
  return static_cast<uint8_t>(file * 41 + i * 7 + k * 3);
}

// A batch file of `records` records. `bad_label_at` >= 0 puts label 10 on that record.
inline Bytes cifar_batch(int file, int64_t records, int64_t bad_label_at = -1) {
  Bytes out(records * kRecordBytes);
  for (int64_t i = 0; i < records; ++i) {
    out[i * kRecordBytes] = i == bad_label_at ? 10 : cifar_label(file, i);
    for (int64_t k = 0; k < 3072; ++k) out[i * kRecordBytes + 1 + k] = cifar_pixel(file, i, k);
  }
  return out;
}

// A full-size batch file (10,000 records) of zero pixels and label 0, as a Fill that costs nothing
// to keep; `bad_label_at` >= 0 puts label 10 on that record.
inline Fill zero_batch(int64_t bad_label_at = -1) {
  return [bad_label_at](int64_t offset, uint8_t* out, int64_t n) {
    std::memset(out, 0, n);
    const int64_t bad = bad_label_at * kRecordBytes;
    if (bad_label_at >= 0 && bad >= offset && bad < offset + n) out[bad - offset] = 10;
  };
}

// A CIFAR-10 archive in the official layout, full size, zero pixels: the members in the order of
// the archive this project was given (data_batch_4, 5, 2, batches.meta.txt, 1, 3, test_batch).
// `skip` leaves out that batch file; `bad_file`/`bad_label_at` put label 10 on one record.
struct ZeroArchive {
  int skip = -1;
  int bad_file = -1;
  int64_t bad_label_at = -1;
  int64_t wrong_size_file = -1;  // this batch gets one byte too many
};
inline void write_zero_cifar_archive(const std::string& path, const ZeroArchive& options = {}) {
  write_tar_gz(path, [&](TarWriter& tar) {
    tar.add("cifar-10-batches-bin/", 0, bytes_of({}), '5');
    for (int file : {3, 4, 1, -1, 0, 2, 5}) {
      if (file < 0) {
        const std::string meta = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
        tar.add("cifar-10-batches-bin/batches.meta.txt", Bytes(meta.begin(), meta.end()));
        continue;
      }
      if (file == options.skip) continue;
      const int64_t size = kFullRecords * kRecordBytes + (file == options.wrong_size_file ? 1 : 0);
      tar.add(std::string("cifar-10-batches-bin/") + kBatchNames[file], size,
              zero_batch(file == options.bad_file ? options.bad_label_at : -1));
    }
    tar.end();
  });
}

// Full-size batch files of zeros as sparse files: a valid CIFAR-10 folder that takes no disk.
inline void write_sparse_cifar_folder(const std::string& dir) {
  std::filesystem::create_directories(dir);
  for (const char* name : kBatchNames) {
    const std::string path = dir + "/" + name;
    std::FILE* file = std::fopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr) << path;
    std::fclose(file);
    std::filesystem::resize_file(path, kFullRecords * kRecordBytes);
  }
}

}  // namespace lowbit::testing_tar
