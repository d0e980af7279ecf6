// Test helpers for the data tests: temp folders, tiny IDX and npm-package files, scoped env vars.
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace lowbit::testing_data {

using Bytes = std::vector<uint8_t>;

// A fresh empty folder named after the running test, under the build tree.
inline std::string fresh_dir(const std::string& suffix = "") {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = std::string(LOWBIT_TEST_TMP) + "/" + info->test_suite_name() + "." +
                    info->name() + suffix;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void put_u32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

// IDX images file: magic 2051, count, rows, cols, pixels.
inline Bytes idx_images(uint32_t count, uint32_t rows, uint32_t cols, const Bytes& pixels) {
  Bytes out;
  put_u32(out, 2051), put_u32(out, count), put_u32(out, rows), put_u32(out, cols);
  out.insert(out.end(), pixels.begin(), pixels.end());
  return out;
}

inline Bytes idx_labels(const Bytes& labels) {
  Bytes out;
  put_u32(out, 2049), put_u32(out, static_cast<uint32_t>(labels.size()));
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

// Writes raw bytes, or gzipped through zlib when `gzip`.
inline void write_file(const std::string& path, const Bytes& bytes, bool gzip = false) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  if (gzip) {
    gzFile file = gzopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr) << path;
    if (!bytes.empty()) gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(file);
  } else {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
}

inline void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

// Pixel k of image `index` in a fake set: distinct per image so mix-ups show.
inline uint8_t fake_pixel(int64_t index, int64_t k) { return static_cast<uint8_t>(index * 7 + k * 3); }

// A folder in MNIST layout, images of 2x3 pixels, labels index % 10.
inline void write_idx_dataset(const std::string& dir, uint32_t train_count, uint32_t test_count,
                              bool gzip = true) {
  for (auto [prefix, count] : {std::pair{"train", train_count}, std::pair{"t10k", test_count}}) {
    Bytes pixels, labels;
    for (uint32_t i = 0; i < count; ++i) {
      for (int k = 0; k < 6; ++k) pixels.push_back(fake_pixel(i, k));
      labels.push_back(static_cast<uint8_t>(i % 10));
    }
    std::string ext = gzip ? ".gz" : "";
    write_file(dir + "/" + prefix + "-images-idx3-ubyte" + ext, idx_images(count, 2, 3, pixels), gzip);
    write_file(dir + "/" + prefix + "-labels-idx1-ubyte" + ext, idx_labels(labels), gzip);
  }
}

// Pixel k of image i of digit d in a fake npm package.
inline uint8_t npm_pixel(int digit, int i, int k) { return static_cast<uint8_t>((digit * 31 + i * 17 + k * 5) % 256); }

// The npm package layout: dir/src/digits/0.json .. 9.json with `per_digit` images each, values
// written as the package does: pixel / 255 rounded to 3 decimals.
inline void write_npm_package(const std::string& dir, int per_digit) {
  for (int digit = 0; digit < 10; ++digit) {
    std::string text = "{\"data\": [";
    for (int i = 0; i < per_digit; ++i)
      for (int k = 0; k < 784; ++k) {
        char value[32];
        std::snprintf(value, sizeof value, "%.3f", npm_pixel(digit, i, k) / 255.0);
        if (i || k) text += ',';
        text += value;
      }
    write_text(dir + "/src/digits/" + std::to_string(digit) + ".json", text + "]}");
  }
}

// Sets (or with nullopt unsets) an environment variable for the scope, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value) setenv(name_.c_str(), value->c_str(), 1);
    else unsetenv(name_.c_str());
  }
  ~ScopedEnv() {
    if (old_) setenv(name_.c_str(), old_->c_str(), 1);
    else unsetenv(name_.c_str());
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace lowbit::testing_data
