// The lowbit subcommands: each registers its flags and returns the action to run.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace lowbit::cli {

using Action = std::function<int()>;

Action add_data_command(CLI::App& app);
Action add_train_command(CLI::App& app);
Action add_eval_command(CLI::App& app);
Action add_sweep_command(CLI::App& app);
Action add_quantize_command(CLI::App& app);
Action add_infer_command(CLI::App& app);
Action add_bench_command(CLI::App& app);
Action add_qat_command(CLI::App& app);
Action add_sensitivity_command(CLI::App& app);
Action add_layers_command(CLI::App& app);
Action add_inspect_command(CLI::App& app);
Action add_models_command(CLI::App& app);
Action add_import_command(CLI::App& app);
Action add_export_command(CLI::App& app);

}  // namespace lowbit::cli
