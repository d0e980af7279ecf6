// ONNX in and out: the graphs torch.onnx.export writes (opsets 13-17) mapped onto lowbit's layers,
// and lowbit's float and quantized models written as ONNX.
// docs/onnx.md lists the operators and how each maps.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lowbit/model.h"
#include "lowbit/tensor.h"

namespace lowbit {

class QuantizedModel;

// How the imported model's inputs are prepared. Each unset field is read from the file's
// metadata properties ("lowbit.dataset", "lowbit.mean", "lowbit.std", "lowbit.input_shape";
// numbers separated by commas), and mean and std then default to the dataset's own.
struct OnnxImportOptions {
  std::optional<std::string> dataset;  // "mnist", "cifar10", ...: the data the model expects
  std::vector<float> mean;             // per channel, on pixels scaled to [0, 1]
  std::vector<float> std;
  Shape input_shape;                   // per sample, e.g. [1, 28, 28]; same size as the ONNX input's
};

// Reads, checks (ONNX's own checker first) and maps an ONNX model. Throws lowbit::Error, one line
// naming `path` and, where one is at fault, the node and its op type.
Model import_onnx(const std::string& path, const OnnxImportOptions& options = {});

// Writes a float model as an ONNX graph (opset 17; float input [batch, ...input_shape] named
// "input", the output named after the last node), with the preprocessing as metadata
// properties that import_onnx reads back. Written atomically; throws lowbit::Error naming `path`.
void export_onnx(const Model& model, const std::string& path);

// Writes a quantized model as a QDQ graph, the form ONNX Runtime's static quantization writes
// (opset 17): uint8 input "input" of raw pixels [batch, ...input_shape] normalized and quantized
// as the engine's pixel table does, per layer DequantizeLinear -> Gemm or Conv (int32 bias through
// DequantizeLinear) -> QuantizeLinear -> Max/Min on the codes; a CNN's residual adds and average
// pools likewise between DequantizeLinear and QuantizeLinear, its max pools and ReLUs on the
// uint8 codes; float logits "logits".
// Codes of every width 1..8 are stored as uint8 (docs/onnx.md says how they map to lowbit's).
// Written atomically; throws lowbit::Error naming `path`.
void export_onnx(const QuantizedModel& model, const std::string& path);
// The layers whose int32 bias that export must round: ONNX Runtime adds a bias in units of the
// stored codes' s_x * s_w, finer by at most 2^(8 - b) than lowbit's unit, while the engine keeps
// it up to 2^acc_shift finer. 0 for a model quantized with --bias-grid onnx, which ONNX Runtime
// then runs exactly (docs/onnx.md).
size_t onnx_rounded_bias_layers(const QuantizedModel& model);

// The ONNX op types import_onnx maps, for messages and docs.
const std::vector<std::string>& onnx_supported_ops();

}  // namespace lowbit
