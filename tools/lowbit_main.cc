// lowbit command-line entry point: parses the subcommand and turns every error into one line.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli_usage.h"
#include "commands.h"
#include "lowbit/error.h"
#include "lowbit/version.h"
#include "openmp_wait.h"

int main(int argc, char** argv) {
  lowbit::cli::wait_passively_unless_told(argv);
  CLI::App app{"lowbit: train small networks, quantize them to 1-8 bits, run them on integers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lowbit " LOWBIT_VERSION_STRING);
  std::vector<std::pair<CLI::App*, lowbit::cli::Action>> commands;
  auto add = [&](lowbit::cli::Action (*make)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    lowbit::cli::Action action = make(app);
    commands.emplace_back(app.get_subcommands({})[before], std::move(action));
  };
  add(lowbit::cli::add_data_command);
  add(lowbit::cli::add_train_command);
  add(lowbit::cli::add_eval_command);
  add(lowbit::cli::add_sweep_command);
  add(lowbit::cli::add_quantize_command);
  add(lowbit::cli::add_infer_command);
  add(lowbit::cli::add_bench_command);
  add(lowbit::cli::add_qat_command);
  add(lowbit::cli::add_sensitivity_command);
  add(lowbit::cli::add_layers_command);
  add(lowbit::cli::add_inspect_command);
  add(lowbit::cli::add_models_command);
  add(lowbit::cli::add_import_command);
  add(lowbit::cli::add_export_command);

  // Every bad command line, found by CLI11 or later by a command, exits 2 and points to the
  // help of the subcommand it was given to (docs/cli.md).
  const auto usage_error = [&](std::string message) {
    for (char& c : message)
      if (c == '\n') c = ' ';
    std::fprintf(stderr, "lowbit: error: %s (see %s)\n", message.c_str(),
                 lowbit::cli::help_hint(lowbit::cli::named_command(app, argc, argv)).c_str());
    return 2;
  };
  try {
    lowbit::cli::check_spelling(app, argc, argv);
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  } catch (const lowbit::cli::FlagError& e) {
    return usage_error(e.what());
  }
  try {
    for (auto& [command, action] : commands)
      if (command->parsed()) return action();
  } catch (const lowbit::cli::FlagError& e) {
    return usage_error(e.what());
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "lowbit: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "lowbit: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit: internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}
