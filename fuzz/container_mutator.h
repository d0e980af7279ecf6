// A structure-aware libFuzzer mutator for lowbit's model container (util/container.h): it decodes
// the input, makes one change that keeps the model valid (most of the time) or one that breaks it,
// and encodes it again with consistent blob sizes and a valid CRC, so that most inputs load and
// reach the engine, and the rest reach the loaders' own checks instead of stopping at the checksum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/qlinear.h"
#include "kernels/requantize.h"
#include "lowbit/error.h"
#include "util/container.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace lowbit::fuzz {

// Decodes without checking the CRC or "kind" (the loader does that); false if not a container.
inline bool decode_loosely(const uint8_t* data, size_t size, Container& c) {
  if (size < 20 || std::memcmp(data, kContainerMagic, 8) != 0) return false;
  auto u32 = [&](size_t at) {
    return uint32_t{data[at]} | uint32_t{data[at + 1]} << 8 | uint32_t{data[at + 2]} << 16 | uint32_t{data[at + 3]} << 24;
  };
  c.version = u32(8);
  const size_t header_length = u32(12), body = size - 4;
  if (header_length > body - 16) return false;
  c.header = nlohmann::json::parse(data + 16, data + 16 + header_length, nullptr, false);
  if (c.header.is_discarded() || !c.header.is_object() || !c.header["blobs"].is_array()) return false;
  size_t at = 16 + header_length;
  for (const auto& s : c.header["blobs"]) {
    if (!s.is_number_unsigned() || s.get<uint64_t>() > body - at) return false;
    c.blobs.emplace_back(reinterpret_cast<const char*>(data) + at, s.get<size_t>());
    at += s.get<size_t>();
  }
  c.header.erase("blobs");
  return true;
}

// Values that have broken parsers: limits, wrap-arounds, non-integers, huge and tiny floats.
inline nlohmann::json interesting_value(std::mt19937_64& rng) {
  static const std::vector<nlohmann::json> values = {
      0, 1, -1, 2, 7, 8, 9, 16, 24, 25, 31, 32, 255, 256, 784, 32768, 32769, 65536,
      2147483647, 2147483648LL, -2147483648LL, 4294967298LL, 4294967300LL, -6148914691236516944LL,
      1e10, 1e30, 1e39, -1e39, 784.9, 0.5, -0.0, 1e-45, nlohmann::json::array(), nlohmann::json::object(),
      "", "sign", "affine", nullptr, true, nlohmann::json::array({0}), nlohmann::json::array({-1}),
      nlohmann::json::array({3, -6148914691236516944LL}), nlohmann::json::array({4096, 4096}),
      nlohmann::json::array({1, -28, -28})};
  return values[rng() % values.size()];
}

// Every leaf and container of the header, as JSON pointers.
inline void collect_pointers(const nlohmann::json& j, const nlohmann::json::json_pointer& at,
                             std::vector<nlohmann::json::json_pointer>& out) {
  out.push_back(at);
  if (j.is_object())
    for (auto it = j.begin(); it != j.end(); ++it) collect_pointers(it.value(), at / it.key(), out);
  if (j.is_array())
    for (size_t i = 0; i < j.size(); ++i) collect_pointers(j[i], at / i, out);
}

