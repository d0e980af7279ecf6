// Loads and cross-checks a folder of MNIST-layout IDX files.
#include "data/idx_dataset.h"

#include <filesystem>

#include "lowbit/error.h"
#include "lowbit/idx.h"

namespace lowbit::data {
namespace {

// The raw file when present, else the .gz one; names both when neither exists.
std::string find_file(const std::string& dir, const std::string& name) {
  std::error_code ignored;
  std::string raw = dir + "/" + name;
  if (std::filesystem::exists(raw, ignored)) return raw;
  if (std::filesystem::exists(raw + ".gz", ignored)) return raw + ".gz";
  throw Error(raw + ".gz: missing (nor found uncompressed); " + dir +
              " holds other files of the dataset, so it must hold all four");
}

ImageSet read_split(const std::string& images_path, const std::string& labels_path,
                    int num_classes) {
  IdxImages images = read_idx_images(images_path);
  std::vector<uint8_t> labels = read_idx_labels(labels_path);
  if (static_cast<int64_t>(labels.size()) != images.count)
    throw Error(images_path + " and " + labels_path + ": " + std::to_string(images.count) +
                " images but " + std::to_string(labels.size()) + " labels");
  if (images.count == 0) throw Error(images_path + ": holds no images");
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] >= num_classes)
      throw Error(labels_path + ": label " + std::to_string(labels[i]) + " at index " +
                  std::to_string(i) + " is not a class (expected 0.." +
                  std::to_string(num_classes - 1) + ")");
  ImageSet set;
  set.count = images.count;
  set.height = images.rows;
  set.width = images.cols;
  set.pixels = std::move(images.pixels);
  set.labels = std::move(labels);
  return set;
}

}  // namespace

std::vector<std::string> idx_file_candidates(const std::string& dir) {
  std::vector<std::string> files;
  for (const char* name : kIdxFileNames) {
    files.push_back(dir + "/" + name);
    files.push_back(dir + "/" + name + ".gz");
  }
  return files;
}

Dataset load_idx_dataset(const DatasetInfo& info, const std::string& dir,
                         const std::string& source) {
  std::string paths[4];
  for (int i = 0; i < 4; ++i) paths[i] = find_file(dir, kIdxFileNames[i]);
  Dataset dataset;
  dataset.name = info.name;
  dataset.source = source;
  dataset.full = true;
  dataset.description = info.description;
  dataset.num_classes = static_cast<int>(info.class_names.size());
  dataset.class_names = info.class_names;
  dataset.mean = info.mean;
  dataset.std = info.std;
  dataset.train = read_split(paths[0], paths[1], dataset.num_classes);
  dataset.test = read_split(paths[2], paths[3], dataset.num_classes);
  if (dataset.train.height != dataset.test.height || dataset.train.width != dataset.test.width)
    throw Error(paths[0] + " and " + paths[2] + ": train images are " +
                std::to_string(dataset.train.height) + "x" + std::to_string(dataset.train.width) +
                " but test images are " + std::to_string(dataset.test.height) + "x" +
                std::to_string(dataset.test.width));
  return dataset;
}

std::pair<int64_t, int64_t> idx_dataset_counts(const std::string& dir) {
  int64_t train = read_idx_header(find_file(dir, kIdxFileNames[0]), kIdxImagesMagic).count;
  int64_t test = read_idx_header(find_file(dir, kIdxFileNames[2]), kIdxImagesMagic).count;
  return {train, test};
}

}  // namespace lowbit::data
