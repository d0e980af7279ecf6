// libFuzzer target: model descriptions (the JSON a user passes to `train --arch FILE.json`).
#include <nlohmann/json.hpp>

#include "fuzz/fuzz_input.h"
#include "lowbit/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json description = nlohmann::json::parse(data, data + size, nullptr, false);
  if (description.is_discarded()) return 0;
  lowbit::fuzz::expect_clean([&] {
    lowbit::Model model = lowbit::Model::from_description(description);
    model.init(1);
    lowbit::Activations activations;
    lowbit::Tensor x(lowbit::Shape{1, model.input_size()});
    model.forward(x, activations);
  });
  return 0;
}
