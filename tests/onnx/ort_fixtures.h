// Test helper: where the npm package onnxruntime-node is (setup installs it), for tests that run
// ONNX Runtime through node; empty when node or the package is missing (the tests then skip).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace lowbit::testing_ort {

inline std::string ort_node_modules() {
  std::string modules;
  for (const char* dir : {static_cast<const char*>(std::getenv("LOWBIT_NPM_MODULES")),
                          "/usr/local/share/lowbit/npm/node_modules"})
    if (dir && std::filesystem::exists(std::string(dir) + "/onnxruntime-node/package.json")) {
      modules = dir;
      break;
    }
  if (const char* home = std::getenv("HOME"); modules.empty() && home) {
    const std::string dir = std::string(home) + "/.local/share/lowbit/npm/node_modules";
    if (std::filesystem::exists(dir + "/onnxruntime-node/package.json")) modules = dir;
  }
  if (modules.empty() || std::system("node --version >/dev/null 2>&1") != 0) return "";
  return modules;
}

}  // namespace lowbit::testing_ort
