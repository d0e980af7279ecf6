// Shared flag handling for the lowbit subcommands.
#include "cli_common.h"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "data/catalog.h"
#include "lowbit/error.h"
#include "lowbit/quantize.h"

namespace lowbit::cli {
namespace {
bool quiet_run = false;
}  // namespace

void add_quiet_flag(CLI::App& app) {
  app.add_flag("-q,--quiet", quiet_run, "no progress bars or data lines on stderr (errors and "
               "warnings still show)");
}
bool quiet() { return quiet_run; }

void add_data_flags(CLI::App& app, DataFlags& flags, bool dataset_required) {
  auto* option = app.add_option("--dataset", flags.dataset, "mnist, fashion-mnist, mnist-10k or cifar10");
  if (dataset_required) option->required();
  app.add_option("--data-dir", flags.data_dir, kDataDirHelp);
  add_quiet_flag(app);
}

Dataset load_data(const DataFlags& flags) {
  DataOptions options;
  if (!flags.data_dir.empty()) options.data_dir = flags.data_dir;
  Dataset data = load_dataset(flags.dataset, options);
  if (!quiet())
    std::fprintf(stderr, "data: %s%s, %lld train / %lld test images, from %s\n", data.name.c_str(),
               data.full ? "" : " (subset)", static_cast<long long>(data.train.count),
               static_cast<long long>(data.test.count), data.source.c_str());
  return data;
}

Dataset load_data_for(const DataFlags& flags, const nlohmann::json& model_metadata,
                      const std::string& model_path, int64_t model_classes) {
  const std::string trained_on =
      model_metadata.is_object() ? model_metadata.value("dataset", "") : "";
  DataFlags chosen = flags;
  if (chosen.dataset.empty()) chosen.dataset = trained_on.empty() ? "mnist" : trained_on;
  // Checked before the data is read when the catalog knows the dataset's classes, and after.
  auto check_classes = [&](const std::string& name, int64_t classes) {
    if (model_classes && model_classes != classes)
      throw Error(model_path + ": the model has " + std::to_string(model_classes) + " outputs (classes), but " +
                  name + " has " + std::to_string(classes));
  };
  if (const data::DatasetInfo* info = data::find_dataset_info(chosen.dataset))
    check_classes(info->name, static_cast<int64_t>(info->class_names.size()));
  Dataset data = load_data(chosen);
  check_classes(data.name, data.num_classes);
  if (!trained_on.empty() && data.name != trained_on)
    std::fprintf(stderr, "lowbit: warning: %s was trained on %s (its metadata), but this run uses %s%s\n",
                 model_path.c_str(), trained_on.c_str(), data.name.c_str(),
                 trained_on == "mnist" && data.name == "mnist-10k"
                     ? ", whose images are all MNIST training images, possibly ones it trained on"
                     : "");
  return data;
}

void add_bit_flags(CLI::App& app, BitFlags& flags) {
  app.add_option("--bits", flags.bits, "bits of weights and activations")->check(CLI::Range(1, 8));
  app.add_option("--weight-bits", flags.weight_bits, "bits of weights")->check(CLI::Range(1, 8));
  app.add_option("--act-bits", flags.act_bits, "bits of activations")->check(CLI::Range(1, 8));
}

void add_calibration_flag(CLI::App& app, int64_t& count) {
  app.add_option("--calib-count", count, "training images used to calibrate ranges")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
}

void add_threads_flag(CLI::App& app, int& threads) {
  app.add_option("--threads", threads, kThreadsHelp)->check(CLI::Range(0, 1024));
}

void apply_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
}

std::vector<int> parse_bits(const std::string& text, const std::string& flag) {
  auto bad = [&](const std::string& why) { return FlagError(flag + " " + text + ": " + why); };
  auto number = [&](const std::string& s) {
    if (s.empty() || s.size() > 2 || !std::all_of(s.begin(), s.end(), ::isdigit))
      throw bad("expected bit widths like 1-8, 4 or 2,4,8");
    const int b = std::stoi(s);
    if (b < 1 || b > 8) throw bad(s + " is not a bit width in 1..8");
    return b;
  };
  std::vector<int> bits;
  std::stringstream parts(text);
  std::string part;
  while (std::getline(parts, part, ',')) {
    const auto dash = part.find('-');
    if (dash == std::string::npos) {
      bits.push_back(number(part));
      continue;
    }
    const int lo = number(part.substr(0, dash)), hi = number(part.substr(dash + 1));
    if (lo > hi) throw bad("range " + part + " runs backwards");
    for (int b = lo; b <= hi; ++b) bits.push_back(b);
  }
  if (bits.empty()) throw bad("no bit width given");
  std::sort(bits.begin(), bits.end());
  bits.erase(std::unique(bits.begin(), bits.end()), bits.end());
  return bits;
}

std::string method_names() { return CLI::detail::join(quantization_methods(), ", "); }

void check_method(const std::string& method, const std::string& flag) {
  const auto known = quantization_methods();
  if (std::find(known.begin(), known.end(), method) != known.end()) return;
  const std::string guess = closest(method, known);
  throw FlagError(flag + ": unknown method \"" + method + "\"" +
                  (guess.empty() ? "" : "; did you mean " + guess + "?") + " (known: " +
                  method_names() + ")");
}

std::vector<std::string> parse_methods(const std::string& text, const std::string& flag) {
  if (text == "all") return quantization_methods();
  std::vector<std::string> methods;
  for (const std::string& method : CLI::detail::split(text, ',')) {
    check_method(method, flag);
    if (std::find(methods.begin(), methods.end(), method) == methods.end())
      methods.push_back(method);
  }
  return methods;
}

std::string parent_dir(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Tensor normalize_all(const Dataset& data, const ImageSet& images) {
  return normalized_images(images, data.mean, data.std, 0, images.count);
}

}  // namespace lowbit::cli
