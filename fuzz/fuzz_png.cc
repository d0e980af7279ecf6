// libFuzzer target: the PNG reader behind `lowbit infer`.
#include "fuzz/fuzz_input.h"
#include "lowbit/dataset.h"
#include "lowbit/png_images.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lowbit::fuzz::write_input(data, size, ".png");
  lowbit::fuzz::expect_clean([&] { lowbit::read_png_images({path}, 28, 28); });
  return 0;
}
