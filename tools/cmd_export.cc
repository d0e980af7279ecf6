// `lowbit export MODEL.lbm --out MODEL.onnx`: a float model as an ONNX graph (lowbit/onnx.h).
#include <cstdio>
#include <memory>
#include <string>

#include "cli_common.h"
#include "commands.h"
#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/model_file.h"
#if LOWBIT_WITH_ONNX
#include "lowbit/onnx.h"
#endif

namespace lowbit::cli {

Action add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "write a float model (.lbm) as ONNX, for ONNX Runtime and other tools");
  struct Flags {
    std::string file, out;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("file", f->file, "float model file (.lbm)")->required();
  cmd->add_option("--out", f->out, "ONNX file to write (.onnx)")->required();
  return [f] {
#if LOWBIT_WITH_ONNX
    if (model_file_kind(f->file) != "float")
      throw Error(f->file + ": a quantized model; lowbit exports float models only so far (QDQ export "
                  "of .lbq files is not done yet)");
    const Model model = load_model(f->file);
    ensure_writable_dir(parent_dir(f->out), "--out");
    export_onnx(model, f->out);
    std::printf("wrote %s: %zu layers, opset 17, input \"input\" [batch, %s]\n", f->out.c_str(),
                model.node_count(), shape_string(model.input_shape()).substr(1).c_str());
    return 0;
#else
    throw Error("this lowbit was built without ONNX (Debian's libonnx-dev); cannot write " + f->out);
#endif
  };
}

}  // namespace lowbit::cli