// One change that makes the model invalid more often than not: what the checks must refuse.
inline void mutate_breaking(Container& c, std::mt19937_64& rng) {
  std::vector<nlohmann::json::json_pointer> pointers;
  collect_pointers(c.header, nlohmann::json::json_pointer(), pointers);
  // An empty header has no value to change: then only blobs and the version are mutated.
  switch (pointers.size() < 2 ? 3 + rng() % 3 : rng() % 6) {
    case 0:
    case 1: {  // one header value replaced by one that has broken parsers
      const auto& at = pointers[1 + rng() % (pointers.size() - 1)];
      c.header[at] = interesting_value(rng);
      break;
    }
    case 2: {  // one header number nudged: mostly still valid, so the checks behind it are reached
      const auto& at = pointers[1 + rng() % (pointers.size() - 1)];
      nlohmann::json& v = c.header[at];
      constexpr int64_t kRoom = int64_t{1} << 62;  // far from int64's ends, so the nudge cannot overflow
      if (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() > -kRoom && v.get<int64_t>() < kRoom)
        v = v.get<int64_t>() + static_cast<int64_t>(rng() % 5) - 2;
      else if (v.is_number_unsigned() && v.get<uint64_t>() < uint64_t{kRoom})
        v = static_cast<int64_t>(v.get<uint64_t>()) + static_cast<int64_t>(rng() % 5) - 2;
      else if (v.is_number_float()) v = v.get<double>() * (rng() % 2 ? 2.0 : 0.5);
      break;
    }
    case 3:
    case 4: {  // bytes of one blob, its size kept four times in five so that the sizes stay consistent
      if (c.blobs.empty()) break;
      std::string& blob = c.blobs[rng() % c.blobs.size()];
      const size_t size = blob.size(), room = blob.size() + 64;
      blob.resize(room);
      const size_t mutated = LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(blob.data()), size, room);
      blob.resize(rng() % 5 == 3 ? mutated : size);
      break;
    }
    case 5:  // the version
      c.version = static_cast<uint32_t>(rng() % 4);
      break;
  }
}

// Typed access to a blob's values (blobs are raw little-endian arrays).
template <typename T>
T blob_value(const std::string& blob, size_t i) {
  T v;
  std::memcpy(&v, blob.data() + i * sizeof(T), sizeof(T));
  return v;
}
template <typename T>
void set_blob_value(std::string& blob, size_t i, T v) {
  std::memcpy(blob.data() + i * sizeof(T), &v, sizeof(T));
}

// A number in [lo, hi], one of the ends one time in four (the edges are where checks break).
inline int64_t pick_in(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  switch (rng() % 8) {
    case 0: return lo;
    case 1: return hi;
    default: return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
  }
}

// A factor 2^u, u uniform in [-4, 4]: a scale changes by up to 16x either way.
inline double scale_factor(std::mt19937_64& rng) {
  return std::exp2(static_cast<double>(rng() % 8001) / 1000.0 - 4.0);
}

// Header values as the mutator reads them: an integer or a number within [lo, hi], else
// std::out_of_range, so that a header an earlier breaking change left hostile makes the mutator
// break it again rather than run into undefined behaviour itself (a wrapping shift, a float cast).
inline int64_t integer_in(const nlohmann::json& j, const char* key, int64_t lo, int64_t hi) {
  const nlohmann::json& v = j.at(key);
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t{1} << 62))
    throw std::out_of_range(key);
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) throw std::out_of_range(key);
  return x;
}
inline double number_in(const nlohmann::json& j, const char* key, double lo, double hi) {
  const nlohmann::json& v = j.at(key);
  if (!v.is_number()) throw std::out_of_range(key);
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi)) throw std::out_of_range(key);
  return x;
}

// A model's scales lie in [1e-30, 1e18] (docs/security.md, "Limits").
constexpr double kMinScale = 1e-30, kMaxScale = 1e18;

