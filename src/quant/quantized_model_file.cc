// Quantized model files: integer constants as blobs, facts as JSON; validated field by field.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/quantized_model.h"
#include "quant/file_limits.h"
#include "quant/integer_graph.h"
#include "quant/integer_linear.h"
#include "util/container.h"
#include "util/json_field.h"
#include "util/model_metadata.h"

namespace lowbit {
namespace {

template <typename T>
std::string to_blob(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

template <typename T>
std::vector<T> from_blob(const std::string& blob, int64_t count, const std::string& where,
                         const char* what) {
  // count is a product of checked fields (at most 2^15 * 2^15), so count * sizeof(T) cannot wrap.
  if (static_cast<int64_t>(blob.size()) != count * static_cast<int64_t>(sizeof(T)))
    throw Error(where + ": " + what + " has " + std::to_string(blob.size()) + " bytes, expected " +
                std::to_string(count * static_cast<int64_t>(sizeof(T))));
  std::vector<T> v(static_cast<size_t>(count));
  if (!blob.empty()) std::memcpy(v.data(), blob.data(), blob.size());
  return v;
}

// Limits of a file's fields (docs/model-format.md, "Limits"); scales in quant/file_limits.h.
constexpr int64_t kMaxLayers = 1024, kMaxChannels = 1024, kMaxRank = 4;

// The accumulator bound of docs/quantization.md, proved from the stored fields: for every
// channel, |bias| + 2^acc_shift * K * (2^b - 1) * (2^a - 1) <= 2^31 - 1 (b the kernel's weight
// bits), so that acc is exact int32 for every input. All terms are below 2^63: 2^24 * 2^15 * 2^16.
void check_accumulator_bound(const IntegerLinear& l, const std::string& where) {
  const int64_t sum_bound = (int64_t{1} << l.acc_shift) * l.in_features *
                            ((int64_t{1} << l.kernel_weight_bits()) - 1) * ((int64_t{1} << l.act_bits) - 1);
  for (size_t n = 0; n < l.bias.size(); ++n) {
    const int64_t bound = std::abs(int64_t{l.bias[n]}) + sum_bound;
    if (bound > INT32_MAX)
      throw Error(where + ": channel " + std::to_string(n) + " can overflow the int32 accumulator: |bias| " +
                  std::to_string(std::abs(int64_t{l.bias[n]})) + " + 2^acc_shift * K * (2^b - 1) * (2^a - 1) " +
                  std::to_string(sum_bound) + " > 2^31 - 1");
  }
}

// Every stored scale finite and in range, and every multiplier the one they give.
void check_scales(const IntegerLinear& l, const std::string& where) {
  for (size_t n = 0; n < l.weight_scale.size(); ++n) {
    const float s = l.weight_scale[n];
    if (!(s >= kMinScale && s <= kMaxScale))
      throw Error(where + ": weight scale of channel " + std::to_string(n) + " (" + std::to_string(s) +
                  ") is not finite and in [1e-30, 1e18]");
    const double real = std::ldexp(double{s} * double{l.input_scale} / double{l.output_scale}, -l.acc_shift);
    const double stored = std::ldexp(static_cast<double>(l.multiplier[n]), l.shift[n] - 31);
    if (!(std::fabs(stored - real) <= kMultiplierTolerance * real))
      throw Error(where + ": requantization multiplier of channel " + std::to_string(n) +
                  " disagrees with the layer's scales (" + std::to_string(stored) + " stored, " +
                  std::to_string(real) + " from the scales)");
  }
}

}  // namespace

struct QuantizedModelAccess {
  static void save(const QuantizedModel& m, const std::string& path) {
    Container c;
    nlohmann::json layers = nlohmann::json::array();
    c.blobs.push_back(to_blob(m.input_table_));
    for (const auto& l : m.layers_) {
      layers.push_back({{"in_features", l->in_features},
                        {"out_features", l->out_features},
                        {"weight_bits", l->weights.bits},
                        {"act_bits", l->act_bits},
                        {"out_bits", l->out_bits},
                        {"acc_shift", l->acc_shift},
                        {"input_zero_point", l->input_zero_point},
                        {"output_zero_point", l->output_zero_point},
                        {"output_min", l->output_min},
                        {"output_max", l->output_max},
                        {"input_scale", l->input_scale},
                        {"output_scale", l->output_scale}});
      // Only sign-binary layers name their coding, so files without them stay version 1.
      if (l->sign_weights) {
        layers.back()["weight_coding"] = "sign";
        c.version = 2;
      }
      c.blobs.push_back(to_blob(l->weights.data));
      c.blobs.push_back(to_blob(l->bias));
      c.blobs.push_back(to_blob(l->weight_zero_point));
      c.blobs.push_back(to_blob(l->multiplier));
      c.blobs.push_back(to_blob(l->shift));
      c.blobs.push_back(to_blob(l->weight_scale));
    }
    c.header = {{"kind", "quantized"},
                {"input_shape", m.input_shape_},
                {"channels", m.channels_},
                {"logit_scale", m.logit_scale_},
                {"layers", layers},
                {"metadata", m.metadata}};
    // CNNs: the graph of operators, version 3 (earlier readers would run it as a chain).
    if (m.is_graph()) {
      c.version = 3;
      nlohmann::json nodes = nlohmann::json::array();
      for (const IntegerNode& n : m.nodes_) {
        const kernels::Window& w = n.window;
        nodes.push_back({{"op", n.name()},
                         {"inputs", n.inputs},
                         {"shape", {n.shape.h, n.shape.w, n.shape.c}},
                         {"bits", n.bits},
                         {"zero_point", n.zero_point},
                         {"scale", n.scale},
                         {"layer", n.layer},
                         {"window", {w.kernel_h, w.kernel_w, w.stride_h, w.stride_w, w.pad_h, w.pad_w}},
                         {"count_include_pad", n.count_include_pad},
                         {"multiplier", n.multiplier},
                         {"shift", n.shift},
                         {"out_multiplier", n.out_multiplier},
                         {"out_shift", n.out_shift},
                         {"out_min", n.out_min},
                         {"out_max", n.out_max}});
        // An average pool that shifts its sum: version 4, since a version-3 reader would ignore
        // the field and run the multipliers 2^sum_shift too small.
        if (n.sum_shift != 0) {
          nodes.back()["sum_shift"] = n.sum_shift;
          c.version = 4;
        }
      }
      c.header["graph"] = {{"input_bits", m.input_bits_},
                           {"input_zero_point", m.input_zero_point_},
                           {"input_scale", m.input_scale_},
                           {"nodes", nodes}};
    }
    write_file_atomic(path, encode_container(std::move(c)));
  }

