// What both ONNX exporters (float and QDQ) share: the model header, nodes and their attributes,
// the preprocessing metadata, and checking then writing the file.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/tensor.h"

namespace lowbit::onnx_writer {

inline constexpr int kOpset = 17;

// An empty model: IR 8, producer lowbit, opset kOpset, its graph named `graph_name`.
onnx::ModelProto new_model(const std::string& graph_name);

// A node op(inputs) -> output named `name`, appended to `graph`.
onnx::NodeProto* add_node(onnx::GraphProto* graph, const std::string& op, const std::string& name,
                          const std::vector<std::string>& inputs, const std::string& output);
// Attributes of a node: one integer, a list of integers, one float.
void integer(onnx::NodeProto* n, const char* name, int64_t value);
void integers(onnx::NodeProto* n, const char* name, const std::vector<int64_t>& values);
void real(onnx::NodeProto* n, const char* name, float value);

// Metadata properties lowbit.dataset, lowbit.mean, lowbit.std (from the model's metadata, when
// present) and lowbit.input_shape, which the import reads back.
void put_preprocessing(onnx::ModelProto& proto, const nlohmann::json& metadata, const Shape& input_shape);
void put(onnx::ModelProto& proto, const std::string& key, const std::string& value);

// Runs ONNX's checker (a failure is a lowbit bug, said so naming `path` and `what`), then writes
// the file atomically.
void check_and_write(const onnx::ModelProto& proto, const std::string& path, const std::string& what);

}  // namespace lowbit::onnx_writer
