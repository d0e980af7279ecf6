// Running a CNN on the integer engine: the graph's checks, and chunks of images through its nodes.
#include "quant/integer_graph.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <omp.h>

#include "lowbit/error.h"
#include "lowbit/quantized_model.h"
#include "quant/file_limits.h"
#include "quant/image_chunks.h"
#include "quant/integer_linear.h"
#include "quant/step_timer.h"

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

// A 1x1, stride-1, unpadded conv (or a linear) reads its input codes as they are: no im2col.
// LOWBIT_GRAPH_SPLIT=1 splits a batch of one chunk across the threads (GraphRun::nodes_in_bands).
// Off by default: on the shared 2-vCPU machine each node's barrier cost more than the split gained
// (docs/quantization.md, "Where the time goes"). Read on every call, so a test can turn it on.
bool split_small_batches() {
  const char* v = std::getenv("LOWBIT_GRAPH_SPLIT");
  return v && std::string(v) == "1";
}

bool reads_codes_directly(const IntegerNode& n) {
  const kernels::Window& w = n.window;
  return n.op == Op::linear || (w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1 &&
                                w.pad_h == 0 && w.pad_w == 0);
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

kernels::AvgPoolArgs avg_pool_args(const IntegerNode& n, int32_t in_zero_point) {
  kernels::AvgPoolArgs a;
  a.window = n.window;
  a.count_include_pad = n.count_include_pad;
  a.in_zero_point = in_zero_point;
  a.out_zero_point = n.zero_point;
  a.out_min = n.out_min;
  a.out_max = n.out_max;
  a.sum_shift = n.sum_shift;
  a.multiplier = n.multiplier.data();
  a.shift = n.shift.data();
  return a;
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
        if (n.sum_shift < 0 || n.sum_shift > kernels::avg_pool_sum_shift(area))
          throw Error(at + ": sum shift " + std::to_string(n.sum_shift) + " would overflow the window's sum");
        for (int64_t d = 1; d <= area; ++d)
          if (!multiplier_matches(n.multiplier[d - 1], n.shift[d - 1],
                                  double{in_scale} / (double{n.scale} * d * std::ldexp(1.0, n.sum_shift))))
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

std::vector<EngineStep> QuantizedModel::graph_steps(std::vector<int>* step_of,
                                                    std::vector<int>* im2col_step_of) const {
  const kernels::ImageShape input{input_shape_[1], input_shape_[2], input_shape_[0]};
  std::vector<EngineStep> steps = {{"pixels", -1, {input.h, input.w, input.c}, 0}};
  step_of->assign(nodes_.size(), -1);
  im2col_step_of->assign(nodes_.size(), -1);
  for (size_t i = 0; i < nodes_.size() && static_cast<int>(i) <= logits_node_; ++i) {
    const IntegerNode& n = nodes_[i];
    if (n.op == Op::alias) continue;
    const int node = static_cast<int>(i);
    int64_t macs = 0;
    if (n.op == Op::conv || n.op == Op::linear) {
      const IntegerLinear& l = *layers_[n.layer];
      macs = l.in_features * l.out_features * n.shape.h * n.shape.w;
      if (!reads_codes_directly(n)) {
        (*im2col_step_of)[i] = static_cast<int>(steps.size());
        steps.push_back({"im2col", node, {n.shape.h, n.shape.w, l.in_features}, 0});
      }
    }
    (*step_of)[i] = static_cast<int>(steps.size());
    steps.push_back({n.name(), node, {n.shape.h, n.shape.w, n.shape.c}, macs});
  }
  return steps;
}

namespace {

// Output rows [oy0, oy1) of a window operator over `in`, as the same operator on the input rows
// they read: from input row first_row, `in` cut to the rows the band reads, and the band's own top
// padding. Rows past the cut count as outside, so the bottom padding falls out of the bounds checks
// and every kernel computes the band's bytes exactly as it computes them in the whole image.
struct Band {
  int64_t first_row;
  kernels::ImageShape in;
  kernels::Window window;
};
Band band_of(const kernels::ImageShape& in, const kernels::Window& w, int64_t oy0, int64_t oy1) {
  const int64_t top = oy0 * w.stride_h - w.pad_h;  // the first row read; < 0 in the top padding
  const int64_t bottom = std::min(in.h, (oy1 - 1) * w.stride_h - w.pad_h + w.kernel_h);
  Band b{std::max<int64_t>(top, 0), in, w};
  b.window.pad_h = std::max<int64_t>(-top, 0);
  b.in.h = bottom - b.first_row;
  return b;
}

}  // namespace

// One chunk of `count` images, starting at image `begin` of the batch, through the graph.
class QuantizedModel::GraphRun {
 public:
  // seconds: null, or per step (graph_steps), with step_of / im2col_step_of its indices per node.
  GraphRun(const QuantizedModel& m, const uint8_t* pixels, int64_t begin, int64_t count, int32_t* logits,
           double* seconds, const std::vector<int>& step_of, const std::vector<int>& im2col_step_of)
      : m_(m), ops_(kernels::best_integer_ops_kernel()), begin_(begin), count_(count), logits_(logits),
        seconds_(seconds), step_of_(step_of), im2col_step_of_(im2col_step_of) {
    // The calling thread's buffers. A node's codes live from the node to its last reader; a buffer
    // whose codes are dead is reused, so a chunk holds the few tensors still to be read (resnet20:
    // a handful of 64 KB buffers) rather than one per node (about 3 MB).
    thread_local std::vector<std::vector<uint8_t>> buffers;
    thread_local std::vector<uint8_t> input_codes;
    const int nodes = m.logits_node_;  // the logits node writes int32 logits, not a buffer
    std::vector<int> last_read(m.nodes_.size(), -1);  // per storing node
    for (int i = 0; i <= nodes; ++i)
      if (m.nodes_[i].op != Op::alias)
        for (int t : m.nodes_[i].inputs)
          if (t >= 0) last_read[m.storage_[t]] = std::max(last_read[m.storage_[t]], i);
    buffer_of_.assign(m.nodes_.size(), -1);
    std::vector<int> busy_until;  // per buffer: the last reader of the codes it holds
    std::vector<size_t> sizes;
    for (int i = 0; i < nodes; ++i) {
      if (m.nodes_[i].op == Op::alias) continue;
      int b = 0;
      while (b < static_cast<int>(busy_until.size()) && busy_until[b] >= i) ++b;  // held by a live tensor
      if (b == static_cast<int>(busy_until.size())) busy_until.push_back(0), sizes.push_back(0);
      busy_until[b] = std::max(last_read[i], i);
      sizes[b] = std::max(sizes[b], static_cast<size_t>(count * m.nodes_[i].shape.size()));
      buffer_of_[i] = b;
    }
    if (buffers.size() < sizes.size()) buffers.resize(sizes.size());
    for (size_t b = 0; b < sizes.size(); ++b)
      if (buffers[b].size() < sizes[b]) buffers[b].resize(sizes[b]);
    input_ = {m.input_shape_[1], m.input_shape_[2], m.input_shape_[0]};
    input_codes.resize(static_cast<size_t>(count * input_.size()));
    buffers_ = &buffers;
    input_codes_ = input_codes.data();
    pixels_ = pixels + begin * input_.size();
  }

  void pixels(StepTimer& timer) const {
    ops_.pixels_to_codes(pixels_, count_, input_, m_.input_table_.data(), input_codes_);
    timer.lap(0);
  }

  // Every node on every image of the chunk, on this thread (the GEMM may use others).
  void all_nodes(StepTimer& timer) const {
    for (size_t i = 0; i < m_.nodes_.size() && static_cast<int>(i) <= m_.logits_node_; ++i)
      if (m_.nodes_[i].op != Op::alias) node(i, 0, count_, 0, m_.nodes_[i].shape.h, timer);
  }

  // Every node on this thread's share of each image's output rows, inside a parallel region: the
  // threads take bands of rows in turn, and wait for each other before the next node.
  void nodes_in_bands(int threads, StepTimer& timer) const {
    for (size_t i = 0; i < m_.nodes_.size() && static_cast<int>(i) <= m_.logits_node_; ++i) {
      const IntegerNode& n = m_.nodes_[i];
      if (n.op == Op::alias) continue;
      const int64_t bands = std::min<int64_t>(n.shape.h, 4 * threads), items = count_ * bands;
#pragma omp for schedule(dynamic, 1)
      for (int64_t item = 0; item < items; ++item) {
        const int64_t image = item / bands, band = item % bands;
        node(i, image, 1, n.shape.h * band / bands, n.shape.h * (band + 1) / bands, timer);
      }
      timer.lap(seconds_ ? step_of_[i] : 0);  // the wait for the other threads is the node's too
    }
  }

 private:
  uint8_t* codes_of(int t) const { return t < 0 ? input_codes_ : (*buffers_)[buffer_of_[m_.storage_[t]]].data(); }
  const kernels::ImageShape& shape_of(int t) const { return t < 0 ? input_ : m_.nodes_[t].shape; }
  int32_t zero_point_of(int t) const { return t < 0 ? m_.input_zero_point_ : m_.nodes_[t].zero_point; }

  // Node i on images [image, image + images) of the chunk, output rows [oy0, oy1) of each (all
  // rows when images > 1).
  void node(size_t i, int64_t image, int64_t images, int64_t oy0, int64_t oy1, StepTimer& timer) const {
    const IntegerNode& n = m_.nodes_[i];
    const bool is_logits = static_cast<int>(i) == m_.logits_node_;
    const kernels::ImageShape& in = shape_of(n.inputs[0]);
    const bool whole = oy0 == 0 && oy1 == n.shape.h;
    // The band's output and, for window operators, its input.
    const kernels::ImageShape out{oy1 - oy0, n.shape.w, n.shape.c};
    const int64_t out_offset = image * n.shape.size() + oy0 * n.shape.w * n.shape.c;
    uint8_t* y = is_logits ? nullptr : codes_of(static_cast<int>(i)) + out_offset;
    const uint8_t* x = codes_of(n.inputs[0]) + image * in.size();
    Band band{0, in, n.window};
    if (!whole) band = band_of(in, n.window, oy0, oy1);
    const uint8_t* x_band = x + band.first_row * in.w * in.c;
    switch (n.op) {
      case Op::conv:
      case Op::linear: {
        const IntegerLinear& l = *m_.layers_[n.layer];
        const int64_t rows = images * out.h * out.w;
        const uint8_t* rows_x = x + oy0 * n.shape.w * l.in_features;  // 1x1: the codes are the rows
        if (!reads_codes_directly(n)) {
          thread_local std::vector<uint8_t> cols;
          if (cols.size() < static_cast<size_t>(rows * l.in_features)) cols.resize(static_cast<size_t>(rows * l.in_features));
          ops_.im2col(x_band, images, band.in, band.window, out, static_cast<uint8_t>(l.input_zero_point), cols.data());
          rows_x = cols.data();
          timer.lap(seconds_ ? im2col_step_of_[i] : 0);
        }
        if (is_logits) l.run(rows_x, l.in_features, rows, nullptr, logits_ + (begin_ + image) * n.shape.c, n.shape.c);
        else l.run(rows_x, l.in_features, rows, y, nullptr, n.shape.c);
        break;
      }
      case Op::max_pool: ops_.max_pool(x_band, images, band.in, band.window, out, y); break;
      case Op::avg_pool: {
        kernels::AvgPoolArgs a = avg_pool_args(n, zero_point_of(n.inputs[0]));
        a.window = band.window;
        ops_.avg_pool(x_band, images, band.in, out, a, y);
        break;
      }
      case Op::add: {
        const uint8_t* xs[kernels::kMaxAddInputs];
        int32_t zero_points[kernels::kMaxAddInputs];
        for (size_t k = 0; k < n.inputs.size(); ++k) {
          xs[k] = codes_of(n.inputs[k]) + out_offset;  // every input has the output's shape
          zero_points[k] = zero_point_of(n.inputs[k]);
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
        ops_.add(a, images * out.size(), y);
        break;
      }
      case Op::relu:
        ops_.relu(x + oy0 * n.shape.w * n.shape.c, images * out.size(), static_cast<uint8_t>(n.zero_point), y);
        break;
      case Op::alias: break;
    }
    timer.lap(seconds_ ? step_of_[i] : 0);
  }

  const QuantizedModel& m_;
  const kernels::IntegerOpsKernel& ops_;
  int64_t begin_, count_;
  int32_t* logits_;
  double* seconds_;
  const std::vector<int>& step_of_;
  const std::vector<int>& im2col_step_of_;
  kernels::ImageShape input_;
  std::vector<std::vector<uint8_t>>* buffers_ = nullptr;
  std::vector<int> buffer_of_;  // per storing node: its buffer
  uint8_t* input_codes_ = nullptr;
  const uint8_t* pixels_ = nullptr;
};

void QuantizedModel::graph_logits(const uint8_t* pixels, int64_t batch, int32_t* logits, double* seconds) const {
  std::vector<int> step_of, im2col_step_of;
  size_t steps = 0;
  if (seconds) steps = graph_steps(&step_of, &im2col_step_of).size();
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (batch <= kGraphChunk && threads > 1 && split_small_batches()) {
    // One chunk: rather than leave the other threads idle outside the GEMM, split each node's
    // output rows among them (when asked).
    const GraphRun run(*this, pixels, 0, batch, logits, seconds, step_of, im2col_step_of);
    {
      StepTimer timer(seconds, steps);
      run.pixels(timer);
    }
#pragma omp parallel num_threads(threads)
    {
      StepTimer timer(seconds, steps);
      run.nodes_in_bands(threads, timer);
    }
    return;
  }
  for_each_chunk(batch, kGraphChunk, [&](int64_t begin, int64_t count) {
    StepTimer timer(seconds, steps);
    const GraphRun run(*this, pixels, begin, count, logits, seconds, step_of, im2col_step_of);
    run.pixels(timer);
    run.all_nodes(timer);
  });
}

}  // namespace lowbit
