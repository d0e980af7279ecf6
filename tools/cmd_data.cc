// `lowbit data list`: every dataset, where it was found, and whether it is the full set.
// `lowbit data fetch NAME`: download a dataset's official files into the user cache.
#include <signal.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "data/catalog.h"
#include "lowbit/fetch.h"

namespace lowbit::cli {
namespace {

volatile std::sig_atomic_t stop_signal = 0;

void on_stop_signal(int signal) { stop_signal = signal; }

// SIGINT and SIGTERM only set a flag that the download polls, so that it can remove its
// temporary files; the command then dies of the same signal.
struct StopSignals {
  struct sigaction old_int {}, old_term {};
  StopSignals() {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int);
    sigaction(SIGTERM, &action, &old_term);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
  }
};

Action add_fetch_command(CLI::App& data) {
  auto* fetch = data.add_subcommand(
      "fetch", "download a dataset's official files into the user cache, checking their MD5");
  struct Flags {
    std::string name, url, cache;
    std::vector<std::string> md5;
    bool progress = true;
  };
  auto f = std::make_shared<Flags>();
  fetch->add_option("name", f->name, "cifar10, mnist or fashion-mnist")->required();
  fetch->add_option("--url", f->url,
                    "folder URL to fetch the official file names from instead of the publisher's "
                    "(for cifar10 also the archive's own URL)");
  fetch->add_option("--cache", f->cache,
                    "cache folder to put DATASET/ in (default: $XDG_CACHE_HOME/lowbit/data or "
                    "~/.cache/lowbit/data)");
  fetch->add_option("--md5", f->md5,
                    "[FILE=]MD5 expected instead of the official one (FILE may be left out for "
                    "cifar10's one file); repeatable");
  fetch->add_flag("!--no-progress", f->progress, "no progress bar");
  return [f] {
    FetchOptions options;
    options.url = f->url;
    options.cache_dir = f->cache;
    options.progress = f->progress;
    for (const std::string& given : f->md5) {
      const auto equals = given.find('=');
      if (equals != std::string::npos) {
        options.md5[given.substr(0, equals)] = given.substr(equals + 1);
        continue;
      }
      std::vector<OfficialFile> files = official_files(f->name);
      if (files.size() != 1)
        throw FlagError("--md5 " + given + ": " + f->name + " has " + std::to_string(files.size()) +
                    " files; say which, as --md5 FILE=MD5");
      options.md5[files[0].name] = given;
    }
    stop_signal = 0;
    options.cancelled = [] { return stop_signal != 0; };
    FetchResult result;
    {
      StopSignals signals;
      try {
        result = fetch_dataset(f->name, options);
      } catch (const FetchInterrupted& e) {
        std::fprintf(stderr, "lowbit: %s; nothing was kept\n", e.what());
        const int signal = stop_signal ? static_cast<int>(stop_signal) : SIGINT;
        std::signal(signal, SIG_DFL);
        std::raise(signal);
        return 128 + signal;
      }
    }
    for (const FetchedFile& file : result.files) {
      const std::string checked = std::string(file.official_md5 ? "official " : "--md5 ") + "MD5 " + file.md5;
      if (file.downloaded)
        std::printf("%s: %s %s (%s bytes, %s)\n", result.dataset.c_str(),
                    file.replaced ? "replaced" : "fetched", file.path.c_str(),
                    data::with_commas(file.bytes).c_str(), checked.c_str());
      else
        std::printf("%s: %s is already there (%s)\n", result.dataset.c_str(), file.path.c_str(),
                    checked.c_str());
    }
    if (const auto dir = std::getenv("LOWBIT_DATA_DIR"); dir && *dir)
      std::fprintf(stderr, "lowbit: note: LOWBIT_DATA_DIR=%s is set, so lowbit reads only that "
                   "folder, not the cache; unset it to use %s\n", dir, result.dir.c_str());
    return 0;
  };
}

}  // namespace

Action add_data_command(CLI::App& app) {
  auto* data = app.add_subcommand("data", "datasets lowbit can find, and downloading them");
  data->require_subcommand(1);
  auto* list = data->add_subcommand("list", "show each dataset, where it is and whether it is full");
  auto flags = std::make_shared<DataFlags>();
  auto json = std::make_shared<bool>(false);
  list->add_option("--data-dir", flags->data_dir, kDataDirHelp);
  list->add_flag("--json", *json, "print the list as JSON");
  Action fetch = add_fetch_command(*data);
  return [flags, json, list, fetch] {
    if (!list->parsed()) return fetch();
    DataOptions options;
    if (!flags->data_dir.empty()) options.data_dir = flags->data_dir;
    if (*json) {
      nlohmann::json out = nlohmann::json::array();
      for (const DatasetStatus& s : list_datasets(options)) {
        nlohmann::json row = {{"dataset", s.name},          {"found", s.found},
                              {"full", s.found && s.full},  {"train", s.train_count},
                              {"test", s.test_count},       {"location", s.location}};
        if (!s.problem.empty()) row["problem"] = s.problem;
        out.push_back(row);
      }
      std::printf("%s\n", out.dump(2).c_str());
      return 0;
    }
    std::printf("%-14s %-6s %-7s %8s %8s  %s\n", "dataset", "found", "full", "train", "test",
                "location");
    for (const DatasetStatus& s : list_datasets(options))
      std::printf("%-14s %-6s %-7s %8lld %8lld  %s%s%s\n", s.name.c_str(), s.found ? "yes" : "no",
                  s.found ? (s.full ? "full" : "subset") : "-",
                  static_cast<long long>(s.train_count), static_cast<long long>(s.test_count),
                  s.location.c_str(), s.problem.empty() ? "" : "; cannot be read: ",
                  s.problem.c_str());
    return 0;
  };
}

}  // namespace lowbit::cli
