// `lowbit export MODEL.lbm|MODEL.lbq --out MODEL.onnx`: a float model as an ONNX graph, a quantized
// one as a QDQ graph (lowbit/onnx.h).
#include <cstdio>
#include <memory>
#include <string>

#include "cli_common.h"
#include "commands.h"
#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/model_file.h"
#include "lowbit/quantized_model.h"
#if LOWBIT_WITH_ONNX
#include "lowbit/onnx.h"
#endif

namespace lowbit::cli {

Action add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "write a float model (.lbm) as ONNX, or a quantized one (.lbq) as a QDQ "
                                 "graph, for ONNX Runtime and other tools");
  struct Flags {
    std::string file, out;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("file", f->file, "float (.lbm) or quantized (.lbq) model file")->required();
  cmd->add_option("--out", f->out, "ONNX file to write (.onnx)")->required();
  return [f] {
#if LOWBIT_WITH_ONNX
    if (model_file_kind(f->file) == "quantized") {
      const QuantizedModel model = QuantizedModel::load(f->file);
      ensure_writable_dir(parent_dir(f->out), "--out");
      export_onnx(model, f->out);
      std::printf("wrote %s: QDQ graph of %zu %s layers (%d-bit weights, %d-bit activations), opset 17, "
                  "input \"input\" uint8 pixels [batch, %s, output \"logits\" float\n",
                  f->out.c_str(), model.layer_count(), model.is_graph() ? "Conv/Linear" : "Linear",
                  model.weight_bits(), model.act_bits(), shape_string(model.input_shape()).substr(1).c_str());
      // ONNX Runtime adds each int32 bias at s_x * s_w of the stored codes: a bias the engine
      // keeps finer than the codes can carry (qdq_builder.cc) is rounded, and ORT's predictions
      // part from the engine's on a few images in a thousand (docs/onnx.md).
      if (const size_t rounded = onnx_rounded_bias_layers(model))
        std::printf("note: %zu of %zu layers keep their bias finer than ONNX's int32 grid; the export rounds "
                    "it, so ONNX Runtime runs a model a little off the engine's (quantize with --bias-grid onnx "
                    "for an exact export)\n", rounded, model.layer_count());
      return 0;
    }
    const Model model = load_model(f->file);
    ensure_writable_dir(parent_dir(f->out), "--out");
    export_onnx(model, f->out);
    std::printf("wrote %s: %zu layers, opset 17, input \"input\" [batch, %s\n", f->out.c_str(),
                model.node_count(), shape_string(model.input_shape()).substr(1).c_str());
    return 0;
#else
    throw Error("this lowbit was built without ONNX (Debian's libonnx-dev); cannot write " + f->out);
#endif
  };
}

}  // namespace lowbit::cli
