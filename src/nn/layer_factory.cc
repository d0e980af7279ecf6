// Layers from their description: field checks per kind, then the constructor's shape checks.
#include "nn/layer_factory.h"

#include <set>
#include <tuple>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "util/json_field.h"

namespace lowbit {
namespace {

// Fields every node may carry besides its kind's own settings.
const std::set<std::string> kNodeFields = {"kind", "name", "inputs"};

class Fields {
 public:
  Fields(const nlohmann::json& spec, std::set<std::string> allowed) : spec_(spec) {
    for (const auto& [key, value] : spec.items())
      if (!kNodeFields.count(key) && !allowed.count(key))
        throw Error("unknown field \"" + key + "\"");
  }

  bool has(const char* key) const { return spec_.contains(key); }

  int64_t integer(const char* key, int64_t fallback, int64_t lo, int64_t hi, bool required = false) const {
    if (!spec_.contains(key)) {
      if (required) throw Error("needs an integer \"" + std::string(key) + "\"");
      return fallback;
    }
    return checked(spec_[key], key, lo, hi);
  }

  // One integer for both axes, or [h, w].
  std::pair<int64_t, int64_t> pair(const char* key, std::pair<int64_t, int64_t> fallback, int64_t lo,
                                   int64_t hi, bool required = false) const {
    if (!spec_.contains(key)) {
      if (required) throw Error("needs \"" + std::string(key) + "\" (an integer or [h, w])");
      return fallback;
    }
    const nlohmann::json& v = spec_[key];
    if (v.is_array()) {
      if (v.size() != 2) throw Error("\"" + std::string(key) + "\" must be an integer or [h, w]");
      return {checked(v[0], key, lo, hi), checked(v[1], key, lo, hi)};
    }
    const int64_t both = checked(v, key, lo, hi);
    return {both, both};
  }

  bool boolean(const char* key, bool fallback) const {
    if (!spec_.contains(key)) return fallback;
    if (!spec_[key].is_boolean()) throw Error("\"" + std::string(key) + "\" must be true or false");
    return spec_[key].get<bool>();
  }

  // A finite number in [lo, hi] (a float field: the range lies within float's).
  float number(const char* key, float fallback, double lo, double hi) const {
    if (!spec_.contains(key)) return fallback;
    return static_cast<float>(json_number(spec_[key], "\"" + std::string(key) + "\"", lo, hi));
  }

 private:
  static int64_t checked(const nlohmann::json& v, const char* key, int64_t lo, int64_t hi) {
    return json_integer(v, "\"" + std::string(key) + "\"", lo, hi);
  }