  // `path` names the file (or the buffer) in every error. Every field is read through the
  // checked readers (util/json_field.h), every size checked against the blobs present before
  // anything is allocated, and the accumulator bound proved, so a checksum-valid hostile file
  // ends in a lowbit::Error and not in undefined behaviour or wrong results.
  static QuantizedModel load(Container c, const std::string& path) {
    QuantizedModel m;
    const JsonObject h(c.header, path);
    if (h.has("metadata")) {
      check_model_metadata(h.at("metadata"), path);
      m.metadata = h.at("metadata");
    }
    m.input_shape_ = json_shape(h.at("input_shape"), h.field("input_shape"), kMaxRank,
                                kernels::kMaxInFeatures, kernels::kMaxInFeatures);
    m.channels_ = h.integer("channels", 1, kMaxChannels);
    m.logit_scale_ = static_cast<float>(h.number("logit_scale", kMinScale, kMaxScale));
    const nlohmann::json& layers = h.at("layers");
    if (!layers.is_array() || layers.empty() || static_cast<int64_t>(layers.size()) > kMaxLayers)
      throw Error(h.field("layers") + " must be an array of 1.." + std::to_string(kMaxLayers) + " layers");
    if (c.blobs.size() != 1 + 6 * layers.size())
      throw Error(path + ": " + std::to_string(c.blobs.size()) + " blobs, expected " +
                  std::to_string(1 + 6 * layers.size()) + " for " + std::to_string(layers.size()) + " layers");
    if (shape_numel(m.input_shape_) % m.channels_ != 0)
      throw Error(h.field("input_shape") + " " + shape_string(m.input_shape_) + " does not split into " +
                  std::to_string(m.channels_) + " channels");
    m.input_table_ = from_blob<uint8_t>(c.blobs[0], m.channels_ * 256, path, "input table");
    const bool graph = h.has("graph");
    if (graph && c.version < 3) throw Error(path + ": a graph in a version " + std::to_string(c.version) + " file");
    int64_t width = shape_numel(m.input_shape_);
    int previous_out_bits = 0;
    for (size_t i = 0; i < layers.size(); ++i) {
      const JsonObject j(layers[i], path + ": layer " + std::to_string(i));
      const std::string& where = j.where();
      const bool last = i + 1 == layers.size();
      auto l = std::make_unique<IntegerLinear>();
      l->in_features = j.integer("in_features", 1, kernels::kMaxInFeatures);
      l->out_features = j.integer("out_features", 1, kernels::kMaxInFeatures);
      const int bits = static_cast<int>(j.integer("weight_bits", 1, 8));
      l->act_bits = static_cast<int>(j.integer("act_bits", 1, 8));
      l->out_bits = static_cast<int>(last ? j.integer("out_bits", 0, 0) : j.integer("out_bits", 1, 8));
      // Required: files written before acc_shift existed are invalid (docs/model-format.md).
      l->acc_shift = static_cast<int32_t>(j.integer("acc_shift", 0, kernels::kMaxAccShift));
      const int32_t in_max = (1 << l->act_bits) - 1;
      l->input_zero_point = static_cast<int32_t>(j.integer("input_zero_point", 0, in_max));
      if (last) {  // int32 logits: the clamp is the int32 range itself
        l->output_zero_point = static_cast<int32_t>(j.integer("output_zero_point", INT32_MIN, INT32_MAX));
        l->output_min = static_cast<int32_t>(j.integer("output_min", INT32_MIN, INT32_MAX));
        l->output_max = static_cast<int32_t>(j.integer("output_max", l->output_min, INT32_MAX));
      } else {
        const int32_t out_max = (1 << l->out_bits) - 1;
        l->output_zero_point = static_cast<int32_t>(j.integer("output_zero_point", 0, out_max));
        l->output_min = static_cast<int32_t>(j.integer("output_min", 0, out_max));
        l->output_max = static_cast<int32_t>(j.integer("output_max", l->output_min, out_max));
      }
      l->input_scale = static_cast<float>(j.number("input_scale", kMinScale, kMaxScale));
      l->output_scale = static_cast<float>(j.number("output_scale", kMinScale, kMaxScale));
      if (j.has("weight_coding")) {
        const std::string& coding = j.string("weight_coding");
        if (coding != "sign" && coding != "affine")
          throw Error(where + ": unknown weight_coding \"" + coding + "\"");
        // A version-1 reader would take sign codes for affine ones, so writers mark them v2.
        if (coding == "sign" && c.version < 2)
          throw Error(where + ": sign-binary weights in a version " + std::to_string(c.version) + " file");
        l->sign_weights = coding == "sign";
      }
      if (l->sign_weights && bits != 1) throw Error(where + ": sign-binary weights must be 1-bit");
      // A chain's layers read each other; a graph's nodes say what each layer reads (prepare_graph).
      if (!graph && l->in_features != width)
        throw Error(j.field("in_features") + " " + std::to_string(l->in_features) + " does not match the " +
                    std::to_string(width) + (i == 0 ? " input values" : " outputs of the layer before"));
      if (!graph && i > 0 && l->act_bits != previous_out_bits)
        throw Error(j.field("act_bits") + " " + std::to_string(l->act_bits) +
                    " does not match the layer before's out_bits " + std::to_string(previous_out_bits));
      if (last && l->output_scale != m.logit_scale_)
        throw Error(j.field("output_scale") + " differs from \"logit_scale\"");
      const int64_t n = l->out_features;
      l->weights.rows = n;
      l->weights.cols = l->in_features;
      l->weights.bits = bits;
      const size_t base = 1 + 6 * i;
      l->weights.data = from_blob<uint8_t>(c.blobs[base], n * l->weights.row_bytes(), where, "weights");
      l->bias = from_blob<int32_t>(c.blobs[base + 1], n, where, "bias");
      l->weight_zero_point = from_blob<int32_t>(c.blobs[base + 2], n, where, "weight zero points");
      l->multiplier = from_blob<int32_t>(c.blobs[base + 3], n, where, "multipliers");
      l->shift = from_blob<int32_t>(c.blobs[base + 4], n, where, "shifts");
      l->weight_scale = from_blob<float>(c.blobs[base + 5], n, where, "weight scales");
      for (int64_t k = 0; k < n; ++k) {
        if (l->weight_zero_point[k] < 0 || l->weight_zero_point[k] > (1 << bits) - 1)
          throw Error(where + ": weight zero point out of range");
        // Sign-binary: the zero point of the expanded codes {0, 2}, always 1.
        if (l->sign_weights && l->weight_zero_point[k] != 1)
          throw Error(where + ": sign-binary weight zero point is not 1");
        if (l->multiplier[k] < (1 << 30) || l->shift[k] < -31 || l->shift[k] > 30)
          throw Error(where + ": requantization constant out of range");
      }
      check_accumulator_bound(*l, where);
      check_scales(*l, where);
      if (i == 0 && !graph)
        for (uint8_t code : m.input_table_)
          if (code > in_max) throw Error(path + ": input table code out of range");
      width = n;
      previous_out_bits = l->out_bits;
      m.max_width_ = std::max({m.max_width_, l->in_features, l->out_features});
      try {
        l->prepare_kernel();
      } catch (const Error& e) {
        throw Error(where + ": " + e.what());
      }
      m.layers_.push_back(std::move(l));
    }
    if (graph) {
      load_graph(JsonObject(h.at("graph"), path + ": graph"), c.version, m);
      m.prepare_graph(path);
      return m;
    }
    try {
      m.prepare_input_layer();
    } catch (const Error& e) {
      throw Error(path + ": " + e.what());
    }
    return m;
  }

