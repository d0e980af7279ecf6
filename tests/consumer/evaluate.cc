// evaluate MODEL.lbm MODEL.lbq OUT_DIR: the accuracy of MODEL.lbq on its dataset's test images (as
// `lowbit eval` prints it); OUT_DIR/requantized.lbq, MODEL.lbm quantized as `lowbit quantize --bits 4`
// does; OUT_DIR/images.u8 and classes.txt, the first 100 test images and the classes it gives them.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include <lowbit/error.h>
#include <lowbit/model_file.h>
#include <lowbit/quantized_model.h>
#include <lowbit/version.h>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s MODEL.lbm MODEL.lbq OUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    const lowbit::Model model = lowbit::load_model(argv[1]);
    const lowbit::QuantizedModel quantized = lowbit::QuantizedModel::load(argv[2]);
    const lowbit::Dataset data = lowbit::load_dataset(quantized.metadata.at("dataset"), {});
    const lowbit::Evaluation result = quantized.evaluate(data.test);
    std::printf("lowbit %s: accuracy %.2f%% on %lld test images\n", LOWBIT_VERSION_STRING,
                100 * result.accuracy, static_cast<long long>(result.count));

    const lowbit::Tensor calibration = lowbit::normalized_images(
        data.train, data.mean, data.std, 0, std::min<int64_t>(1024, data.train.count));
    const lowbit::QuantPlan plan =
        lowbit::plan_quantization(model, calibration, lowbit::preset_options("minmax", 4, 4));
    lowbit::QuantizedModel::build(model, plan).save(std::string(argv[3]) + "/requantized.lbq");

    const int64_t count = std::min<int64_t>(100, data.test.count);
    std::ofstream(std::string(argv[3]) + "/images.u8", std::ios::binary)
        .write(reinterpret_cast<const char*>(data.test.pixels.data()), count * data.test.image_size());
    std::ofstream classes(std::string(argv[3]) + "/classes.txt");
    for (int64_t i = 0; i < count; ++i) classes << int{result.predictions[i]} << "\n";
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "evaluate: %s\n", e.what());
    return 1;
  }
  return 0;
}
