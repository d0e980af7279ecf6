// Quantized model files: integer constants as blobs, facts as JSON; validated field by field.
#include <cstring>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/quantized_model.h"
#include "quant/integer_linear.h"
#include "util/container.h"

namespace lowbit {
namespace {

template <typename T>
std::string to_blob(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

template <typename T>
std::vector<T> from_blob(const std::string& blob, int64_t count, const std::string& path,
                         const char* what) {
  if (static_cast<int64_t>(blob.size()) != count * static_cast<int64_t>(sizeof(T)))
    throw Error(path + ": " + what + " has " + std::to_string(blob.size()) + " bytes, expected " +
                std::to_string(count * sizeof(T)));
  std::vector<T> v(count);
  std::memcpy(v.data(), blob.data(), blob.size());
  return v;
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
    write_file_atomic(path, encode_container(std::move(c)));
  }

  // `path` names the file (or the buffer) in every error.
  static QuantizedModel load(Container c, const std::string& path) {
    QuantizedModel m;
    try {
      const auto& h = c.header;
      m.input_shape_ = h.at("input_shape").get<Shape>();
      m.channels_ = h.at("channels").get<int64_t>();
      m.logit_scale_ = h.at("logit_scale").get<float>();
      if (h.contains("metadata")) m.metadata = h["metadata"];
      const auto& layers = h.at("layers");
      if (!layers.is_array() || layers.empty() || layers.size() > 1024)
        throw Error(path + ": bad layer table");
      if (c.blobs.size() != 1 + 6 * layers.size()) throw Error(path + ": wrong number of blobs");
      if (m.input_shape_.empty() || m.channels_ < 1 || m.channels_ > 1024 ||
          shape_numel(m.input_shape_) % m.channels_ != 0 ||
          shape_numel(m.input_shape_) > kernels::kMaxInFeatures)
        throw Error(path + ": bad input shape");
      m.input_table_ = from_blob<uint8_t>(c.blobs[0], m.channels_ * 256, path, "input table");
      int64_t width = shape_numel(m.input_shape_);
      for (size_t i = 0; i < layers.size(); ++i) {
        const auto& j = layers[i];
        auto l = std::make_unique<IntegerLinear>();
        l->in_features = j.at("in_features");
        l->out_features = j.at("out_features");
        const int bits = j.at("weight_bits");
        l->act_bits = j.at("act_bits");
        l->out_bits = j.at("out_bits");
        // Required: files written before acc_shift existed are invalid (docs/model-format.md).
        if (!j.at("acc_shift").is_number_integer()) throw Error(path + ": acc_shift is not an integer");
        l->acc_shift = j.at("acc_shift");
        l->input_zero_point = j.at("input_zero_point");
        l->output_zero_point = j.at("output_zero_point");
        l->output_min = j.at("output_min");
        l->output_max = j.at("output_max");
        l->input_scale = j.at("input_scale");
        l->output_scale = j.at("output_scale");
        const std::string where = path + ": layer " + std::to_string(i);
        if (j.contains("weight_coding")) {
          const std::string coding = j.at("weight_coding").get<std::string>();
          if (coding != "sign" && coding != "affine")
            throw Error(where + ": unknown weight_coding \"" + coding + "\"");
          // A version-1 reader would take sign codes for affine ones, so writers mark them v2.
          if (coding == "sign" && c.version < 2)
            throw Error(where + ": sign-binary weights in a version " + std::to_string(c.version) +
                        " file");
          l->sign_weights = coding == "sign";
        }
        if (l->sign_weights && bits != 1) throw Error(where + ": sign-binary weights must be 1-bit");
        const bool last = i + 1 == layers.size();
        if (l->in_features != width || l->out_features < 1 ||
            l->out_features > kernels::kMaxInFeatures || l->in_features > kernels::kMaxInFeatures)
          throw Error(where + ": shapes do not chain");
        if (bits < 1 || bits > 8 || l->act_bits < 1 || l->act_bits > 8 ||
            (last ? l->out_bits != 0 : (l->out_bits < 1 || l->out_bits > 8)))
          throw Error(where + ": bit width out of range");
        if (l->acc_shift < 0 || l->acc_shift > kernels::kMaxAccShift)
          throw Error(where + ": acc_shift " + std::to_string(l->acc_shift) + " is not in 0.." +
                      std::to_string(kernels::kMaxAccShift));
        if (i == 0 ? l->act_bits != static_cast<int>(layers[0].at("act_bits"))
                   : l->act_bits != static_cast<int>(layers[i - 1].at("out_bits")))
          throw Error(where + ": activation bits do not chain");
        const int32_t in_max = (1 << l->act_bits) - 1;
        if (l->input_zero_point < 0 || l->input_zero_point > in_max)
          throw Error(where + ": input zero point out of range");
        if (!last && (l->output_min < 0 || l->output_max > (1 << l->out_bits) - 1 ||
                      l->output_min > l->output_max || l->output_zero_point < 0 ||
                      l->output_zero_point > (1 << l->out_bits) - 1))
          throw Error(where + ": output range out of range");
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
        for (uint8_t code : (i == 0 ? m.input_table_ : std::vector<uint8_t>{}))
          if (code > in_max) throw Error(path + ": input table code out of range");
        width = n;
        m.max_width_ = std::max({m.max_width_, l->in_features, l->out_features});
        l->prepare_kernel();
        m.layers_.push_back(std::move(l));
      }
    } catch (const nlohmann::json::exception&) {
      throw Error(path + ": header is missing a field or has one of the wrong type");
    }
    m.prepare_input_layer();
    return m;
  }
};

void QuantizedModel::save(const std::string& path) const { QuantizedModelAccess::save(*this, path); }
QuantizedModel QuantizedModel::load(const std::string& path) {
  return QuantizedModelAccess::load(read_container(path, "quantized"), path);
}
QuantizedModel QuantizedModel::load_from_memory(const void* data, size_t size, const std::string& name) {
  if (!data && size) throw Error(name + ": no data");
  const std::string_view bytes(static_cast<const char*>(data), size);
  return QuantizedModelAccess::load(decode_container(bytes, name, "quantized"), name);
}

}  // namespace lowbit
