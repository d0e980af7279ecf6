// `lowbit models` lists the architecture presets with their parameters and multiply-adds.
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/model.h"

namespace lowbit::cli {
namespace {

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string millions(int64_t n) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1fM", static_cast<double>(n) / 1e6);
  return text;
}

}  // namespace

Action add_models_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "models", "list the model presets (for train --arch) with parameters and multiply-adds");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "print a JSON array instead of a table");
  return [json] {
    nlohmann::json rows = nlohmann::json::array();
    if (!*json)
      std::printf("%-12s %-12s %11s %20s  %s\n", "preset", "input", "parameters", "multiply-adds",
                  "architecture");
    for (const ModelPreset& preset : model_presets()) {
      const int64_t classes = 10;
      const Model model = Model::from_description(preset_description(preset.name, preset.input_shape, classes));
      if (*json) {
        rows.push_back({{"name", preset.name},
                        {"summary", preset.summary},
                        {"input_shape", preset.input_shape},
                        {"classes", classes},
                        {"parameters", model.parameter_count()},
                        {"multiply_adds", model.multiply_adds()}});
        continue;
      }
      std::printf("%-12s %-12s %11s %20s  %s\n", preset.name.c_str(),
                  shape_string(preset.input_shape).c_str(), with_commas(model.parameter_count()).c_str(),
                  (with_commas(model.multiply_adds()) + " (" + millions(model.multiply_adds()) + ")").c_str(),
                  preset.summary.c_str());
    }
    if (*json) std::printf("%s\n", rows.dump(2).c_str());
    else
      std::printf("multiply-adds per image, convolutions and Linear layers only (as PyTorch counts "
                  "them); 10 classes\n");
    return 0;
  };
}

}  // namespace lowbit::cli
