// What both ONNX exporters (float and QDQ) share: the model header, the preprocessing metadata,
// and checking then writing the file.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

#include <nlohmann/json.hpp>

#include "lowbit/tensor.h"

namespace lowbit::onnx_writer {

inline constexpr int kOpset = 17;

// An empty model: IR 8, producer lowbit, opset kOpset, its graph named `graph_name`.
onnx::ModelProto new_model(const std::string& graph_name);

// Metadata properties lowbit.dataset, lowbit.mean, lowbit.std (from the model's metadata, when
// present) and lowbit.input_shape, which the import reads back.
void put_preprocessing(onnx::ModelProto& proto, const nlohmann::json& metadata, const Shape& input_shape);
void put(onnx::ModelProto& proto, const std::string& key, const std::string& value);

// Runs ONNX's checker (a failure is a lowbit bug, said so naming `path` and `what`), then writes
// the file atomically.
void check_and_write(const onnx::ModelProto& proto, const std::string& path, const std::string& what);

}  // namespace lowbit::onnx_writer