// One layer of a quantized model as its loader reads it (src/quant/quantized_model_file.cc):
// the JSON fields, and where its six blobs are (weights, bias, weight zero points, multipliers,
// shifts, weight scales).
struct QuantLayer {
  nlohmann::json& json;
  std::vector<std::string>& blobs;
  size_t base;
  bool last;
  int64_t in_features() const { return integer_in(json, "in_features", 1, kernels::kMaxInFeatures); }
  int64_t out_features() const { return integer_in(json, "out_features", 1, kernels::kMaxInFeatures); }
  int weight_bits() const { return static_cast<int>(integer_in(json, "weight_bits", 1, 8)); }
  int act_bits() const { return static_cast<int>(integer_in(json, "act_bits", 1, 8)); }
  int out_bits() const { return static_cast<int>(integer_in(json, "out_bits", last ? 0 : 1, last ? 0 : 8)); }
  int acc_shift() const { return static_cast<int>(integer_in(json, "acc_shift", 0, kernels::kMaxAccShift)); }
  bool sign() const { return json.contains("weight_coding") && json["weight_coding"] == "sign"; }
  // 2^acc_shift * K * (2^b - 1) * (2^a - 1) (b: the kernel's bits, 2 for sign-binary); |bias| + this
  // must stay within int32. At most 2^24 * 2^15 * 2^16, so no overflow.
  int64_t sum_bound() const {
    const int b = sign() ? 2 : weight_bits();
    return (int64_t{1} << acc_shift()) * in_features() * ((int64_t{1} << b) - 1) * ((int64_t{1} << act_bits()) - 1);
  }
  std::string& blob(int k) { return blobs.at(base + k); }
  // Channel n's multiplier and shift recomputed from the scales as the loader reads them (floats),
  // as QuantizedModel::build computes them; false when no valid pair exists.
  bool requantize(size_t n) {
    const float weight_scale = blob_value<float>(blob(5), n);
    if (!(weight_scale >= kMinScale && weight_scale <= kMaxScale)) return false;
    const float input_scale = static_cast<float>(number_in(json, "input_scale", kMinScale, kMaxScale));
    const float output_scale = static_cast<float>(number_in(json, "output_scale", kMinScale, kMaxScale));
    const double real = std::ldexp(double{weight_scale} * double{input_scale} / double{output_scale}, -acc_shift());
    int32_t m = 0, e = 0;
    try {
      kernels::quantize_multiplier(real, &m, &e);
    } catch (const Error&) {
      return false;
    }
    if (m < (1 << 30) || e < -31 || e > 30) return false;
    set_blob_value(blob(3), n, m);
    set_blob_value(blob(4), n, e);
    return true;
  }
  bool requantize_all() {
    for (int64_t n = 0; n < out_features(); ++n)
      if (!requantize(static_cast<size_t>(n))) return false;
    return true;
  }
};

// A scale as it round-trips through the header (the loader narrows JSON numbers to float), or
// NaN when out of the valid range (checked before the cast, which would be undefined beyond float).
inline double as_scale(double v) {
  return v >= kMinScale && v <= kMaxScale ? static_cast<double>(static_cast<float>(v)) : std::nan("");
}

