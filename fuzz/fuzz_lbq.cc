// libFuzzer target: quantized model files (.lbq), loaded and then evaluated on a tiny image set,
// with a structure-aware mutator (container_mutator.h) and the checksum recomputed.
#include <algorithm>

#include "fuzz/container_mutator.h"
#include "fuzz/fuzz_input.h"
#include "lowbit/dataset.h"
#include "lowbit/quantized_model.h"

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  return lowbit::fuzz::mutate_container(data, size, max_size, seed);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static lowbit::fuzz::LoadStats stats("fuzz_lbq");
  stats.ran();
  const std::string bytes = lowbit::fuzz::with_valid_crc(data, size);
  const std::string path =
      lowbit::fuzz::write_input(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), ".lbq");
  lowbit::fuzz::expect_clean([&] {
    const lowbit::QuantizedModel model = lowbit::QuantizedModel::load(path);
    stats.loaded();
    // Three gray images of the model's own input size, labels within its classes, so that the
    // evaluation runs (more labels are refused, as hostile_files_test checks).
    lowbit::ImageSet images;
    images.count = 3;
    images.height = 1;
    images.width = lowbit::shape_numel(model.input_shape());
    images.pixels.assign(static_cast<size_t>(3 * images.width), 128);
    const auto last = static_cast<uint8_t>(std::min<int64_t>(model.num_classes() - 1, 9));
    images.labels = {0, static_cast<uint8_t>(last / 2), last};
    model.evaluate(images);
  });
  return 0;
}
