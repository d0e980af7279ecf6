// `lowbit import MODEL.onnx --out MODEL.lbm`: a float model from ONNX (lowbit/onnx.h).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "lowbit/error.h"
#include "lowbit/model_file.h"
#if LOWBIT_WITH_ONNX
#include "lowbit/onnx.h"
#endif

namespace lowbit::cli {

Action add_import_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("import", "read an ONNX model (torch.onnx.export's graphs) into a float model file");
  struct Flags {
    std::string file, out, dataset;
    std::vector<float> mean, std;
    std::vector<int64_t> input_shape;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("file", f->file, "ONNX model (.onnx)")->required();
  cmd->add_option("--out", f->out, "float model file to write (.lbm)")->required();
  cmd->add_option("--dataset", f->dataset,
                  "the data the model expects (mnist, fashion-mnist, cifar10); default: the file's "
                  "lowbit.dataset metadata property");
  cmd->add_option("--mean", f->mean, "per-channel mean of pixels scaled to [0, 1] (default: the dataset's)")
      ->delimiter(',');
  cmd->add_option("--std", f->std, "per-channel std (default: the dataset's)")->delimiter(',')
      ->check(CLI::PositiveNumber);
  cmd->add_option("--input-shape", f->input_shape,
                  "per-sample input shape, e.g. 1,28,28, of the ONNX input's size (default: the ONNX input's)")
      ->delimiter(',')->check(CLI::Range(int64_t{1}, int64_t{1} << 28));
  return [f] {
#if LOWBIT_WITH_ONNX
    OnnxImportOptions options;
    if (!f->dataset.empty()) options.dataset = f->dataset;
    options.mean = f->mean;
    options.std = f->std;
    options.input_shape = f->input_shape;
    const Model model = import_onnx(f->file, options);
    save_model(model, f->out);
    std::printf("imported %s: %zu nodes, %lld parameters, input %s, %s; wrote %s\n", f->file.c_str(),
                model.node_count(), static_cast<long long>(model.parameter_count()),
                shape_string(model.input_shape()).c_str(),
                model.metadata.contains("dataset")
                    ? ("for " + model.metadata["dataset"].get<std::string>()).c_str()
                    : "no dataset recorded (give --dataset to eval and quantize)",
                f->out.c_str());
    return 0;
#else
    throw Error("this lowbit was built without ONNX (Debian's libonnx-dev); cannot read " + f->file);
#endif
  };
}

}  // namespace lowbit::cli
