// libFuzzer target: float model files (.lbm), loaded and run forward on one zero image, with the
// structure-aware mutator and the checksum recomputed.
#include "fuzz/container_mutator.h"
#include "fuzz/fuzz_input.h"
#include "lowbit/model.h"
#include "lowbit/model_file.h"

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  return lowbit::fuzz::mutate_container(data, size, max_size, seed);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static lowbit::fuzz::LoadStats stats("fuzz_lbm");
  stats.ran();
  const std::string bytes = lowbit::fuzz::with_valid_crc(data, size);
  const std::string path =
      lowbit::fuzz::write_input(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), ".lbm");
  lowbit::fuzz::expect_clean([&] {
    const lowbit::Model model = lowbit::load_model(path);
    stats.loaded();
    lowbit::Activations activations;
    model.forward(lowbit::Tensor(lowbit::Shape{1, model.input_size()}), activations);
  });
  return 0;
}
