// ONNX -> lowbit Model: parse with libonnx's protobuf classes, run ONNX's checker, then map each
// node onto a lowbit layer (docs/onnx.md), folding the constants PyTorch emits.
#include "lowbit/onnx.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "data/catalog.h"
#include "lowbit/error.h"

namespace lowbit {
namespace {

using Json = nlohmann::json;

constexpr int64_t kMaxFileBytes = int64_t{1} << 30;     // protobuf's own limit is 2 GiB
constexpr int64_t kMaxTensorElements = int64_t{1} << 28;  // as lowbit's model files allow
constexpr int kMinOpset = 11, kMaxOpset = 17;

// A constant: an initializer or the output of a Constant node, as floats or as integers.
struct Constant {
  Shape dims;
  std::vector<float> floats;   // FLOAT, DOUBLE
  std::vector<int64_t> ints;   // INT64, INT32
  bool integer = false;
  int64_t numel() const { return integer ? static_cast<int64_t>(ints.size()) : static_cast<int64_t>(floats.size()); }
};

std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  if (text.size() > 300) text = text.substr(0, 300) + "...";
  return text;
}

// What one mapped node contributes: its description and, in parameters() / buffers() order,
// the values of its tensors.
struct Mapped {
  Json spec;
  std::vector<std::vector<float>> parameters;
  std::vector<std::vector<float>> buffers;
};

class Importer {
 public:
  Importer(const std::string& path, const OnnxImportOptions& options) : path_(path), options_(options) {}

  Model run() {
    const onnx::ModelProto proto = read();
    check(proto);
    const onnx::GraphProto& graph = proto.graph();
    for (const onnx::TensorProto& t : graph.initializer()) constants_[t.name()] = constant(t, "initializer \"" + t.name() + "\"");
    for (const onnx::NodeProto& node : graph.node())
      for (const std::string& input : node.input()) {
        ++uses_[input];
        readers_[input].insert(node.op_type());
      }
    for (const onnx::ValueInfoProto& output : graph.output()) {
      ++uses_[output.name()];
      graph_outputs_.insert(output.name());
    }
    const Shape onnx_input = model_input(graph);
    for (int i = 0; i < graph.node_size(); ++i) map_node(graph.node(i), i);
    if (graph.output_size() != 1) fail("the graph has " + std::to_string(graph.output_size()) + " outputs; lowbit models have one");
    const std::string output = resolve(graph.output(0).name());
    if (nodes_.empty() || output != nodes_.back().spec["name"])
      fail("the graph output \"" + graph.output(0).name() + "\" is not computed by the last node");
    if (nodes_.back().spec["kind"] != "log_softmax") {
      // lowbit models end in log-probabilities (training and eval read them); a graph ending in
      // logits gets a LogSoftmax, which moves each image's values by one constant: same classes.
      Mapped m;
      m.spec = {{"name", unique_name("log_softmax")}, {"kind", "log_softmax"}, {"inputs", {output}}};
      nodes_.push_back(std::move(m));
    }
    return build(proto, onnx_input);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(path_ + ": " + what); }
  [[noreturn]] void fail(const onnx::NodeProto& node, const std::string& what) const {
    fail("node \"" + node.name() + "\" (" + node.op_type() + "): " + what);
  }

  onnx::ModelProto read() const {
    std::ifstream in(path_, std::ios::binary | std::ios::ate);
    if (!in) fail("cannot open the file");
    const std::streamoff size = in.tellg();
    if (size < 0) fail("cannot read the file");
    if (size == 0) fail("the file is empty");
    if (size > kMaxFileBytes) fail("the file is larger than 1 GiB, the most lowbit reads");
    std::string bytes(static_cast<size_t>(size), '\0');
    in.seekg(0);
    if (!in.read(bytes.data(), size)) fail("cannot read the file");
    onnx::ModelProto proto;
    if (!proto.ParseFromString(bytes)) fail("not an ONNX model (the protobuf does not parse; truncated?)");
    return proto;
  }