  const nlohmann::json& spec_;
};

const Shape& one_input(const std::string& kind, std::span<const Shape> inputs) {
  if (inputs.size() != 1)
    throw Error(kind + " takes one input, given " + std::to_string(inputs.size()));
  return inputs[0];
}

// Optional fields that restate the input's size (as PyTorch and ONNX give them) must agree with it.
void expect_size(const Fields& f, const char* key, int64_t actual, const char* what) {
  if (!f.has(key)) return;
  const int64_t stated = f.integer(key, 0, 1, int64_t{1} << 40);
  if (stated != actual)
    throw Error(std::string(key) + " " + std::to_string(stated) + " does not match the " +
                std::to_string(actual) + " " + what);
}

Window2d window(const Fields& f, bool stride_defaults_to_kernel) {
  Window2d w;
  std::tie(w.kernel_h, w.kernel_w) = f.pair("kernel", {1, 1}, 1, 1024, true);
  const auto stride_default = stride_defaults_to_kernel ? std::pair{w.kernel_h, w.kernel_w}
                                                        : std::pair<int64_t, int64_t>{1, 1};
  std::tie(w.stride_h, w.stride_w) = f.pair("stride", stride_default, 1, 1024);
  std::tie(w.pad_h, w.pad_w) = f.pair("padding", {0, 0}, 0, 1024);
  return w;
}

}  // namespace

const std::vector<std::string>& layer_kinds() {
  static const std::vector<std::string> kinds = {
      "linear", "conv2d", "batch_norm", "relu", "max_pool2d", "avg_pool2d", "global_avg_pool",
      "global_max_pool", "flatten", "dropout", "add", "log_softmax"};
  return kinds;
}

// Refuses a layer of `values` parameter and buffer values when fewer are left in the budget, before
// its constructor allocates them.
void spend(int64_t& budget, int64_t values) {
  if (values > budget)
    throw Error("needs " + std::to_string(values) + " parameter values, more than the " +
                std::to_string(budget) + " the model may still hold");
  budget -= values;
}

std::unique_ptr<Layer> make_layer(const nlohmann::json& spec, std::span<const Shape> inputs, int64_t& budget) {
  const std::string& kind = json_string(spec.at("kind"), "\"kind\"");
  if (kind == "linear") {
    const Fields f(spec, {"in_features", "out_features"});
    const Shape& input = one_input(kind, inputs);
    expect_size(f, "in_features", shape_numel(input), "input features");
    const int64_t out = f.integer("out_features", 0, 1, 1 << 20, true);
    if (shape_numel(input) * out > (int64_t{1} << 28)) throw Error("linear layer is too large");
    spend(budget, (shape_numel(input) + 1) * out);
    return std::make_unique<Linear>(shape_numel(input), out);
  }
  if (kind == "conv2d") {
    const Fields f(spec, {"in_channels", "out_channels", "kernel", "stride", "padding", "groups",
                          "bias", "dilation"});
    const Shape& input = one_input(kind, inputs);
    if (input.size() == 3) expect_size(f, "in_channels", input[0], "input channels");
    if (f.pair("dilation", {1, 1}, 1, 1024) != std::pair<int64_t, int64_t>{1, 1})
      throw Error("dilation other than 1 is not supported");
    Conv2dOptions o;
    o.out_channels = f.integer("out_channels", 0, 1, 1 << 20, true);
    o.window = window(f, false);
    o.groups = f.integer("groups", 1, 1, 1 << 20);
    o.bias = f.boolean("bias", true);
    // Weights [out, C / groups, kh, kw] and bias [out]; every factor is at most 2^20, so no overflow.
    if (input.size() == 3 && input[0] % o.groups == 0)
      spend(budget, o.out_channels * (input[0] / o.groups * o.window.kernel_h * o.window.kernel_w +
                                      (o.bias ? 1 : 0)));
    return std::make_unique<Conv2d>(input, o);
  }
  if (kind == "batch_norm") {
    const Fields f(spec, {"channels", "epsilon", "momentum"});
    const Shape& input = one_input(kind, inputs);
    if (!input.empty()) expect_size(f, "channels", input[0], "input channels");
    if (!input.empty()) spend(budget, 4 * input[0]);  // weight, bias, running mean and variance
    return std::make_unique<BatchNorm2d>(input, f.number("epsilon", 1e-5f, 0, 1), f.number("momentum", 0.1f, 0, 1));
  }
  if (kind == "max_pool2d" || kind == "avg_pool2d") {
    const bool average = kind == "avg_pool2d";
    const Fields f(spec, average ? std::set<std::string>{"kernel", "stride", "padding", "count_include_pad"}
                                 : std::set<std::string>{"kernel", "stride", "padding"});
    return std::make_unique<Pool2d>(average ? Pool2d::Op::average : Pool2d::Op::max,
                                    one_input(kind, inputs), window(f, true),
                                    f.boolean("count_include_pad", true));
  }
  if (kind == "global_avg_pool" || kind == "global_max_pool") {
    const Fields f(spec, {});
    return std::make_unique<GlobalPool>(kind == "global_max_pool" ? Pool2d::Op::max : Pool2d::Op::average,
                                        one_input(kind, inputs));
  }
  if (kind == "dropout") {
    const Fields f(spec, {"p"});
    one_input(kind, inputs);
    return std::make_unique<Dropout>(f.number("p", 0.5f, 0, 1));
  }
  if (kind == "add") {
    const Fields f(spec, {});
    return std::make_unique<Add>(std::vector<Shape>(inputs.begin(), inputs.end()));
  }
  std::unique_ptr<Layer> layer;
  if (kind == "relu") layer = std::make_unique<ReLU>();
  else if (kind == "log_softmax") layer = std::make_unique<LogSoftmax>();
  else if (kind == "flatten") layer = std::make_unique<Flatten>();
  else throw Error("unknown layer kind \"" + kind + "\"");
  const Fields f(spec, {});
  one_input(kind, inputs);
  return layer;
}

}  // namespace lowbit
