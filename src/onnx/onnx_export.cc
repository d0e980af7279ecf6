// lowbit float Model -> ONNX (opset 17): one ONNX node per layer (a Flatten before a Linear layer
// that reads an image), parameters as initializers, preprocessing as metadata properties.
#include <onnx/onnx_pb.h>


#include "lowbit/error.h"
#include "lowbit/onnx.h"
#include "onnx/onnx_writer.h"

namespace lowbit {
namespace {

using Json = nlohmann::json;

std::pair<int64_t, int64_t> pair_of(const Json& v) {
  if (v.is_array()) return {v[0].get<int64_t>(), v[1].get<int64_t>()};
  return {v.get<int64_t>(), v.get<int64_t>()};
}

class Exporter {
 public:
  explicit Exporter(const Model& model) : model_(model) {}

  onnx::ModelProto run() {
    onnx::ModelProto proto = onnx_writer::new_model(model_.name().empty() ? "lowbit" : model_.name());
    graph_ = proto.mutable_graph();
    add_value(graph_->add_input(), "input", model_.input_shape());
    for (size_t i = 0; i < model_.node_count(); ++i) node(i);
    add_value(graph_->add_output(), value_of(static_cast<int>(model_.node_count()) - 1), model_.output_shape());
    metadata(proto);
    return proto;
  }

 private:
  std::string value_of(int node) const { return node == Model::kModelInput ? "input" : model_.node_name(node); }

  void add_value(onnx::ValueInfoProto* v, const std::string& name, const Shape& per_sample) {
    v->set_name(name);
    auto* type = v->mutable_type()->mutable_tensor_type();
    type->set_elem_type(onnx::TensorProto::FLOAT);
    type->mutable_shape()->add_dim()->set_dim_param("batch");
    for (int64_t d : per_sample) type->mutable_shape()->add_dim()->set_dim_value(d);
  }

  std::string initializer(const std::string& name, const Shape& dims, const float* values, int64_t count) {
    onnx::TensorProto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(values), static_cast<size_t>(count) * sizeof(float)));
    return name;
  }
  std::string initializer(const std::string& name, const Tensor& tensor, const Shape& dims) {
    return initializer(name, dims, tensor.data(), tensor.size());
  }

  onnx::NodeProto* add_node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                            const std::string& output) {
    return onnx_writer::add_node(graph_, op, name, inputs, output);
  }
  static void ints(onnx::NodeProto* n, const char* name, const std::vector<int64_t>& values) {
    onnx_writer::integers(n, name, values);
  }
  static void integer(onnx::NodeProto* n, const char* name, int64_t value) { onnx_writer::integer(n, name, value); }
  static void real(onnx::NodeProto* n, const char* name, float value) { onnx_writer::real(n, name, value); }
  static void window(onnx::NodeProto* n, const Json& config) {
    const auto [kh, kw] = pair_of(config["kernel"]);
    const auto [sh, sw] = pair_of(config["stride"]);
    const auto [ph, pw] = pair_of(config["padding"]);
    ints(n, "kernel_shape", {kh, kw});
    ints(n, "strides", {sh, sw});
    ints(n, "pads", {ph, pw, ph, pw});
  }

  void node(size_t i) {
    const Layer& layer = model_.layer(i);
    const std::string kind = layer.kind(), name = model_.node_name(i), out = name;
    std::vector<std::string> inputs;
    for (int input : model_.node_inputs(i)) inputs.push_back(value_of(input));
    const Json config = layer.config();
    const std::span<const Tensor> params = layer.parameters();
    if (kind == "linear") {
      std::string x = inputs[0];
      const Shape in_shape = model_.node_input_shapes(i)[0];
      if (in_shape.size() > 1) {  // lowbit's Linear flattens an image itself; ONNX's Gemm does not
        x = name + "/flatten";
        add_node("Flatten", x, {inputs[0]}, x);
      }
      const Tensor& w = params[0];
      auto* n = add_node("Gemm", name, {x, initializer(name + ".weight", w, w.shape()),
                                         initializer(name + ".bias", params[1], params[1].shape())}, out);
      integer(n, "transB", 1);
    } else if (kind == "conv2d") {
      std::vector<std::string> in = {inputs[0], initializer(name + ".weight", params[0], params[0].shape())};
      if (config["bias"].get<bool>()) in.push_back(initializer(name + ".bias", params[1], params[1].shape()));
      auto* n = add_node("Conv", name, in, out);
      window(n, config);
      integer(n, "group", config["groups"].get<int64_t>());
    } else if (kind == "batch_norm") {
      const std::span<const Tensor> buffers = layer.buffers();
      auto* n = add_node("BatchNormalization", name,
                         {inputs[0], initializer(name + ".weight", params[0], params[0].shape()),
                          initializer(name + ".bias", params[1], params[1].shape()),
                          initializer(name + ".running_mean", buffers[0], buffers[0].shape()),
                          initializer(name + ".running_var", buffers[1], buffers[1].shape())},
                         out);
      real(n, "epsilon", config["epsilon"].get<float>());
      real(n, "momentum", 1.0f - config["momentum"].get<float>());  // ONNX keeps the running share
    } else if (kind == "relu") {
      add_node("Relu", name, inputs, out);
    } else if (kind == "max_pool2d" || kind == "avg_pool2d") {
      auto* n = add_node(kind == "max_pool2d" ? "MaxPool" : "AveragePool", name, inputs, out);
      window(n, config);
      if (kind == "avg_pool2d") integer(n, "count_include_pad", config["count_include_pad"].get<bool>() ? 1 : 0);
    } else if (kind == "global_avg_pool" || kind == "global_max_pool") {
      add_node(kind == "global_avg_pool" ? "GlobalAveragePool" : "GlobalMaxPool", name, inputs, out);
    } else if (kind == "flatten") {
      integer(add_node("Flatten", name, inputs, out), "axis", 1);
    } else if (kind == "dropout") {
      add_node("Identity", name, inputs, out);  // inference graph
    } else if (kind == "add") {
      // ONNX's Add takes two inputs: a chain of them for more.
      std::string sum = inputs[0];
      for (size_t k = 1; k < inputs.size(); ++k) {
        const std::string o = k + 1 == inputs.size() ? out : name + "/" + std::to_string(k);
        add_node("Add", k + 1 == inputs.size() ? name : o, {sum, inputs[k]}, o);
        sum = o;
      }
    } else if (kind == "log_softmax") {
      integer(add_node("LogSoftmax", name, inputs, out), "axis", -1);
    } else {
      throw Error("node \"" + name + "\" (" + kind + ") has no ONNX form in lowbit's exporter");
    }
  }

  void metadata(onnx::ModelProto& proto) const {
    onnx_writer::put_preprocessing(proto, model_.metadata, model_.input_shape());
  }

  const Model& model_;
  onnx::GraphProto* graph_ = nullptr;
};

}  // namespace

void export_onnx(const Model& model, const std::string& path) {
  onnx::ModelProto proto = Exporter(model).run();
  onnx_writer::check_and_write(proto, path, "graph");
}

}  // namespace lowbit
