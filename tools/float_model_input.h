// Float models given on the command line: lowbit's .lbm files or, where lowbit has ONNX, .onnx files.
#pragma once

#include <string>

#include "lowbit/model.h"

namespace lowbit::cli {

// True for a path ending in ".onnx" (any case).
bool is_onnx_path(const std::string& path);

// A float model: an ONNX file (by its name) is imported with the preprocessing its metadata
// properties give, or the normalization of `dataset` (the command's --dataset) when that is set
// (docs/onnx.md; `lowbit import` takes flags for the rest); any other file is loaded as a .lbm.
// Throws lowbit::Error naming the file, also for an ONNX file that says nothing of its inputs.
Model load_float_model(const std::string& path, const std::string& dataset);

}  // namespace lowbit::cli
