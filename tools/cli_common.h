// Pieces every lowbit subcommand shares: data flags, thread count, bit-width parsing.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_usage.h"
#include "lowbit/dataset.h"

namespace lowbit::cli {

struct DataFlags {
  std::string dataset = "mnist";
  std::string data_dir;  // empty: LOWBIT_DATA_DIR; neither: the cache, then setup's installs
};
void add_data_flags(CLI::App& app, DataFlags& flags, bool dataset_required = false);
inline constexpr const char* kDataDirHelp =
    "folder holding mnist/, fashion-mnist/ or cifar10/, or that dataset's folder itself (named "
    "mnist or fashion-mnist; any name for CIFAR-10's archive or .bin files); the only place looked "
    "in (default: $LOWBIT_DATA_DIR likewise; neither: the cache, then what setup installed)";

// Loads the dataset and says on stderr which data was used.
Dataset load_data(const DataFlags& flags);

// Loads the dataset named by --dataset, or, when none is given, the one the model was trained on
// (its metadata's "dataset"). When the data loaded is another dataset than that (asked for, or
// mnist-10k standing in for mnist), says so on stderr in one line naming the model and both.
// With `model_classes`, the model's outputs, throws lowbit::Error naming the model unless the
// dataset has exactly that many classes, before any work is done.
Dataset load_data_for(const DataFlags& flags, const nlohmann::json& model_metadata,
                      const std::string& model_path,
                      int64_t model_classes = 0);

// "--bits B" or "--weight-bits W --act-bits A" (each 1..8); 0 where not given.
struct BitFlags {
  int bits = 0, weight_bits = 0, act_bits = 0;
  int weight() const { return weight_bits ? weight_bits : bits; }
  int act() const { return act_bits ? act_bits : bits; }
};
void add_bit_flags(CLI::App& app, BitFlags& flags);

// "--calib-count N": how many training images calibrate the ranges.
void add_calibration_flag(CLI::App& app, int64_t& count);

// "--threads N": OpenMP threads, an integer 0..1024; 0 (the default) is all cores. `bench`
// alone takes a list of such counts (docs/cli.md).
void add_threads_flag(CLI::App& app, int& threads);
void apply_threads(int threads);
inline constexpr const char* kThreadsHelp = "worker threads, 0..1024; 0 = all cores";

// "1-8", "4", "2,4,8" -> sorted unique widths; throws FlagError naming `flag` otherwise.
std::vector<int> parse_bits(const std::string& text, const std::string& flag);

// "minmax, percentile, ...": the presets --method and --methods accept, for help and errors.
std::string method_names();
// Throws FlagError naming `flag` unless `method` is a preset, suggesting the closest.
void check_method(const std::string& method, const std::string& flag);
// "minmax,mse" -> those presets in that order; "all" -> every preset. Throws FlagError.
std::vector<std::string> parse_methods(const std::string& text, const std::string& flag);

// "--quiet": no progress bars and no "data: ..." lines on stderr; errors and warnings still show.
// add_data_flags adds it too.
void add_quiet_flag(CLI::App& app);
bool quiet();

// The folder a file path lives in ("." for a bare name).
std::string parent_dir(const std::string& path);

// Normalized images of a whole set, flattened: [count, C*H*W].
Tensor normalize_all(const Dataset& data, const ImageSet& images);

}  // namespace lowbit::cli