// One change to a quantized model that keeps it valid, so that the fuzzer exercises the engine on
// unusual but legal models: weight codes, input table codes, biases up to the accumulator bound,
// zero points and clamps within their code ranges, scales and acc_shift with the multipliers
// recomputed to match. False if the header is not a quantized model's shape or the change would
// not be valid (the caller then makes a breaking change instead).
inline bool mutate_quantized_validly(Container& c, std::mt19937_64& rng) {
  nlohmann::json& layers = c.header.at("layers");
  if (!layers.is_array() || layers.empty() || c.blobs.size() != 1 + 6 * layers.size()) return false;
  const size_t i = rng() % layers.size();
  QuantLayer l{layers[i], c.blobs, 1 + 6 * i, i + 1 == layers.size()};
  const int64_t n_out = l.out_features();
  for (int k = 1; k <= 5; ++k)  // bias, zero points, multipliers, shifts, scales: 4 bytes per channel
    if (l.blob(k).size() != static_cast<size_t>(n_out) * 4) return false;
  const size_t n = rng() % static_cast<size_t>(n_out);
  switch (rng() % 8) {
    case 0:
    case 1: {  // weight codes: any byte is a valid code (sign-binary: any bit)
      std::string& w = l.blob(0);
      if (w.empty()) return false;
      if (rng() % 2) {
        const size_t size = w.size();
        w.resize(size + 64);
        LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(w.data()), size, size);
        w.resize(size);
      } else {
        for (int k = 1 + static_cast<int>(rng() % 8); k > 0; --k) w[rng() % w.size()] = static_cast<char>(rng());
      }
      return true;
    }
    case 2: {  // input table codes, within layer 0's activation range
      std::string& table = c.blobs[0];
      if (table.empty()) return false;
      const int64_t in_max = (int64_t{1} << integer_in(layers[0], "act_bits", 1, 8)) - 1;
      for (int k = 1 + static_cast<int>(rng() % 16); k > 0; --k)
        table[rng() % table.size()] = static_cast<char>(pick_in(rng, 0, in_max));
      return true;
    }
    case 3: {  // one bias, up to the accumulator bound
      const int64_t room = INT32_MAX - l.sum_bound();
      if (room < 0) return false;
      set_blob_value(l.blob(1), n, static_cast<int32_t>(pick_in(rng, -room, room)));
      return true;
    }
    case 4: {  // a zero point or the clamp, within the code ranges
      const int64_t in_max = (int64_t{1} << l.act_bits()) - 1;
      switch (rng() % 3) {
        case 0:
          l.json["input_zero_point"] = pick_in(rng, 0, in_max);
          return true;
        case 1:
          if (l.sign()) return false;
          set_blob_value(l.blob(2), n, static_cast<int32_t>(pick_in(rng, 0, (int64_t{1} << l.weight_bits()) - 1)));
          return true;
        default: {
          const int64_t lo = l.last ? INT32_MIN : 0, hi = l.last ? INT32_MAX : (int64_t{1} << l.out_bits()) - 1;
          const int64_t a = pick_in(rng, lo, hi), b = pick_in(rng, lo, hi);
          l.json["output_zero_point"] = l.last ? pick_in(rng, -1000, 1000) : pick_in(rng, lo, hi);
          l.json["output_min"] = std::min(a, b);
          l.json["output_max"] = std::max(a, b);
          return true;
        }
      }
    }
    case 5: {  // one channel's weight scale, its multiplier to match
      const double scale = as_scale(blob_value<float>(l.blob(5), n) * scale_factor(rng));
      if (std::isnan(scale)) return false;
      set_blob_value(l.blob(5), n, static_cast<float>(scale));
      return l.requantize(n);
    }
    case 6: {  // the layer's input or output scale (the last's is logit_scale too), every multiplier to match
      const char* field = rng() % 2 ? "input_scale" : "output_scale";
      const double scale = as_scale(number_in(l.json, field, kMinScale, kMaxScale) * scale_factor(rng));
      if (std::isnan(scale)) return false;
      l.json[field] = scale;
      if (l.last && field[0] == 'o') c.header["logit_scale"] = scale;
      return l.requantize_all();
    }
    default: {  // acc_shift, as far as the biases allow, every multiplier to match
      l.json["acc_shift"] = pick_in(rng, 0, kernels::kMaxAccShift);
      int64_t max_bias = 0;
      for (int64_t k = 0; k < n_out; ++k)
        max_bias = std::max<int64_t>(max_bias, std::abs(int64_t{blob_value<int32_t>(l.blob(1), static_cast<size_t>(k))}));
      return max_bias + l.sum_bound() <= INT32_MAX && l.requantize_all();
    }
  }
}

// A finite float that stresses arithmetic: zeros, denormals, huge values, or a perturbed original.
inline float stressing_float(std::mt19937_64& rng, float original) {
  static const float values[] = {0.0f, -0.0f, 1.0f, -1.0f, 1e-40f, -1e-40f, 1e-30f, 1e30f, -1e30f,
                                 std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                                 std::numeric_limits<float>::min()};
  if (rng() % 2) return values[rng() % (sizeof(values) / sizeof(values[0]))];
  const double v = double{original} * (static_cast<double>(rng() % 2001) / 1000.0 - 1.0) * 4.0;
  return std::isfinite(v) && std::fabs(v) <= std::numeric_limits<float>::max() ? static_cast<float>(v) : original;
}

