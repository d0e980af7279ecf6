// libFuzzer target: the CIFAR-10 readers. Each input is read as a tar (or tar.gz) archive member by
// member, as the CIFAR-10 archive (two records per file, so small archives are complete), and as
// the six extracted .bin files (the input written to each).
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "data/cifar10.h"
#include "data/tar_reader.h"
#include "fuzz/fuzz_input.h"

namespace {

// Small enough that a seed archive of six files stays a few kilobytes.
constexpr int64_t kRecordsPerFile = 2;

void read_every_member(const std::string& path) {
  lowbit::data::TarReader tar(path);
  std::vector<char> buffer(4096);
  while (const auto member = tar.next()) {
    while (tar.remaining() > 0) {
      const int64_t n = std::min<int64_t>(tar.remaining(), static_cast<int64_t>(buffer.size()));
      tar.read(buffer.data(), n);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string archive = lowbit::fuzz::write_input(data, size, ".tar.gz");
  lowbit::fuzz::expect_clean([&] { read_every_member(archive); });
  lowbit::fuzz::expect_clean([&] { lowbit::data::load_cifar10({archive, true}, "fuzz", kRecordsPerFile); });
  lowbit::fuzz::expect_clean([&] { lowbit::data::cifar10_counts({archive, true}, kRecordsPerFile); });

  static const std::string folder = archive + ".bin";
  std::filesystem::create_directories(folder);
  for (const char* name : lowbit::data::kCifarBatchFiles)
    lowbit::fuzz::write_input(data, size, (".tar.gz.bin/" + std::string(name)).c_str());
  lowbit::fuzz::expect_clean([&] { lowbit::data::load_cifar10({folder, false}, "fuzz", kRecordsPerFile); });
  return 0;
}
