// Running a CNN on the integer engine: the graph's checks, and chunks of images through its nodes.
#include "quant/integer_graph.h"

#include <algorithm>
#include <cmath>

#include "lowbit/error.h"
#include "lowbit/quantized_model.h"
#include "quant/file_limits.h"
#include "quant/image_chunks.h"
#include "quant/integer_linear.h"

namespace lowbit {
namespace {

// Images per chunk: each chunk runs through every node while its codes are in cache; chunks go
// to OpenMP threads. A 3x3 conv of resnet20's first stage makes 576 KB of im2col rows for 4.
constexpr int64_t kGraphChunk = 4;

using Op = IntegerNode::Op;

bool same_shape(const kernels::ImageShape& a, const kernels::ImageShape& b) {
  return a.h == b.h && a.w == b.w && a.c == b.c;
}

std::string shape_text(const kernels::ImageShape& s) {
  return "[" + std::to_string(s.h) + ", " + std::to_string(s.w) + ", " + std::to_string(s.c) + "]";
}

// M0 * 2^(e - 31) equals `real` to kMultiplierTolerance, and M0, e are in the kernels' ranges.
bool multiplier_matches(int32_t m0, int32_t e, double real) {
  if (m0 < (1 << 30) || e < -31 || e > 30) return false;
  const double stored = std::ldexp(static_cast<double>(m0), e - 31);
  return std::fabs(stored - real) <= kMultiplierTolerance * real;
}

// The output size of `w` over `in`, or {0, 0} when the window does not fit (kernel larger than
// the padded input, padding of a whole kernel or more) or its fields are out of range.
std::pair<int64_t, int64_t> window_output(const kernels::Window& w, const kernels::ImageShape& in) {
  const auto ok = [](int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; };
  if (!ok(w.kernel_h, 1, 1024) || !ok(w.kernel_w, 1, 1024) || !ok(w.stride_h, 1, 1024) ||
      !ok(w.stride_w, 1, 1024) || !ok(w.pad_h, 0, w.kernel_h - 1) || !ok(w.pad_w, 0, w.kernel_w - 1) ||
      w.kernel_h > in.h + 2 * w.pad_h || w.kernel_w > in.w + 2 * w.pad_w)
    return {0, 0};
  return {(in.h + 2 * w.pad_h - w.kernel_h) / w.stride_h + 1, (in.w + 2 * w.pad_w - w.kernel_w) / w.stride_w + 1};
}

}  // namespace

const char* IntegerNode::name() const {
  switch (op) {
    case Op::conv: return "conv";
    case Op::linear: return "linear";
    case Op::add: return "add";
    case Op::max_pool: return "max_pool";
    case Op::avg_pool: return "avg_pool";
    case Op::relu: return "relu";
    case Op::alias: return "alias";
  }
  return "?";
}

bool QuantizedModel::is_graph() const { return !nodes_.empty(); }

void QuantizedModel::prepare_graph(const std::string& where) {
  if (nodes_.empty() || static_cast<int64_t>(nodes_.size()) > kMaxGraphNodes)
    throw Error(where + ": a graph has 1.." + std::to_string(kMaxGraphNodes) + " nodes");
  if (input_shape_.size() != 3 || input_shape_[0] != channels_)
    throw Error(where + ": a graph's input shape must be [C, H, W] with C the " + std::to_string(channels_) +
                " channels");
  const kernels::ImageShape input_shape{input_shape_[1], input_shape_[2], input_shape_[0]};
  storage_.assign(nodes_.size(), 0);
  logits_node_ = -1;
  size_t next_layer = 0;
  int64_t codes = 0;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    IntegerNode& n = nodes_[i];
    const std::string at = where + ": node " + std::to_string(i) + " (" + n.name() + ")";
    const size_t inputs = n.inputs.size();
    if (inputs == 0 || (n.op == Op::add ? inputs < 2 || inputs > kernels::kMaxAddInputs : inputs != 1))
      throw Error(at + ": has " + std::to_string(inputs) + " inputs");
    for (int t : n.inputs)
      if (t < IntegerNode::kInput || t >= static_cast<int>(i))
        throw Error(at + ": input " + std::to_string(t) + " is not the model input (-1) or an earlier node");
    const int first = n.inputs[0];
    const bool after_logits = logits_node_ >= 0;
    if (after_logits) {
      if (n.op != Op::alias || first != static_cast<int>(i) - 1)
        throw Error(at + ": only aliases may follow the logits, each reading the node before");
      if (n.shape.size() != nodes_[first].shape.size()) throw Error(at + ": shape does not match its input");
      storage_[i] = static_cast<int>(i);
      continue;
    }
    // The input's shape and grid (bits, zero point, scale).
    const IntegerNode* source = first == IntegerNode::kInput ? nullptr : &nodes_[first];
    const kernels::ImageShape in = source ? source->shape : input_shape;
    const int in_bits = source ? source->bits : input_bits_;
    const int32_t in_zero = source ? source->zero_point : input_zero_point_;
    const float in_scale = source ? source->scale : input_scale_;
    if (!(n.bits >= 1 && n.bits <= 8) || n.zero_point < 0 || n.zero_point > (1 << n.bits) - 1 ||
        !(n.scale >= kMinScale && n.scale <= kMaxScale))
      throw Error(at + ": output grid out of range (bits 1..8, zero point in the codes, scale in [1e-30, 1e18])");
    if (n.shape.h < 1 || n.shape.w < 1 || n.shape.c < 1 || n.shape.h > 65536 || n.shape.w > 65536 ||
        n.shape.c > kernels::kMaxInFeatures || n.shape.size() > kMaxGraphCodes)
      throw Error(at + ": shape " + shape_text(n.shape) + " out of range");
    codes += n.shape.size();
    if (codes > kMaxGraphCodes)
      throw Error(at + ": the nodes up to this one hold more than " + std::to_string(kMaxGraphCodes) + " codes per image");
    const bool same_grid = n.bits == in_bits && n.zero_point == in_zero && n.scale == in_scale;
    const int32_t qmax = (1 << n.bits) - 1;
    storage_[i] = static_cast<int>(i);
    switch (n.op) {
      case Op::conv:
      case Op::linear: {
        if (n.layer != static_cast<int>(next_layer) || next_layer >= layers_.size())
          throw Error(at + ": layer " + std::to_string(n.layer) + " is not the next of the " +
                      std::to_string(layers_.size()) + " layers");
        const IntegerLinear& l = *layers_[next_layer++];
        kernels::ImageShape out{1, 1, l.out_features};
        int64_t k = in.size();
        if (n.op == Op::conv) {
          const auto [oh, ow] = window_output(n.window, in);
          if (oh == 0) throw Error(at + ": window does not fit its input " + shape_text(in));
          out = {oh, ow, l.out_features};
          k = n.window.kernel_h * n.window.kernel_w * in.c;  // at most 2^35: no overflow
          if (k > kernels::kMaxInFeatures) throw Error(at + ": " + std::to_string(k) + " inputs per output, too many");
          // im2col rows of one image: at most 16 Mi codes (resnet20 needs 147,456).
          if (oh * ow * k > (int64_t{1} << 24)) throw Error(at + ": im2col rows are too large");
        }
        if (!same_shape(out, n.shape)) throw Error(at + ": shape " + shape_text(n.shape) + ", expected " + shape_text(out));
        if (l.in_features != k)
          throw Error(at + ": layer has " + std::to_string(l.in_features) + " inputs, the node reads " + std::to_string(k));
        if (l.act_bits != in_bits || l.input_zero_point != in_zero || l.input_scale != in_scale)
          throw Error(at + ": layer's input grid differs from its input's");
        if (next_layer == layers_.size()) {
          if (l.out_bits != 0) throw Error(at + ": the last layer must give int32 logits");
          if (out.h != 1 || out.w != 1) throw Error(at + ": logits must be one value per class");
          logits_node_ = static_cast<int>(i);
        } else if (l.out_bits != n.bits || l.output_zero_point != n.zero_point || l.output_scale != n.scale ||
                   l.output_max != qmax || (l.output_min != 0 && l.output_min != n.zero_point)) {
          throw Error(at + ": layer's output grid differs from the node's");
        }
        break;
      }
      case Op::max_pool:
      case Op::avg_pool: {
        const auto [oh, ow] = window_output(n.window, in);
        if (oh == 0 || 2 * n.window.pad_h > n.window.kernel_h || 2 * n.window.pad_w > n.window.kernel_w)
          throw Error(at + ": window does not fit its input " + shape_text(in));
        if (!same_shape({oh, ow, in.c}, n.shape)) throw Error(at + ": shape " + shape_text(n.shape) + " does not match its window");
        if (n.op == Op::max_pool) {
          if (!same_grid) throw Error(at + ": max pooling keeps its input's grid");
          break;
        }
        const int64_t area = n.window.kernel_h * n.window.kernel_w;
        if (static_cast<int64_t>(n.multiplier.size()) != area || n.shift.size() != n.multiplier.size())
          throw Error(at + ": needs one multiplier and shift per divisor 1.." + std::to_string(area));
        for (int64_t d = 1; d <= area; ++d)
          if (!multiplier_matches(n.multiplier[d - 1], n.shift[d - 1], double{in_scale} / (double{n.scale} * d)))
            throw Error(at + ": multiplier for divisor " + std::to_string(d) + " disagrees with the scales");
        if ((n.out_min != 0 && n.out_min != n.zero_point) || n.out_max != qmax)
          throw Error(at + ": output clamp out of range");
        break;
      }
      case Op::add: {
        if (n.multiplier.size() != inputs || n.shift.size() != inputs)
          throw Error(at + ": needs one multiplier and shift per input");
        double largest = 0;
        for (int t : n.inputs) largest = std::max(largest, double{t < 0 ? input_scale_ : nodes_[t].scale});
        for (size_t k = 0; k < inputs; ++k) {
          const int t = n.inputs[k];
          if (!same_shape(t < 0 ? input_shape : nodes_[t].shape, n.shape))
            throw Error(at + ": inputs and output differ in shape");
          if (!multiplier_matches(n.multiplier[k], n.shift[k], double{t < 0 ? input_scale_ : nodes_[t].scale} / (2 * largest)))
            throw Error(at + ": multiplier of input " + std::to_string(k) + " disagrees with the scales");
        }
        if (!multiplier_matches(n.out_multiplier, n.out_shift,
                                2 * largest / (std::ldexp(1.0, kernels::kAddLeftShift) * double{n.scale})))
          throw Error(at + ": output multiplier disagrees with the scales");
        if ((n.out_min != 0 && n.out_min != n.zero_point) || n.out_max != qmax)
          throw Error(at + ": output clamp out of range");
        break;
      }
      case Op::relu:
        if (!same_shape(in, n.shape) || !same_grid) throw Error(at + ": a relu keeps its input's shape and grid");
        break;
      case Op::alias:
        if (n.shape.size() != in.size() || !same_grid) throw Error(at + ": an alias keeps its input's values and grid");
        if (first != IntegerNode::kInput) storage_[i] = storage_[first];
        else throw Error(at + ": an alias of the model input");
        break;
    }
  }
  if (logits_node_ < 0 || next_layer != layers_.size())
    throw Error(where + ": the graph uses " + std::to_string(next_layer) + " of " + std::to_string(layers_.size()) +
                " layers and ends without logits");
  for (uint8_t code : input_table_)
    if (code > (1 << input_bits_) - 1) throw Error(where + ": input table code out of range");
}

