// Test helpers for tests that run ONNX Runtime through node: where the npm package
// onnxruntime-node is (setup installs it; empty when node or the package is missing, and the tests
// then skip), and running a model on uint8 pixels through tests/onnx/ort_run.js.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lowbit/tensor.h"

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

// ONNX Runtime's first output on uint8 pixels [count, ...shape] through tests/onnx/ort_run.js, as
// `size` values of type T.
template <typename T>
std::vector<T> run_ort_as(const std::string& modules, const std::string& model, const std::vector<uint8_t>& pixels,
                          int64_t count, const Shape& shape, int64_t size) {
  const std::string in = model + ".pixels", out = model + ".out";
  std::ofstream(in, std::ios::binary).write(reinterpret_cast<const char*>(pixels.data()),
                                            static_cast<std::streamsize>(count * shape_numel(shape)));
  std::string shape_text;
  for (int64_t d : shape) shape_text += (shape_text.empty() ? "" : ",") + std::to_string(d);
  const std::string command = "NODE_PATH=" + modules + " node " LOWBIT_TEST_SOURCE "/onnx/ort_run.js " + model + " " +
                              in + " " + std::to_string(count) + " " + shape_text + " " + out;
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  std::vector<T> result(static_cast<size_t>(size));
  std::ifstream(out, std::ios::binary).read(reinterpret_cast<char*>(result.data()),
                                            static_cast<std::streamsize>(result.size() * sizeof(T)));
  return result;
}

// Float logits [count, classes].
inline std::vector<float> run_ort(const std::string& modules, const std::string& model,
                                  const std::vector<uint8_t>& pixels, int64_t count, const Shape& shape,
                                  int64_t classes) {
  return run_ort_as<float>(modules, model, pixels, count, shape, count * classes);
}

// The class of each row of logits [rows, classes] (the first of equal largest).
template <typename T>
std::vector<int> argmax_rows(const std::vector<T>& logits, int64_t classes) {
  std::vector<int> best;
  for (size_t i = 0; i < logits.size(); i += static_cast<size_t>(classes))
    best.push_back(static_cast<int>(std::max_element(logits.begin() + i, logits.begin() + i + classes) -
                                    (logits.begin() + i)));
  return best;
}

}  // namespace lowbit::testing_ort
