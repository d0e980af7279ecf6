// Command-line usage errors: spelling suggestions for subcommands and flags, and the help to see.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "lowbit/error.h"

namespace lowbit::cli {

// A bad command line (unknown subcommand or flag, a flag's value out of range): exit code 2, the
// code of every CLI11 parse error, whether found while parsing or later by a command's action.
class FlagError : public Error {
 public:
  using Error::Error;
};

// Edit distance with adjacent transpositions (optimal string alignment): "trian" -> "train" is 1.
int edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `word` when it is close enough to be a likely typo (distance at most
// 1 for short words, 2 from 5 characters on, or a unique prefix of at least 3 letters); else "".
std::string closest(const std::string& word, const std::vector<std::string>& candidates);

// The deepest subcommand argv names, e.g. `data list`, and how to ask for its help ("lowbit data
// list --help"); `app` itself when argv names none.
CLI::App* named_command(CLI::App& app, int argc, char** argv);
std::string help_hint(const CLI::App* command);

// Before CLI11 parses: throws FlagError for a subcommand or long flag `command` does not have,
// suggesting the closest one ("unknown flag --epoch; did you mean --epochs?").
void check_spelling(CLI::App& app, int argc, char** argv);

}  // namespace lowbit::cli
