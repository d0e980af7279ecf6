// Pieces every lowbit subcommand shares: data flags, thread count, bit-width parsing.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "lowbit/dataset.h"

namespace lowbit::cli {

struct DataFlags {
  std::string dataset = "mnist";
  std::string data_dir;  // empty: LOWBIT_DATA_DIR, then the cache, then setup's installs
};
void add_data_flags(CLI::App& app, DataFlags& flags, bool dataset_required = false);

// Loads the dataset and says on stderr which data was used.
Dataset load_data(const DataFlags& flags);

// "--threads N": OpenMP threads; 0 keeps the default (all cores).
void add_threads_flag(CLI::App& app, int& threads);
void apply_threads(int threads);

// "1-8", "4", "2,4,8" -> sorted unique widths; throws lowbit::Error naming `flag` otherwise.
std::vector<int> parse_bits(const std::string& text, const std::string& flag);

// The folder a file path lives in ("." for a bare name).
std::string parent_dir(const std::string& path);

// Normalized images of a whole set, flattened: [count, C*H*W].
Tensor normalize_all(const Dataset& data, const ImageSet& images);

}  // namespace lowbit::cli
