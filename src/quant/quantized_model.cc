// Running the integer-only quantized model (the engine); building it from a plan is in
// quantized_model_build.cc, files in quantized_model_file.cc.
#include "lowbit/quantized_model.h"

#include <algorithm>

#include "kernels/integer_ops.h"
#include "kernels/pixel_linear.h"
#include "quant/image_chunks.h"
#include "quant/integer_graph.h"
#include "quant/integer_linear.h"
#include "quant/step_timer.h"

namespace lowbit {
namespace {

// Rows per chunk of batch inference: each chunk runs through every layer while its
// activations are still in cache, and chunks go to OpenMP threads.
constexpr int64_t kChunkRows = 64;

// "u4" for 4-bit unsigned codes. (Built by append: GCC 12 warns falsely on "u" + string.)
std::string output_code_name(int bits) {
  std::string name = "u";
  name += std::to_string(bits);
  return name;
}

}  // namespace

namespace {

kernels::QLinearArgs linear_args(const IntegerLinear& layer, const uint8_t* x, int64_t x_stride, int64_t batch,
                                 uint8_t* y_codes, int32_t* y_logits, int64_t y_stride) {
  kernels::QLinearArgs args;
  args.batch = batch;
  args.x = x;
  args.x_stride = x_stride;
  args.x_zero_point = layer.input_zero_point;
  args.bias = layer.bias.data();
  args.w_zero_point = layer.weight_zero_point.data();
  args.multiplier = layer.multiplier.data();
  args.shift = layer.shift.data();
  args.acc_shift = layer.acc_shift;
  args.out_zero_point = layer.output_zero_point;
  args.out_min = layer.output_min;
  args.out_max = layer.output_max;
  args.y_u8 = y_codes;
  args.y_i32 = y_logits;
  args.y_stride = y_stride;
  return args;
}

}  // namespace

void IntegerLinear::run(const uint8_t* x, int64_t x_stride, int64_t batch, uint8_t* y_codes,
                        int32_t* y_logits, int64_t y_stride) const {
  kernel->run(*prepared, linear_args(*this, x, x_stride, batch, y_codes, y_logits, y_stride));
}

void IntegerLinear::run_pixels(const uint8_t* pixels, int64_t x_stride, int64_t batch, uint8_t* y_codes,
                               int32_t* y_logits, int64_t y_stride) const {
  kernels::best_pixel_linear_kernel().run(
      *pixel_prepared, linear_args(*this, pixels, x_stride, batch, y_codes, y_logits, y_stride));
}

kernels::PackedWeights IntegerLinear::kernel_weights() const {
  if (!sign_weights) return weights;
  // q in {0, 1} -> 2q in {0, 2}; with zero point 1 the kernels' exact sum of (w - z_w)(x - z_x)
  // sees 2q - 1 = -1 or +1, so no kernel needs to know about sign-binary weights.
  std::vector<uint8_t> codes(static_cast<size_t>(weights.rows * weights.cols));
  kernels::unpack_weights(weights, codes.data());
  for (uint8_t& c : codes) c = static_cast<uint8_t>(2 * c);
  return kernels::pack_weights(codes.data(), weights.rows, weights.cols, kernel_weight_bits());
}

void IntegerLinear::prepare_kernel() {
  // Sign-binary codes {0, 2} cost one bit plane in the bit-serial kernels (they drop the zero low
  // plane), so they are chosen for as 1-bit weights; whichever kernel comes back runs 2-bit codes.
  kernel = &kernels::qlinear_kernel_for(sign_weights ? 1 : kernel_weight_bits(), act_bits);
  prepared = kernel->prepare(kernel_weights(), act_bits);
}

QuantizedModel::QuantizedModel() = default;
QuantizedModel::~QuantizedModel() = default;
QuantizedModel::QuantizedModel(QuantizedModel&&) noexcept = default;
QuantizedModel& QuantizedModel::operator=(QuantizedModel&&) noexcept = default;

int64_t QuantizedModel::input_size() const { return shape_numel(input_shape_); }
int64_t QuantizedModel::num_classes() const { return layers_.back()->out_features; }
int QuantizedModel::weight_bits() const { return layers_.front()->weights.bits; }
int QuantizedModel::act_bits() const { return layers_.front()->act_bits; }
const char* QuantizedModel::kernel_name() { return kernels::best_qlinear_kernel().name(); }
const char* QuantizedModel::input_kernel_name() { return kernels::best_pixel_linear_kernel().name(); }
const char* QuantizedModel::ops_kernel_name() { return kernels::best_integer_ops_kernel().name(); }

int64_t QuantizedModel::weight_bytes() const {
  int64_t bytes = 0;
  for (const auto& layer : layers_) bytes += static_cast<int64_t>(layer->weights.data.size());
  return bytes;
}

std::vector<int64_t> QuantizedModel::layer_macs_per_image() const {
  std::vector<int64_t> macs;
  for (const auto& layer : layers_) macs.push_back(layer->in_features * layer->out_features);
  if (is_graph())  // a conv's layer runs once per output position
    for (const IntegerNode& n : nodes_)
      if (n.layer >= 0) macs[static_cast<size_t>(n.layer)] *= n.shape.h * n.shape.w;
  return macs;
}

int64_t QuantizedModel::macs_per_image() const {
  int64_t macs = 0;
  for (int64_t m : layer_macs_per_image()) macs += m;
  return macs;
}

int64_t QuantizedModel::bit_operations() const {
  const std::vector<int64_t> macs = layer_macs_per_image();
  int64_t ops = 0;
  for (size_t l = 0; l < layers_.size(); ++l) ops += macs[l] * layers_[l]->weights.bits * layers_[l]->act_bits;
  return ops;
}

void QuantizedModel::prepare_input_layer() {
  kernels::PixelTable table;
  table.per_channel = input_size() / channels_;
  table.codes = input_table_;
  IntegerLinear& first = *layers_.front();
  first.pixel_prepared =
      kernels::best_pixel_linear_kernel().prepare(first.kernel_weights(), first.act_bits, table);
}

void QuantizedModel::logits(const uint8_t* pixels, int64_t batch, int32_t* logits) const {
  if (is_graph()) graph_logits(pixels, batch, logits, nullptr);
  else chain_logits(pixels, batch, logits, nullptr);
}

std::vector<EngineStep> QuantizedModel::engine_steps() const {
  if (is_graph()) {
    std::vector<int> step_of, im2col_step_of;
    return graph_steps(&step_of, &im2col_step_of);
  }
  std::vector<EngineStep> steps;
  for (size_t l = 0; l < layers_.size(); ++l)
    steps.push_back({l == 0 ? "pixel_linear" : "linear", static_cast<int>(l), {layers_[l]->out_features},
                     layers_[l]->in_features * layers_[l]->out_features});
  return steps;
}

void QuantizedModel::timed_logits(const uint8_t* pixels, int64_t batch, int32_t* logits,
                                  std::vector<double>& seconds) const {
  const size_t steps = engine_steps().size();
  if (seconds.size() < steps) seconds.resize(steps, 0.0);
  if (is_graph()) graph_logits(pixels, batch, logits, seconds.data());
  else chain_logits(pixels, batch, logits, seconds.data());
}

void QuantizedModel::chain_logits(const uint8_t* pixels, int64_t batch, int32_t* logits, double* seconds) const {
  const int64_t features = input_size();
  const int64_t classes = num_classes();
  auto run_chunk = [&](int64_t begin, int64_t rows) {
    StepTimer timer(seconds, layers_.size());
    // Two code buffers, ping-pong through the layers; the first layer reads the pixels themselves.
    thread_local std::vector<uint8_t> a, b;
    if (a.size() < static_cast<size_t>(rows * max_width_)) a.resize(static_cast<size_t>(rows * max_width_));
    if (b.size() < static_cast<size_t>(rows * max_width_)) b.resize(static_cast<size_t>(rows * max_width_));
    const IntegerLinear& first = *layers_.front();
    if (layers_.size() == 1) {
      first.run_pixels(pixels + begin * features, features, rows, nullptr, logits + begin * classes, classes);
      timer.lap(0);
      return;
    }
    first.run_pixels(pixels + begin * features, features, rows, a.data(), nullptr, first.out_features);
    timer.lap(0);
    int64_t stride = first.out_features;
    for (size_t l = 1; l < layers_.size(); ++l) {
      const IntegerLinear& layer = *layers_[l];
      if (l + 1 == layers_.size()) {
        layer.run(a.data(), stride, rows, nullptr, logits + begin * classes, classes);
      } else {
        layer.run(a.data(), stride, rows, b.data(), nullptr, layer.out_features);
        std::swap(a, b);
        stride = layer.out_features;
      }
      timer.lap(static_cast<int>(l));
    }
  };
  for_each_chunk(batch, kChunkRows, run_chunk);
}

nlohmann::json QuantizedModel::summary() const {
  // [min, max] of a per-channel constant.
  auto range = [](const auto& values) {
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    return nlohmann::json::array({*lo, *hi});
  };
  nlohmann::json layers = nlohmann::json::array();
  const std::vector<int64_t> macs = layer_macs_per_image();
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& l = layers_[i];
    layers.push_back({{"in_features", l->in_features},
                      {"out_features", l->out_features},
                      {"weight_bits", l->weights.bits},
                      {"weight_coding", l->sign_weights ? "sign" : "affine"},
                      {"act_bits", l->act_bits},
                      {"acc_shift", l->acc_shift},
                      {"output", l->out_bits ? output_code_name(l->out_bits) : "int32 logits"},
                      {"input_scale", l->input_scale},
                      {"input_zero_point", l->input_zero_point},
                      {"weight_scale", range(l->weight_scale)},
                      {"weight_zero_point", range(l->weight_zero_point)},
                      {"output_scale", l->output_scale},
                      {"output_zero_point", l->output_zero_point},
                      {"output_clamp", {l->output_min, l->output_max}},
                      {"packed_bytes", l->weights.data.size()},
                      // bias, weight zero points, multipliers and shifts: four int32 per channel
                      {"constant_bytes", 4 * 4 * l->out_features},
                      {"macs", macs[i]},
                      // chosen per layer by its widths (kernels::qlinear_kernel_for)
                      {"kernel", l->kernel ? l->kernel->name() : kernel_name()}});
  }
  nlohmann::json summary = {{"input_shape", input_shape_},
          {"num_classes", num_classes()},
          {"logit_scale", logit_scale_},
          {"weight_bytes", weight_bytes()},
          {"macs_per_image", macs_per_image()},
          {"bit_operations", bit_operations()},
          {"kernel", kernel_name()},
          {"input_kernel", input_kernel_name()},
          {"layers", layers}};
  if (is_graph()) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const IntegerNode& n : nodes_)
      nodes.push_back({{"op", n.name()}, {"inputs", n.inputs}, {"shape_hwc", {n.shape.h, n.shape.w, n.shape.c}},
                       {"bits", n.bits}, {"zero_point", n.zero_point}, {"scale", n.scale}, {"layer", n.layer}});
    summary["nodes"] = nodes;
  }
  return summary;
}

}  // namespace lowbit
