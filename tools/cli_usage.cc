// Spelling suggestions for the lowbit command line, checked against the CLI11 definitions.
#include "cli_usage.h"

#include <algorithm>

namespace lowbit::cli {
namespace {

std::vector<std::string> long_flags(CLI::App* command) {
  std::vector<std::string> names;
  for (const CLI::Option* option : command->get_options())
    for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
  return names;
}

std::vector<std::string> subcommand_names(CLI::App* command) {
  std::vector<std::string> names;
  for (CLI::App* sub : command->get_subcommands({})) names.push_back(sub->get_name());
  return names;
}

std::string command_words(const CLI::App* command) {
  return command->get_parent() ? command_words(command->get_parent()) + " " + command->get_name()
                               : "lowbit";
}

// Follows argv down the subcommands. With `check`, an unknown subcommand or long flag throws.
CLI::App* walk(CLI::App& app, int argc, char** argv, bool check) {
  CLI::App* command = &app;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.rfind("--", 0) == 0) {
      const std::string name = arg.substr(0, arg.find('='));
      const CLI::Option* option = command->get_option_no_throw(name);
      if (!option) {
        if (!check) continue;
        const std::string guess = closest(name, long_flags(command));
        throw FlagError("unknown flag " + name + " for " + command_words(command) +
                        (guess.empty() ? "" : "; did you mean " + guess + "?"));
      }
      if (option->get_type_size() != 0 && arg.find('=') == std::string::npos) ++i;  // its value
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-') continue;  // short flags and negative numbers: CLI11's
    const std::vector<std::string> names = subcommand_names(command);
    if (names.empty()) continue;  // a positional argument
    if (std::find(names.begin(), names.end(), arg) != names.end()) {
      command = command->get_subcommand(arg);
      continue;
    }
    if (!check) return command;
    const std::string guess = closest(arg, names);
    throw FlagError("unknown subcommand \"" + arg + "\"" +
                    (command->get_parent() ? " of " + command_words(command) : "") +
                    (guess.empty() ? "; the subcommands are " + CLI::detail::join(names, ", ")
                                   : "; did you mean \"" + guess + "\"?"));
  }
  return command;
}

}  // namespace

int edit_distance(const std::string& a, const std::string& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<int>> d(n + 1, std::vector<int>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = static_cast<int>(i);
  for (size_t k = 0; k <= m; ++k) d[0][k] = static_cast<int>(k);
  for (size_t i = 1; i <= n; ++i)
    for (size_t k = 1; k <= m; ++k) {
      const int cost = a[i - 1] == b[k - 1] ? 0 : 1;
      d[i][k] = std::min({d[i - 1][k] + 1, d[i][k - 1] + 1, d[i - 1][k - 1] + cost});
      if (i > 1 && k > 1 && a[i - 1] == b[k - 2] && a[i - 2] == b[k - 1])
        d[i][k] = std::min(d[i][k], d[i - 2][k - 2] + 1);
    }
  return d[n][m];
}

std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  const size_t letters = word.size() - std::min(word.find_first_not_of('-'), word.size());
  const int limit = letters < 5 ? 1 : letters < 10 ? 2 : 3;
  std::string best;
  int best_distance = limit + 1;
  for (const std::string& c : candidates) {
    const int distance = edit_distance(word, c);
    if (distance < best_distance) best = c, best_distance = distance;
  }
  if (!best.empty() || letters < 3) return best;
  std::vector<std::string> prefixed;
  for (const std::string& c : candidates)
    if (c.rfind(word, 0) == 0) prefixed.push_back(c);
  return prefixed.size() == 1 ? prefixed[0] : "";
}

CLI::App* named_command(CLI::App& app, int argc, char** argv) {
  return walk(app, argc, argv, false);
}

std::string help_hint(const CLI::App* command) { return command_words(command) + " --help"; }

void check_spelling(CLI::App& app, int argc, char** argv) { walk(app, argc, argv, true); }

}  // namespace lowbit::cli
