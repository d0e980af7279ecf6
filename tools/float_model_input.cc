// Float models given on the command line: lowbit's .lbm files or, where lowbit has ONNX, .onnx files.
#include "float_model_input.h"

#include <algorithm>
#include <cctype>

#include "lowbit/error.h"
#include "lowbit/model_file.h"
#if LOWBIT_WITH_ONNX
#include "lowbit/onnx.h"
#endif

namespace lowbit::cli {

bool is_onnx_path(const std::string& path) {
  if (path.size() < 5) return false;
  std::string tail = path.substr(path.size() - 5);
  std::transform(tail.begin(), tail.end(), tail.begin(), [](unsigned char c) { return std::tolower(c); });
  return tail == ".onnx";
}

Model load_float_model(const std::string& path, const std::string& dataset) {
  if (!is_onnx_path(path)) return load_model(path);
#if LOWBIT_WITH_ONNX
  OnnxImportOptions options;
  if (!dataset.empty()) options.dataset = dataset;
  Model model = import_onnx(path, options);
  if (!model.metadata.contains("mean"))
    throw Error(path + ": says nothing of its inputs (no lowbit.dataset or lowbit.mean/std metadata "
                "property): give --dataset, or use lowbit import with --dataset or --mean and --std");
  return model;
#else
  throw Error(path + ": this lowbit was built without ONNX (Debian's libonnx-dev)");
#endif
}

}  // namespace lowbit::cli
