// The ONNX model header, preprocessing metadata and checked atomic writing both exporters use.
#include "onnx/onnx_writer.h"

#include <onnx/checker.h>

#include <sstream>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/version.h"

namespace lowbit::onnx_writer {

onnx::NodeProto* add_node(onnx::GraphProto* graph, const std::string& op, const std::string& name,
                          const std::vector<std::string>& inputs, const std::string& output) {
  onnx::NodeProto* n = graph->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const std::string& i : inputs) n->add_input(i);
  n->add_output(output);
  return n;
}

void integer(onnx::NodeProto* n, const char* name, int64_t value) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void integers(onnx::NodeProto* n, const char* name, const std::vector<int64_t>& values) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void real(onnx::NodeProto* n, const char* name, float value) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
}

onnx::ModelProto new_model(const std::string& graph_name) {
  onnx::ModelProto proto;
  proto.set_ir_version(8);
  proto.set_producer_name("lowbit");
  proto.set_producer_version(LOWBIT_VERSION_STRING);
  proto.add_opset_import()->set_version(kOpset);
  proto.mutable_graph()->set_name(graph_name);
  return proto;
}

void put(onnx::ModelProto& proto, const std::string& key, const std::string& value) {
  auto* p = proto.add_metadata_props();
  p->set_key(key);
  p->set_value(value);
}

void put_preprocessing(onnx::ModelProto& proto, const nlohmann::json& m, const Shape& input_shape) {
  auto join = [](const nlohmann::json& values) {
    std::ostringstream s;
    s.precision(9);
    for (size_t i = 0; i < values.size(); ++i) s << (i ? "," : "") << values[i].get<double>();
    return s.str();
  };
  if (m.contains("dataset") && m["dataset"].is_string()) put(proto, "lowbit.dataset", m["dataset"].get<std::string>());
  if (m.contains("mean") && m["mean"].is_array()) put(proto, "lowbit.mean", join(m["mean"]));
  if (m.contains("std") && m["std"].is_array()) put(proto, "lowbit.std", join(m["std"]));
  put(proto, "lowbit.input_shape", join(nlohmann::json(input_shape)));
}

void check_and_write(const onnx::ModelProto& proto, const std::string& path, const std::string& what) {
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    throw Error(path + ": the exported " + what + " fails ONNX's checker (a lowbit bug): " +
                std::string(e.what()).substr(0, 300));
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) throw Error(path + ": the model is too large for one ONNX file");
  write_file_atomic(path, bytes);
}

}  // namespace lowbit::onnx_writer