  void check(const onnx::ModelProto& proto) const {
    if (!proto.has_graph()) fail("not an ONNX model (no graph)");
    int64_t opset = -1;
    for (const onnx::OperatorSetIdProto& set : proto.opset_import())
      if (set.domain().empty() || set.domain() == "ai.onnx") opset = set.version();
      else fail("operator set \"" + set.domain() + "\" is not supported (only the default ONNX domain)");
    if (opset < kMinOpset || opset > kMaxOpset)
      fail("opset " + std::to_string(opset) + " is not supported (" + std::to_string(kMinOpset) + ".." +
           std::to_string(kMaxOpset) + "; torch.onnx.export(..., opset_version=13..17))");
    try {
      onnx::checker::check_model(proto);
    } catch (const std::exception& e) {
      fail("ONNX checker: " + one_line(e.what()));
    }
  }

  Constant constant(const onnx::TensorProto& t, const std::string& what) const {
    if (t.data_location() == onnx::TensorProto::EXTERNAL) fail(what + ": external data is not supported");
    if (t.has_segment()) fail(what + ": segmented tensors are not supported");
    Constant c;
    int64_t numel = 1;
    for (int64_t d : t.dims()) {
      if (d < 0) fail(what + ": negative dimension " + std::to_string(d));
      if (d > 0 && numel > kMaxTensorElements / d) fail(what + ": more than 2^28 elements");
      numel *= d;
      c.dims.push_back(d);
    }
    const std::string& raw = t.raw_data();
    auto from_raw = [&](auto sample, auto& out) {
      using T = decltype(sample);
      if (static_cast<int64_t>(raw.size()) != numel * static_cast<int64_t>(sizeof(T)))
        fail(what + ": " + std::to_string(raw.size()) + " bytes of data for " + std::to_string(numel) + " elements");
      for (int64_t i = 0; i < numel; ++i) {
        T v;
        std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));  // ONNX raw data is little-endian, as x86
        out.push_back(v);
      }
    };
    auto from_field = [&](const auto& field, auto& out) {
      if (field.size() != numel)
        fail(what + ": " + std::to_string(field.size()) + " values for " + std::to_string(numel) + " elements");
      for (auto v : field) out.push_back(v);
    };
    switch (t.data_type()) {
      case onnx::TensorProto::FLOAT:
        if (t.has_raw_data()) from_raw(float{}, c.floats); else from_field(t.float_data(), c.floats);
        break;
      case onnx::TensorProto::DOUBLE:
        if (t.has_raw_data()) from_raw(double{}, c.floats); else from_field(t.double_data(), c.floats);
        break;
      case onnx::TensorProto::INT64:
        c.integer = true;
        if (t.has_raw_data()) from_raw(int64_t{}, c.ints); else from_field(t.int64_data(), c.ints);
        break;
      case onnx::TensorProto::INT32:
        c.integer = true;
        if (t.has_raw_data()) from_raw(int32_t{}, c.ints); else from_field(t.int32_data(), c.ints);
        break;
      default:
        fail(what + ": element type " + std::to_string(t.data_type()) + " is not supported (float, double, int64, int32)");
    }
    return c;
  }

  // The one graph input that is not an initializer: [N, ...] with N the batch (any value or a
  // symbol) and the rest fixed positive sizes.
  Shape model_input(const onnx::GraphProto& graph) {
    const onnx::ValueInfoProto* input = nullptr;
    for (const onnx::ValueInfoProto& v : graph.input()) {
      if (constants_.count(v.name())) continue;
      if (input) fail("the graph has more than one input (\"" + input->name() + "\", \"" + v.name() + "\")");
      input = &v;
    }
    if (!input) fail("the graph has no input");
    if (!input->type().has_tensor_type() || input->type().tensor_type().elem_type() != onnx::TensorProto::FLOAT)
      fail("input \"" + input->name() + "\" is not a float tensor");
    const onnx::TensorShapeProto& shape = input->type().tensor_type().shape();
    if (shape.dim_size() < 2) fail("input \"" + input->name() + "\" has rank " + std::to_string(shape.dim_size()) + "; expected [batch, ...]");
    Shape per_sample;
    int64_t numel = 1;
    for (int i = 1; i < shape.dim_size(); ++i) {
      const auto& d = shape.dim(i);
      if (!d.has_dim_value() || d.dim_value() <= 0 || d.dim_value() > kMaxTensorElements / numel)
        fail("input \"" + input->name() + "\": dimension " + std::to_string(i) + " is not a fixed size in 1..2^28");
      numel *= d.dim_value();
      per_sample.push_back(d.dim_value());
    }
    alias_[input->name()] = "input";
    return per_sample;
  }

  // The lowbit node (or "input") whose output an ONNX value is.
  std::string resolve(const std::string& value) const {
    auto it = alias_.find(value);
    if (it == alias_.end()) fail("value \"" + value + "\" is used but not computed by a supported node");
    return it->second;
  }

  const Constant* find_constant(const onnx::NodeProto& node, int input) const {
    if (input >= node.input_size() || node.input(input).empty()) return nullptr;
    auto it = constants_.find(node.input(input));
    return it == constants_.end() ? nullptr : &it->second;
  }
  const Constant& need_constant(const onnx::NodeProto& node, int input, const char* what) const {
    const Constant* c = find_constant(node, input);
    if (!c) fail(node, std::string(what) + " must be a constant (an initializer)");
    if (c->integer) fail(node, std::string(what) + " must hold floats");
    for (float v : c->floats)
      if (!std::isfinite(v)) fail(node, std::string(what) + " holds a value that is not finite");
    return *c;
  }
  std::string data_input(const onnx::NodeProto& node, int input = 0) const {
    if (input >= node.input_size()) fail(node, "missing input " + std::to_string(input));
    if (constants_.count(node.input(input))) fail(node, "input " + std::to_string(input) + " is a constant; a computed tensor is expected");
    return resolve(node.input(input));
  }

  // Attribute access with the ONNX defaults.
  static const onnx::AttributeProto* attribute(const onnx::NodeProto& node, const char* name) {
    for (const onnx::AttributeProto& a : node.attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }
  int64_t int_attr(const onnx::NodeProto& node, const char* name, int64_t fallback) const {
    const onnx::AttributeProto* a = attribute(node, name);
    if (!a) return fallback;
    if (a->type() != onnx::AttributeProto::INT) fail(node, std::string("attribute ") + name + " must be an integer");
    return a->i();
  }
  float float_attr(const onnx::NodeProto& node, const char* name, float fallback) const {
    const onnx::AttributeProto* a = attribute(node, name);
    if (!a) return fallback;
    if (a->type() != onnx::AttributeProto::FLOAT) fail(node, std::string("attribute ") + name + " must be a float");
    return a->f();
  }
  std::vector<int64_t> ints_attr(const onnx::NodeProto& node, const char* name) const {
    const onnx::AttributeProto* a = attribute(node, name);
    if (!a) return {};
    if (a->type() != onnx::AttributeProto::INTS) fail(node, std::string("attribute ") + name + " must be a list of integers");
    return {a->ints().begin(), a->ints().end()};
  }
  std::string string_attr(const onnx::NodeProto& node, const char* name, const std::string& fallback) const {
    const onnx::AttributeProto* a = attribute(node, name);
    if (!a) return fallback;
    if (a->type() != onnx::AttributeProto::STRING) fail(node, std::string("attribute ") + name + " must be a string");
    return a->s();
  }

  std::string unique_name(std::string name) {
    if (name.empty()) name = "node";
    std::string candidate = name;
    for (int k = 1; candidate == "input" || names_.count(candidate); ++k) candidate = name + "_" + std::to_string(k);
    names_.insert(candidate);
    return candidate;
  }

  void emit(const onnx::NodeProto& node, int index, Mapped m, std::vector<std::string> inputs) {
    const std::string name = unique_name(node.name().empty() ? node.op_type() + "_" + std::to_string(index) : node.name());
    m.spec["name"] = name;
    m.spec["inputs"] = inputs;
    if (node.output_size() < 1) fail(node, "has no output");
    for (int o = 1; o < node.output_size(); ++o)
      if (!node.output(o).empty() && uses_[node.output(o)] > 0)
        fail(node, "output " + std::to_string(o) + " (\"" + node.output(o) + "\") is used; lowbit maps only the first");
    alias_[node.output(0)] = name;
    nodes_.push_back(std::move(m));
  }
  void pass_through(const onnx::NodeProto& node) {
    if (node.output_size() < 1 || node.input_size() < 1) fail(node, "needs an input and an output");
    if (auto it = constants_.find(node.input(0)); it != constants_.end()) constants_[node.output(0)] = it->second;
    else alias_[node.output(0)] = resolve(node.input(0));
  }

  // A window's settings: kernel_shape (or the weight's), strides, symmetric pads, dilations 1.
  void window(const onnx::NodeProto& node, Json& spec, std::vector<int64_t> kernel) const {
    if (const std::string pad = string_attr(node, "auto_pad", "NOTSET"); pad != "NOTSET" && pad != "VALID")
      fail(node, "auto_pad " + pad + " is not supported (export with explicit pads)");
    if (auto k = ints_attr(node, "kernel_shape"); !k.empty()) {
      if (!kernel.empty() && k != kernel) fail(node, "kernel_shape does not match the weight");
      kernel = k;
    }
    if (kernel.size() != 2) fail(node, "only 2-D windows are supported (kernel_shape of 2 values)");
    std::vector<int64_t> strides = ints_attr(node, "strides");
    if (strides.empty()) strides = {1, 1};
    std::vector<int64_t> pads = ints_attr(node, "pads");
    if (pads.empty()) pads = {0, 0, 0, 0};
    std::vector<int64_t> dilations = ints_attr(node, "dilations");
    if (strides.size() != 2 || pads.size() != 4) fail(node, "strides and pads must have 2 and 4 values");
    if (!dilations.empty() && dilations != std::vector<int64_t>{1, 1}) fail(node, "dilations other than 1 are not supported");
    if (pads[0] != pads[2] || pads[1] != pads[3])
      fail(node, "asymmetric padding is not supported (pads top/left/bottom/right must pair up)");
    for (int64_t v : {kernel[0], kernel[1], strides[0], strides[1]})
      if (v < 1 || v > 1024) fail(node, "kernel and strides must be 1..1024");
    for (int64_t v : pads)
      if (v < 0 || v > 1024) fail(node, "pads must be 0..1024");
    spec["kernel"] = {kernel[0], kernel[1]};
    spec["stride"] = {strides[0], strides[1]};
    spec["padding"] = {pads[0], pads[1]};
  }

  void map_node(const onnx::NodeProto& node, int index) {
    const std::string& op = node.op_type();
    if (!node.domain().empty() && node.domain() != "ai.onnx") fail(node, "domain \"" + node.domain() + "\" is not supported");
    if (op == "Constant") return map_constant(node);
    if (op == "Identity" || op == "Dropout") {
      // Inference graphs: Dropout is the identity (torch exports eval-mode models).
      if (const Constant* training = op == "Dropout" ? find_constant(node, 2) : nullptr;
          training && !(training->numel() == 1 && (training->integer ? training->ints[0] : training->floats[0]) == 0))
        fail(node, "training_mode must be false");
      return pass_through(node);
    }
    Mapped m;
    if (op == "Gemm") {
      if (int_attr(node, "transA", 0) != 0) fail(node, "transA = 1 is not supported");
      const float alpha = float_attr(node, "alpha", 1.0f), beta = float_attr(node, "beta", 1.0f);
      const Constant& b = need_constant(node, 1, "B (the weight)");
      if (b.dims.size() != 2) fail(node, "B must be a matrix");
      const bool transposed = int_attr(node, "transB", 0) != 0;
      const int64_t out = transposed ? b.dims[0] : b.dims[1], in = transposed ? b.dims[1] : b.dims[0];
      std::vector<float> weight(b.floats.size());  // [out, in]
      for (int64_t o = 0; o < out; ++o)
        for (int64_t i = 0; i < in; ++i)
          weight[o * in + i] = alpha * (transposed ? b.floats[o * in + i] : b.floats[i * out + o]);
      std::vector<float> bias(out, 0.0f);
      if (const Constant* c = find_constant(node, 2)) {
        if (c->integer || (c->numel() != out && c->numel() != 1)) fail(node, "C must hold " + std::to_string(out) + " floats");
        for (int64_t o = 0; o < out; ++o) bias[o] = beta * c->floats[c->numel() == 1 ? 0 : o];
      } else if (node.input_size() > 2 && !node.input(2).empty()) {
        fail(node, "C (the bias) must be a constant");
      }
      m.spec = {{"kind", "linear"}, {"in_features", in}, {"out_features", out}};
      m.parameters = {std::move(weight), std::move(bias)};
      return emit(node, index, std::move(m), {data_input(node)});
    }
    if (op == "MatMul") {
      const Constant& b = need_constant(node, 1, "B (the weight)");
      if (b.dims.size() != 2) fail(node, "B must be a matrix");
      const int64_t in = b.dims[0], out = b.dims[1];
      std::vector<float> weight(b.floats.size());
      for (int64_t o = 0; o < out; ++o)
        for (int64_t i = 0; i < in; ++i) weight[o * in + i] = b.floats[i * out + o];
      m.spec = {{"kind", "linear"}, {"in_features", in}, {"out_features", out}};
      m.parameters = {std::move(weight), std::vector<float>(out, 0.0f)};
      matmul_without_bias_.insert(node.output(0));
      return emit(node, index, std::move(m), {data_input(node)});
    }
    if (op == "Add") {
      if (node.input_size() != 2) fail(node, "needs two inputs");
      const Constant* c0 = find_constant(node, 0);
      const Constant* c1 = find_constant(node, 1);
      if (c0 && c1) fail(node, "adds two constants (export with do_constant_folding=True)");
      if (c0 || c1) {
        // MatMul + Add of a constant vector: the bias of a Linear layer.
        const std::string& product = node.input(c0 ? 1 : 0);
        const Constant& bias = c0 ? *c0 : *c1;
        if (!matmul_without_bias_.count(product) || uses_[product] != 1)
          fail(node, "adding a constant is supported only as the bias after a MatMul");
        Mapped& linear = nodes_[index_of(resolve(product))];
        std::vector<float>& b = linear.parameters[1];
        if (bias.integer || (bias.numel() != static_cast<int64_t>(b.size()) && bias.numel() != 1))
          fail(node, "the bias must hold " + std::to_string(b.size()) + " floats");
        for (size_t o = 0; o < b.size(); ++o) b[o] = bias.floats[bias.numel() == 1 ? 0 : o];
        matmul_without_bias_.erase(product);
        alias_[node.output(0)] = resolve(product);
        return;
      }
      m.spec = {{"kind", "add"}};
      return emit(node, index, std::move(m), {data_input(node, 0), data_input(node, 1)});
    }
    if (op == "Conv") {
      const Constant& w = need_constant(node, 1, "W (the weight)");
      if (w.dims.size() != 4) fail(node, "only 2-D convolutions are supported (a 4-D weight)");
      m.spec = {{"kind", "conv2d"}, {"out_channels", w.dims[0]}, {"groups", int_attr(node, "group", 1)}};
      window(node, m.spec, {w.dims[2], w.dims[3]});
      m.parameters.push_back(w.floats);
      if (const Constant* b = find_constant(node, 2)) {
        if (b->integer || b->numel() != w.dims[0]) fail(node, "B must hold " + std::to_string(w.dims[0]) + " floats");
        m.parameters.push_back(need_constant(node, 2, "B").floats);
        m.spec["bias"] = true;
      } else if (node.input_size() > 2 && !node.input(2).empty()) {
        fail(node, "B (the bias) must be a constant");
      } else {
        m.spec["bias"] = false;
      }
      return emit(node, index, std::move(m), {data_input(node)});
    }
    if (op == "BatchNormalization") {
      if (int_attr(node, "training_mode", 0) != 0) fail(node, "training_mode must be 0");
      if (node.input_size() != 5) fail(node, "needs 5 inputs");
      const Constant& scale = need_constant(node, 1, "scale");
      const Constant& bias = need_constant(node, 2, "B");
      const Constant& mean = need_constant(node, 3, "mean");
      const Constant& var = need_constant(node, 4, "var");
      const int64_t channels = scale.numel();
      for (const Constant* c : {&bias, &mean, &var})
        if (c->numel() != channels) fail(node, "scale, B, mean and var must have the same length");
      for (float v : var.floats)
        if (v < 0) fail(node, "var holds a negative value");
      const float epsilon = float_attr(node, "epsilon", 1e-5f);
      // ONNX: running = momentum * running + (1 - momentum) * batch; lowbit (PyTorch) the reverse.
      const float momentum = 1.0f - float_attr(node, "momentum", 0.9f);
      if (!(epsilon > 0 && epsilon < 1) || !(momentum >= 0 && momentum <= 1)) fail(node, "epsilon or momentum out of range");
      m.spec = {{"kind", "batch_norm"}, {"channels", channels}, {"epsilon", epsilon}, {"momentum", momentum}};
      m.parameters = {scale.floats, bias.floats};
      m.buffers = {mean.floats, var.floats};
      return emit(node, index, std::move(m), {data_input(node)});
    }
    if (op == "Relu") {
      m.spec = {{"kind", "relu"}};
      return emit(node, index, std::move(m), {data_input(node)});
    }
    if (op == "Clip") {
      // min and max are inputs from opset 11 on.
      float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
      for (int i : {1, 2}) {
        if (i >= node.input_size() || node.input(i).empty()) continue;
        const Constant& c = need_constant(node, i, i == 1 ? "min" : "max");
        if (c.numel() != 1) fail(node, "min and max must be scalars");
        (i == 1 ? lo : hi) = c.floats[0];
      }
      if (lo == 0 && std::isinf(hi) && hi > 0) {
        m.spec = {{"kind", "relu"}};
        return emit(node, index, std::move(m), {data_input(node)});
      }
      fail(node, "only Clip(min 0, no max) maps (to ReLU); Clip(" + std::to_string(lo) + ", " + std::to_string(hi) +
                     ") is not supported yet (ReLU6 needs a layer lowbit does not have)");
    }
    if (op == "MaxPool" || op == "AveragePool") {
      if (int_attr(node, "ceil_mode", 0) != 0) fail(node, "ceil_mode = 1 is not supported");
      if (int_attr(node, "storage_order", 0) != 0) fail(node, "storage_order = 1 is not supported");
      const bool average = op == "AveragePool";
      m.spec = {{"kind", average ? "avg_pool2d" : "max_pool2d"}};
      window(node, m.spec, {});
      if (average) m.spec["count_include_pad"] = int_attr(node, "count_include_pad", 0) != 0;
      return emit(node, index, std::move(m), {data_input(node)});
    }
    if (op == "GlobalAveragePool" || op == "GlobalMaxPool") {
      m.spec = {{"kind", op == "GlobalMaxPool" ? "global_max_pool" : "global_avg_pool"}};
      return emit(node, index, std::move(m), {data_input(node)});
    }
    if (op == "Flatten" || op == "Reshape") {
      int64_t features = 0;
      if (op == "Flatten") {
        if (int_attr(node, "axis", 1) != 1) fail(node, "only axis 1 is supported ([batch, features])");
      } else {
        const Constant* shape = find_constant(node, 1);
        if (!shape || !shape->integer)
          fail(node, "the shape must be a constant of integers (export with do_constant_folding=True)");
        if (int_attr(node, "allowzero", 0) != 0) fail(node, "allowzero = 1 is not supported");
        // [batch, features] with batch -1, 0 (copy) or any fixed size, features -1 or the size.
        if (shape->ints.size() != 2 || shape->ints[1] < -1 || shape->ints[1] == 0 || (shape->ints[0] < -1))
          fail(node, "only a reshape to [batch, features] is supported");
        features = shape->ints[1] == -1 ? 0 : shape->ints[1];
        if (shape->ints[0] > 0 && shape->ints[1] == -1) fail(node, "a reshape with a fixed batch and -1 features is not supported");
      }
      const std::string source = data_input(node);
      if (features != 0) flatten_checks_.push_back({node.name(), source, features});
      const auto& readers = readers_[node.output(0)];
      if (!is_graph_output(node.output(0)) && !readers.empty() &&
          std::all_of(readers.begin(), readers.end(), [](const std::string& r) { return r == "Gemm" || r == "MatMul"; })) {
        // Linear layers read [batch, C, H, W] as [batch, C*H*W] themselves: no node, so that a
        // chain of Linear and ReLU layers (FC_NN) stays one that lowbit can quantize.
        alias_[node.output(0)] = source;
        return;
      }
      m.spec = {{"kind", "flatten"}};
      return emit(node, index, std::move(m), {source});
    }
    if (op == "Softmax" || op == "LogSoftmax") {
      const int64_t axis = int_attr(node, "axis", -1);
      if (axis != -1 && axis != 1) fail(node, "only the last axis of [batch, classes] is supported");
      if (uses_[node.output(0)] != 1 || !is_graph_output(node.output(0)))
        fail(node, "is supported only as the graph's last node");
      // Softmax becomes LogSoftmax: lowbit models end in log-probabilities; the classes are the same.
      m.spec = {{"kind", "log_softmax"}};
      return emit(node, index, std::move(m), {data_input(node)});
    }
    std::string supported;
    for (const std::string& s : onnx_supported_ops()) supported += (supported.empty() ? "" : ", ") + s;
    fail(node, "op type " + op + " is not supported (supported: " + supported + ")");
  }

  void map_constant(const onnx::NodeProto& node) {
    if (node.output_size() != 1) fail(node, "needs one output");
    if (const onnx::AttributeProto* a = attribute(node, "value")) {
      if (a->type() != onnx::AttributeProto::TENSOR) fail(node, "value must be a tensor");
      constants_[node.output(0)] = constant(a->t(), "node \"" + node.name() + "\" (Constant)");
      return;
    }
    Constant c;
    if (const onnx::AttributeProto* a = attribute(node, "value_float")) c.floats = {a->f()};
    else if (const onnx::AttributeProto* a = attribute(node, "value_floats")) c.floats.assign(a->floats().begin(), a->floats().end()), c.dims = {static_cast<int64_t>(c.floats.size())};
    else if (const onnx::AttributeProto* a = attribute(node, "value_int")) c.integer = true, c.ints = {a->i()};
    else if (const onnx::AttributeProto* a = attribute(node, "value_ints")) c.integer = true, c.ints.assign(a->ints().begin(), a->ints().end()), c.dims = {static_cast<int64_t>(c.ints.size())};
    else fail(node, "only tensor, float and integer constants are supported");
    constants_[node.output(0)] = std::move(c);
  }

  bool is_graph_output(const std::string& value) const { return graph_outputs_.count(value) > 0; }

  size_t index_of(const std::string& name) const {
    for (size_t i = 0; i < nodes_.size(); ++i)
      if (nodes_[i].spec["name"] == name) return i;
    fail("internal: no node \"" + name + "\"");
  }

  std::vector<float> metadata_numbers(const std::string& key, const std::string& text) const {
    std::vector<float> values;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
      char* end = nullptr;
      const float v = std::strtof(item.c_str(), &end);
      if (item.empty() || end == item.c_str() || *end != '\0' || !std::isfinite(v))
        fail("metadata property " + key + " \"" + one_line(text) + "\" is not a list of numbers");
      values.push_back(v);
    }
    return values;
  }

  Model build(const onnx::ModelProto& proto, const Shape& onnx_input) {
    // Preprocessing: flags, then the file's metadata properties, then the dataset's defaults.
    std::map<std::string, std::string> properties;
    for (const onnx::StringStringEntryProto& p : proto.metadata_props()) properties[p.key()] = p.value();
    std::optional<std::string> dataset = options_.dataset;
    if (!dataset && properties.count("lowbit.dataset")) dataset = properties["lowbit.dataset"];
    std::vector<float> mean = options_.mean, std = options_.std;
    if (mean.empty() && properties.count("lowbit.mean")) mean = metadata_numbers("lowbit.mean", properties["lowbit.mean"]);
    if (std.empty() && properties.count("lowbit.std")) std = metadata_numbers("lowbit.std", properties["lowbit.std"]);
    Shape input_shape = options_.input_shape;
    if (input_shape.empty() && properties.count("lowbit.input_shape"))
      for (float v : metadata_numbers("lowbit.input_shape", properties["lowbit.input_shape"])) {
        if (v != std::floor(v) || v < 1 || v > kMaxTensorElements) fail("metadata property lowbit.input_shape must hold positive integers");
        input_shape.push_back(static_cast<int64_t>(v));
      }
    if (input_shape.empty()) input_shape = onnx_input;
    if (shape_numel(input_shape) != shape_numel(onnx_input))
      fail("input shape " + shape_string(input_shape) + " does not have the size of the ONNX input " + shape_string(onnx_input));
    const data::DatasetInfo* info = dataset ? data::find_dataset_info(*dataset) : nullptr;
    if (dataset && !info) fail("unknown dataset \"" + *dataset + "\" (mnist, fashion-mnist, mnist-10k, cifar10)");
    if (info && mean.empty()) mean = info->mean;
    if (info && std.empty()) std = info->std;
    if (mean.size() != std.size()) fail("mean has " + std::to_string(mean.size()) + " values and std " + std::to_string(std.size()));
    for (float s : std)
      if (!(s > 0)) fail("std must be positive");

    Json description = {{"input_shape", input_shape}, {"nodes", Json::array()}};
    if (!proto.graph().name().empty()) description["name"] = proto.graph().name();
    for (const Mapped& m : nodes_) description["nodes"].push_back(m.spec);
    Model model = [&] {
      try {
        return Model::from_description(description);
      } catch (const Error& e) {
        fail(e.what());
      }
    }();
    for (const FlattenCheck& check : flatten_checks_) {
      const int64_t size = check.source == "input" ? shape_numel(input_shape) : shape_numel(model.node_shape(index_of(check.source)));
      if (size != check.features)
        fail("node \"" + check.node + "\" (Reshape): reshapes " + std::to_string(size) + " features to " + std::to_string(check.features));
    }
    for (size_t i = 0; i < nodes_.size(); ++i) {
      const Mapped& m = nodes_[i];
      Layer& layer = model.layer(i);
      auto copy = [&](std::span<Tensor> tensors, const std::vector<std::vector<float>>& values, const char* what) {
        if (tensors.size() != values.size()) fail("node \"" + model.node_name(i) + "\": " + what + " do not match the layer");
        for (size_t t = 0; t < tensors.size(); ++t) {
          if (tensors[t].size() != static_cast<int64_t>(values[t].size()))
            fail("node \"" + model.node_name(i) + "\": a tensor of " + std::to_string(values[t].size()) +
                 " values where the layer has " + std::to_string(tensors[t].size()) + " (shape " + shape_string(tensors[t].shape()) + ")");
          std::copy(values[t].begin(), values[t].end(), tensors[t].data());
        }
      };
      copy(layer.parameters(), m.parameters, "parameters");
      copy(layer.buffers(), m.buffers, "buffers");
    }
    if (dataset) model.metadata["dataset"] = *dataset;
    if (!mean.empty()) {
      model.metadata["mean"] = mean;
      model.metadata["std"] = std;
    }
    model.metadata["imported_from"] = {{"format", "onnx"},
                                       {"producer", proto.producer_name() + " " + proto.producer_version()},
                                       {"opset", proto.opset_import(0).version()}};
    return model;
  }

  const std::string& path_;
  const OnnxImportOptions& options_;
  std::map<std::string, Constant> constants_;
  std::map<std::string, std::string> alias_;  // ONNX value -> lowbit node name ("input")
  std::map<std::string, int> uses_;           // ONNX value -> readers (graph outputs count)
  std::set<std::string> graph_outputs_;
  std::map<std::string, std::set<std::string>> readers_;  // ONNX value -> op types that read it
  struct FlattenCheck {
    std::string node, source;
    int64_t features;
  };
  std::vector<FlattenCheck> flatten_checks_;  // each Reshape's promised size, checked once shapes are known
  std::set<std::string> matmul_without_bias_;
  std::set<std::string> names_;
  std::vector<Mapped> nodes_;
};

}  // namespace

const std::vector<std::string>& onnx_supported_ops() {
  static const std::vector<std::string> ops = {
      "Gemm", "MatMul (+ Add)", "Conv", "BatchNormalization", "Relu", "Clip (as ReLU)", "MaxPool",
      "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Add", "Flatten", "Reshape", "Identity",
      "Dropout", "Softmax", "LogSoftmax", "Constant"};
  return ops;
}

Model import_onnx(const std::string& path, const OnnxImportOptions& options) {
  Importer importer(path, options);
  return importer.run();
}

}  // namespace lowbit