// One change to a float model that keeps it loadable: parameter values (finite, so not refused),
// the input shape with the same number of values or other spatial sizes (what global pooling
// absorbs), a layer setting that allocates nothing (stride, padding, dropout, epsilon) or the
// normalization in the metadata.
inline bool mutate_float_validly(Container& c, std::mt19937_64& rng) {
  nlohmann::json& description = c.header.at("description");
  switch (rng() % 4) {
    case 0:
    case 1: {  // parameter values
      std::vector<size_t> with_values;
      for (size_t b = 0; b < c.blobs.size(); ++b)
        if (c.blobs[b].size() >= 4) with_values.push_back(b);
      if (with_values.empty()) return false;
      std::string& blob = c.blobs[with_values[rng() % with_values.size()]];
      for (int k = 1 + static_cast<int>(rng() % 8); k > 0; --k) {
        const size_t at = rng() % (blob.size() / 4);
        set_blob_value(blob, at, stressing_float(rng, blob_value<float>(blob, at)));
      }
      return true;
    }
    case 2: {  // the input shape: a chain (linear layers) takes any shape of as many values, a graph
               // other heights and widths (what its global pooling absorbs)
      nlohmann::json& shape = description.at("input_shape");
      if (!shape.is_array() || shape.empty() || shape.size() > 4) return false;
      int64_t numel = 1;  // each dimension bounded first, so the product cannot overflow
      for (const auto& d : shape) {
        if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > 1 << 15) return false;
        numel *= d.get<int64_t>();
      }
      if (description.contains("layers")) {
        switch (rng() % 3) {
          case 0: shape = nlohmann::json::array({numel}); break;
          case 1: shape = nlohmann::json::array({1, numel, 1}); break;
          default: std::reverse(shape.begin(), shape.end());
        }
      } else {
        if (shape.size() != 3) return false;
        shape[1] = pick_in(rng, 1, 12);
        shape[2] = pick_in(rng, 1, 12);
      }
      return true;
    }
    default: {  // a setting that allocates nothing
      nlohmann::json& nodes = description.contains("nodes") ? description["nodes"] : description.at("layers");
      if (!nodes.is_array() || nodes.empty()) return false;
      nlohmann::json& node = nodes[rng() % nodes.size()];
      if (!node.is_object()) return false;
      const std::string kind = node.value("kind", "");
      if (kind == "conv2d" || kind == "max_pool2d" || kind == "avg_pool2d") {
        if (rng() % 2) node["stride"] = pick_in(rng, 1, 3);
        else node["padding"] = pick_in(rng, 0, 2);
      } else if (kind == "dropout") {
        node["p"] = static_cast<double>(rng() % 100) / 100.0;
      } else if (kind == "batch_norm") {
        node["epsilon"] = std::ldexp(1.0, -static_cast<int>(rng() % 40));
      } else if (c.header.contains("metadata") && c.header["metadata"].contains("mean")) {
        // no setting to change: the normalization then, within its valid range (1e-6 < std)
        nlohmann::json& metadata = c.header["metadata"];
        const char* key = rng() % 2 ? "mean" : "std";
        nlohmann::json& values = metadata.at(key);
        if (!values.is_array() || values.empty()) return false;
        values[rng() % values.size()] = key[0] == 'm' ? static_cast<double>(pick_in(rng, -2000, 2000)) / 1000.0
                                                      : static_cast<double>(pick_in(rng, 1, 2000)) / 1000.0;
      } else {
        return false;
      }
      return true;
    }
  }
}

// Nine in ten: a change that keeps the model valid (above); otherwise one that breaks something:
// a header value replaced by one that has broken parsers, a header number nudged, a blob's bytes
// (its size sometimes changed), or the version. Then encoded with consistent sizes and a CRC.
inline size_t mutate_container(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  Container c;
  if (!decode_loosely(data, size, c)) return LLVMFuzzerMutate(data, size, max_size);
  std::mt19937_64 rng(seed);
  bool valid = false;
  if (rng() % 10 != 0) {
    try {
      const nlohmann::json kind = c.header.value("kind", nlohmann::json());
      Container copy = c;
      if (kind == "quantized") valid = mutate_quantized_validly(copy, rng);
      else if (kind == "float") valid = mutate_float_validly(copy, rng);
      if (valid) c = std::move(copy);
    } catch (const std::exception&) {  // a header of another shape (nlohmann's or integer_in's): break it instead
      valid = false;
    }
  }
  if (!valid) mutate_breaking(c, rng);
  const std::string out = encode_container(std::move(c));
  if (out.size() > max_size) return LLVMFuzzerMutate(data, size, max_size);
  std::memcpy(data, out.data(), out.size());
  return out.size();
}

// The CRC over everything but the last 4 bytes, written there: lets raw byte mutations through.
inline std::string with_valid_crc(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (size < 4) return bytes;
  const std::string body = bytes.substr(0, size - 4);
  const uint32_t crc = container_crc32(body.data(), body.size());
  for (int i = 0; i < 4; ++i) bytes[size - 4 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  return bytes;
}

}  // namespace lowbit::fuzz
