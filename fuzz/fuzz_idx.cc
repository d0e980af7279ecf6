// libFuzzer target: IDX image and label files, raw or gzipped (the reader inflates either).
#include "fuzz/fuzz_input.h"
#include "lowbit/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lowbit::fuzz::write_input(data, size);
  lowbit::fuzz::expect_clean([&] { lowbit::read_idx_images(path); });
  lowbit::fuzz::expect_clean([&] { lowbit::read_idx_labels(path); });
  lowbit::fuzz::expect_clean([&] { lowbit::read_idx_header(path, lowbit::kIdxImagesMagic); });
  return 0;
}