  // The graph's fields, each checked for type and range; prepare_graph() then checks every node
  // against its inputs and layers.
  static void load_graph(const JsonObject& g, uint32_t version, QuantizedModel& m) {
    m.input_bits_ = static_cast<int>(g.integer("input_bits", 1, 8));
    m.input_zero_point_ = static_cast<int32_t>(g.integer("input_zero_point", 0, (1 << m.input_bits_) - 1));
    m.input_scale_ = static_cast<float>(g.number("input_scale", kMinScale, kMaxScale));
    const nlohmann::json& nodes = g.at("nodes");
    if (!nodes.is_array() || nodes.empty() || static_cast<int64_t>(nodes.size()) > kMaxGraphNodes)
      throw Error(g.field("nodes") + " must be an array of 1.." + std::to_string(kMaxGraphNodes) + " nodes");
    for (size_t i = 0; i < nodes.size(); ++i) {
      const JsonObject j(nodes[i], g.where() + ": node " + std::to_string(i));
      IntegerNode n;
      const std::string& op = j.string("op");
      static const std::pair<const char*, IntegerNode::Op> kOps[] = {
          {"conv", IntegerNode::Op::conv},         {"linear", IntegerNode::Op::linear},
          {"add", IntegerNode::Op::add},           {"max_pool", IntegerNode::Op::max_pool},
          {"avg_pool", IntegerNode::Op::avg_pool}, {"relu", IntegerNode::Op::relu},
          {"alias", IntegerNode::Op::alias}};
      bool known = false;
      for (const auto& [name, value] : kOps)
        if (op == name) n.op = value, known = true;
      if (!known) throw Error(j.field("op") + ": unknown op \"" + op + "\"");
      const auto ints = [&](const char* key, size_t max_count, int64_t lo, int64_t hi) {
        const nlohmann::json& a = j.at(key);
        if (!a.is_array() || a.size() > max_count)
          throw Error(j.field(key) + " must be an array of at most " + std::to_string(max_count) + " integers");
        std::vector<int64_t> values;
        for (size_t k = 0; k < a.size(); ++k) values.push_back(json_integer(a[k], j.field(key), lo, hi));
        return values;
      };
      for (int64_t t : ints("inputs", kernels::kMaxAddInputs, -1, static_cast<int64_t>(i) - 1))
        n.inputs.push_back(static_cast<int>(t));
      const std::vector<int64_t> shape = ints("shape", 3, 1, 65536);
      if (shape.size() != 3) throw Error(j.field("shape") + " must be [h, w, c]");
      n.shape = {shape[0], shape[1], shape[2]};
      n.bits = static_cast<int>(j.integer("bits", 1, 8));
      n.zero_point = static_cast<int32_t>(j.integer("zero_point", 0, 255));
      n.scale = static_cast<float>(j.number("scale", kMinScale, kMaxScale));
      n.layer = static_cast<int>(j.integer("layer", -1, kMaxLayers));
      const std::vector<int64_t> w = ints("window", 6, 0, 1024);
      if (w.size() != 6) throw Error(j.field("window") + " must be [kh, kw, sh, sw, ph, pw]");
      n.window = {w[0], w[1], w[2], w[3], w[4], w[5]};
      n.count_include_pad = j.boolean("count_include_pad");
      for (int64_t v : ints("multiplier", 1 << 20, 0, INT32_MAX)) n.multiplier.push_back(static_cast<int32_t>(v));
      for (int64_t v : ints("shift", 1 << 20, -31, 31)) n.shift.push_back(static_cast<int32_t>(v));
      if (j.has("sum_shift")) {  // prepare_graph() checks it against the window
        if (version < 4) throw Error(j.field("sum_shift") + " in a version " + std::to_string(version) + " file");
        n.sum_shift = static_cast<int32_t>(j.integer("sum_shift", 0, kernels::kMaxAvgPoolSumShift));
      }
      n.out_multiplier = static_cast<int32_t>(j.integer("out_multiplier", 0, INT32_MAX));
      n.out_shift = static_cast<int32_t>(j.integer("out_shift", -31, 31));
      n.out_min = static_cast<int32_t>(j.integer("out_min", 0, 255));
      n.out_max = static_cast<int32_t>(j.integer("out_max", 0, 255));
      // Ops that do not use a field need not say it, but a conv or linear must name its layer.
      if ((n.op == IntegerNode::Op::conv || n.op == IntegerNode::Op::linear) != (n.layer >= 0))
        throw Error(j.field("layer") + " must name a layer for conv and linear nodes only");
      m.nodes_.push_back(std::move(n));
    }
  }
};

void QuantizedModel::save(const std::string& path) const { QuantizedModelAccess::save(*this, path); }
namespace {

// The boundary: whatever a field check missed still ends as one line naming the file, never as
// the JSON library's own message.
QuantizedModel load_checked(Container container, const std::string& path) {
  try {
    return QuantizedModelAccess::load(std::move(container), path);
  } catch (const nlohmann::json::exception&) {
    throw Error(path + ": header has a field of the wrong type");
  }
}

}  // namespace

QuantizedModel QuantizedModel::load(const std::string& path) {
  return load_checked(read_container(path, "quantized"), path);
}
QuantizedModel QuantizedModel::load_from_memory(const void* data, size_t size, const std::string& name) {
  if (!data && size) throw Error(name + ": no data");
  const std::string_view bytes(static_cast<const char*>(data), size);
  return load_checked(decode_container(bytes, name, "quantized"), name);
}

}  // namespace lowbit
