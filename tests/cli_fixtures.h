// Running the lowbit CLI from tests in a sealed environment and checking how it fails.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace lowbit::testing_cli {

struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs the CLI with `args` seeing only `dir`'s data: no LOWBIT_DATA_DIR, no cache, no system data.
// `env`: extra "NAME=value" settings.
inline CliRun run_cli(const std::string& dir, const std::string& args, const std::string& env = "") {
  const std::string out = dir + "/stdout.txt", err = dir + "/stderr.txt";
  const std::string command = "env -u LOWBIT_DATA_DIR HOME=" + dir + "/home XDG_CACHE_HOME=" + dir +
                              "/cache LOWBIT_SYSTEM_DATA_ROOT=" + dir + "/system " + env + " " +
                              LOWBIT_CLI_PATH + " " + args + " >" + out + " 2>" + err;
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), slurp(out), slurp(err)};
}

// Exit 1 or 2 (not a crash), exactly one line on stderr containing `words`.
inline void expect_clean_failure(const CliRun& run, const std::string& words) {
  EXPECT_TRUE(run.exit_code == 1 || run.exit_code == 2) << "exit " << run.exit_code << ": " << run.err;
  ASSERT_FALSE(run.err.empty());
  EXPECT_EQ(run.err.find('\n'), run.err.size() - 1) << "one line expected: " << run.err;
  EXPECT_NE(run.err.find(words), std::string::npos) << run.err;
}

}  // namespace lowbit::testing_cli
