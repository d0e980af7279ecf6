// CIFAR-10, binary version: read from the official cifar-10-binary.tar.gz as distributed
// (gzip + tar, streamed, nothing extracted) or from its extracted .bin files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "lowbit/dataset.h"

namespace lowbit::data {

// Each file is 10,000 records of 1 label byte (0..9) and 3,072 pixel bytes: the red, green and
// blue 32x32 planes, row-major, which is already [channels, height, width].
inline constexpr int64_t kCifarChannels = 3;
inline constexpr int64_t kCifarSide = 32;
inline constexpr int64_t kCifarImageBytes = kCifarChannels * kCifarSide * kCifarSide;  // 3,072
inline constexpr int64_t kCifarRecordBytes = 1 + kCifarImageBytes;                     // 3,073
inline constexpr int64_t kCifarRecordsPerFile = 10'000;

inline constexpr const char* kCifarArchive = "cifar-10-binary.tar.gz";
inline constexpr const char* kCifarFolder = "cifar-10-batches-bin";  // the archive's one folder
// The five training files, in the order their images are concatenated, then the test file.
inline const char* const kCifarBatchFiles[] = {"data_batch_1.bin", "data_batch_2.bin",
                                               "data_batch_3.bin", "data_batch_4.bin",
                                               "data_batch_5.bin", "test_batch.bin"};

// Where a folder's CIFAR-10 is: the archive, or the folder holding the six .bin files.
struct CifarFiles {
  std::string path;
  bool archive = false;
};

// What `dir` holds of CIFAR-10, nullopt for nothing: any of the .bin files in `dir` itself (then
// those, like a raw IDX file beats its .gz), else `dir`/cifar-10-binary.tar.gz, unless the
// archive has been extracted beside itself into `dir`/cifar-10-batches-bin/: that folder is a place
// of its own (locations.h), and the extracted files are read rather than the archive.
std::optional<CifarFiles> cifar_files_in(const std::string& dir);

// Reads and validates all six files: their names, each file's size (exactly `records_per_file`
// records of 3,073 bytes, checked before anything is read), every label in 0..9, and for the
// archive its tar headers and gzip stream. Throws lowbit::Error, one line naming the archive and
// member or the file. `records_per_file` is 10,000 for CIFAR-10; only tests pass fewer, to build
// small valid archives. `why` goes into Dataset::source after the path.
Dataset load_cifar10(const CifarFiles& files, const std::string& why,
                     int64_t records_per_file = kCifarRecordsPerFile);

// {train, test} image counts, for `lowbit data list`: the same checks of names and sizes without
// keeping the pixels or checking the labels.
std::pair<int64_t, int64_t> cifar10_counts(const CifarFiles& files,
                                           int64_t records_per_file = kCifarRecordsPerFile);

}  // namespace lowbit::data
