// Writes the files the C API test reads: tiny quantized models, a float model, images, and the
// logits the C++ engine computes for them (what the C API must reproduce exactly).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lowbit/model_file.h"
#include "lowbit/quantized_model.h"
#include "model_fixtures.h"

namespace {

template <typename T>
void write_raw(const std::string& path, const std::vector<T>& values) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(T)));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  using namespace lowbit;
  const std::string dir = argv[1];
  std::filesystem::create_directories(dir);
  const Model model = testing_models::tiny_model(7);
  const ImageSet images = testing_models::random_images(300, 11);  // > one 64-row chunk: threads too
  const Tensor calibration = normalized_images(images, {0.5f}, {0.25f}, 0, 100);
  const QuantizedModel quantized =
      QuantizedModel::build(model, plan_quantization(model, calibration, preset_options("minmax", 4, 4)));
  quantized.save(dir + "/tiny.lbq");
  save_model(model, dir + "/tiny.lbm");
  std::vector<int32_t> logits(static_cast<size_t>(images.count * quantized.num_classes()));
  quantized.logits(images.pixels.data(), images.count, logits.data());
  write_raw(dir + "/images.u8", images.pixels);
  write_raw(dir + "/logits.i32", logits);

  // Images of an awkward size (5x7 = 35 pixels), which no SIMD width divides: the C test hands
  // them over in buffers of exactly that size, so any read past an image shows under ASan.
  Model odd = Model::from_description(Model::fc_nn_description({1, 5, 7}, 4));
  odd.init(3);
  odd.metadata = {{"mean", {0.5}}, {"std", {0.25}}};
  ImageSet odd_images;
  odd_images.count = 5;
  odd_images.height = 5;
  odd_images.width = 7;
  for (int64_t i = 0; i < 5 * 35; ++i) odd_images.pixels.push_back(static_cast<uint8_t>(i * 37 % 251));
  const QuantizedModel odd_quantized = QuantizedModel::build(
      odd, plan_quantization(odd, normalized_images(odd_images, {0.5f}, {0.25f}, 0, 5),
                             preset_options("minmax", 3, 5)));
  odd_quantized.save(dir + "/odd.lbq");
  std::vector<int32_t> odd_logits(5 * 4);
  odd_quantized.logits(odd_images.pixels.data(), 5, odd_logits.data());
  write_raw(dir + "/odd_images.u8", odd_images.pixels);
  write_raw(dir + "/odd_logits.i32", odd_logits);

  std::printf("wrote %s/tiny.lbq, tiny.lbm, images.u8 (%lld images), logits.i32, odd*\n", dir.c_str(),
              static_cast<long long>(images.count));
  return 0;
}