void QuantizedModel::graph_logits(const uint8_t* pixels, int64_t batch, int32_t* logits) const {
  const kernels::ImageShape input{input_shape_[1], input_shape_[2], input_shape_[0]};
  const int64_t classes = num_classes();
  auto run_chunk = [&](int64_t begin, int64_t count) {
    // Per thread: each node's codes for a chunk, the input codes and the im2col rows.
    thread_local std::vector<std::vector<uint8_t>> buffers;
    thread_local std::vector<uint8_t> input_codes, cols;
    if (buffers.size() < nodes_.size()) buffers.resize(nodes_.size());
    input_codes.resize(static_cast<size_t>(count * input.size()));
    kernels::pixels_to_codes(pixels + begin * input.size(), count, input, input_table_.data(), input_codes.data());
    auto codes_of = [&](int t) -> uint8_t* { return t < 0 ? input_codes.data() : buffers[storage_[t]].data(); };
    auto shape_of = [&](int t) { return t < 0 ? input : nodes_[t].shape; };
    for (size_t i = 0; i < nodes_.size() && static_cast<int>(i) <= logits_node_; ++i) {
      const IntegerNode& n = nodes_[i];
      if (n.op == Op::alias) continue;
      const bool is_logits = static_cast<int>(i) == logits_node_;
      if (!is_logits) buffers[i].resize(static_cast<size_t>(count * n.shape.size()));
      uint8_t* y = is_logits ? nullptr : buffers[i].data();
      const uint8_t* x = codes_of(n.inputs[0]);
      const kernels::ImageShape in = shape_of(n.inputs[0]);
      switch (n.op) {
        case Op::conv:
        case Op::linear: {
          const IntegerLinear& l = *layers_[n.layer];
          const int64_t rows = count * n.shape.h * n.shape.w;
          const kernels::Window& w = n.window;
          const bool pointwise = n.op == Op::linear || (w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 &&
                                                        w.stride_w == 1 && w.pad_h == 0 && w.pad_w == 0);
          if (!pointwise) {
            cols.resize(static_cast<size_t>(rows * l.in_features));
            kernels::im2col(x, count, in, w, n.shape, static_cast<uint8_t>(l.input_zero_point), cols.data());
            x = cols.data();
          }
          if (is_logits) l.run(x, l.in_features, rows, nullptr, logits + begin * classes, classes);
          else l.run(x, l.in_features, rows, y, nullptr, n.shape.c);
          break;
        }
        case Op::max_pool: kernels::max_pool(x, count, in, n.window, n.shape, y); break;
        case Op::avg_pool: {
          kernels::AvgPoolArgs a;
          a.window = n.window;
          a.count_include_pad = n.count_include_pad;
          a.in_zero_point = n.inputs[0] < 0 ? input_zero_point_ : nodes_[n.inputs[0]].zero_point;
          a.out_zero_point = n.zero_point;
          a.out_min = n.out_min;
          a.out_max = n.out_max;
          a.multiplier = n.multiplier.data();
          a.shift = n.shift.data();
          kernels::avg_pool(x, count, in, n.shape, a, y);
          break;
        }
        case Op::add: {
          const uint8_t* xs[kernels::kMaxAddInputs];
          int32_t zero_points[kernels::kMaxAddInputs];
          for (size_t k = 0; k < n.inputs.size(); ++k) {
            xs[k] = codes_of(n.inputs[k]);
            zero_points[k] = n.inputs[k] < 0 ? input_zero_point_ : nodes_[n.inputs[k]].zero_point;
          }
          kernels::AddArgs a;
          a.count = static_cast<int>(n.inputs.size());
          a.x = xs;
          a.zero_point = zero_points;
          a.multiplier = n.multiplier.data();
          a.shift = n.shift.data();
          a.out_multiplier = n.out_multiplier;
          a.out_shift = n.out_shift;
          a.out_zero_point = n.zero_point;
          a.out_min = n.out_min;
          a.out_max = n.out_max;
          kernels::add(a, count * n.shape.size(), y);
          break;
        }
        case Op::relu: kernels::relu(x, count * n.shape.size(), static_cast<uint8_t>(n.zero_point), y); break;
        case Op::alias: break;
      }
    }
  };
  for_each_chunk(batch, kGraphChunk, run_chunk);
}

}  // namespace lowbit
