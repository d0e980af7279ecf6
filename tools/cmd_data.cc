// `lowbit data list`: every dataset, where it was found, and whether it is the full set.
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "commands.h"

namespace lowbit::cli {

Action add_data_command(CLI::App& app) {
  auto* data = app.add_subcommand("data", "datasets lowbit can find");
  data->require_subcommand(1);
  auto* list = data->add_subcommand("list", "show each dataset, where it is and whether it is full");
  auto flags = std::make_shared<DataFlags>();
  list->add_option("--data-dir", flags->data_dir, kDataDirHelp);
  return [flags] {
    DataOptions options;
    if (!flags->data_dir.empty()) options.data_dir = flags->data_dir;
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
