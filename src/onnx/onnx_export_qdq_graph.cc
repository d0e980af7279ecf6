// lowbit quantized CNN (.lbq graph, src/quant/integer_graph.h) -> ONNX QDQ graph (opset 17), NCHW:
// raw uint8 pixels [batch, C, H, W] onto the input grid, then per integer node
//   conv / linear: DequantizeLinear -> Conv / Gemm (int32 bias through DequantizeLinear)
//                  -> QuantizeLinear -> Max/Min on the codes (the engine's clamp, ReLU folded in)
//   add:           DequantizeLinear of each input -> Add -> QuantizeLinear -> Max/Min
//   avg_pool:      the engine's two fixed-point roundings as float and double ops around AveragePool
//   max_pool:      MaxPool on the uint8 codes (exact: codes are monotone in the real values)
//   relu:          Max(codes, zero point)
// ending in the float logits of the last conv or linear.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/qlinear.h"
#include "lowbit/error.h"
#include "lowbit/quantized_model.h"
#include "onnx/onnx_writer.h"
#include "onnx/qdq_builder.h"
#include "quant/integer_graph.h"
#include "quant/integer_linear.h"

namespace lowbit {
namespace {

using Op = IntegerNode::Op;

class QdqGraphExporter : QdqBuilder {
 public:
  QdqGraphExporter(const QuantizedModel& model, onnx::ModelProto& proto)
      : QdqBuilder(model, proto.mutable_graph()), nodes_(model.graph_nodes()) {}

  void run() {
    add_value(graph_->add_input(), "input", onnx::TensorProto::UINT8, model_.input_shape());
    input_ = {"input_codes", false, {model_.input_shape()[1], model_.input_shape()[2], model_.input_shape()[0]},
              model_.graph_input_scale(), model_.graph_input_zero_point()};
    input_codes("input", input_.name, input_.scale, input_.zero_point, model_.graph_input_bits(), true);
    tensors_.resize(nodes_.size());
    for (size_t i = 0; i < nodes_.size(); ++i) {
      const IntegerNode& n = nodes_[i];
      const Tensor& x = tensor(n.inputs[0]);
      const std::string name = "n" + std::to_string(i) + "_" + n.name();
      Tensor& y = tensors_[i];
      y = {name + "/codes", false, n.shape, n.scale, n.zero_point};
      if (n.op == Op::alias) {  // flatten, a fused ReLU, after the logits: the input's codes
        y = x;
        continue;
      }
      if (n.op == Op::conv || n.op == Op::linear) {
        const IntegerLinear& l = model_.layer(static_cast<size_t>(n.layer));
        const bool logits = static_cast<size_t>(n.layer) + 1 == model_.layer_count();
        const std::string sum = weighted(name, n, l, x, logits);
        if (logits) {
          logits_ = sum;
          break;
        }
        quantize_clamp(name, sum, y.name, l.output_scale, l.output_zero_point, l.output_min, l.output_max);
        y.flat = n.op == Op::linear;
      } else if (n.op == Op::max_pool) {
        pool_attributes(add_node("MaxPool", name, {spatial(x, name)}, y.name), n.window);
      } else if (n.op == Op::avg_pool) {
        avg_pool(name, n, x, y.name);
      } else if (n.op == Op::add) {
        // ONNX Runtime fuses DQ, DQ -> Add -> Q into QLinearAdd; more than two inputs are a chain.
        std::string sum;
        for (size_t k = 0; k < n.inputs.size(); ++k) {
          const Tensor& t = tensor(n.inputs[k]);
          if (t.flat != x.flat) throw Error(name + ": adds a flattened tensor to an image");
          const std::string real = dequantize(name, "input" + std::to_string(k), t.name, t.scale, t.zero_point);
          if (k == 0) {
            sum = real;
            continue;
          }
          const std::string out = name + "/sum" + std::to_string(k);
          add_node("Add", out, {sum, real}, out);
          sum = out;
        }
        quantize_clamp(name, sum, y.name, n.scale, n.zero_point, n.out_min, n.out_max);
      } else if (n.op == Op::relu) {
        add_node("Max", name, {x.name, scalar_u8(name + "/zero_point", n.zero_point)}, y.name);
      }
      if (n.op == Op::add || n.op == Op::relu) y.flat = x.flat, y.shape = x.shape;  // elementwise
    }
    if (logits_.empty()) throw Error("the graph ends without logits");
    add_value(graph_->add_output(), logits_, onnx::TensorProto::FLOAT, {model_.num_classes()});
  }

 private:
  // A tensor of uint8 codes in the ONNX graph: [batch, C, H, W] for `shape` [h, w, c], or, when
  // flat, [batch, features] with features in ONNX's (c, y, x) order of the image it came from.
  struct Tensor {
    std::string name;
    bool flat = false;
    kernels::ImageShape shape;  // of the image (before any flattening)
    float scale = 1.0f;
    int32_t zero_point = 0;
  };

  const Tensor& tensor(int t) const { return t == IntegerNode::kInput ? input_ : tensors_[static_cast<size_t>(t)]; }

  std::string spatial(const Tensor& x, const std::string& name) const {
    if (x.flat) throw Error(name + ": reads a flattened tensor as an image");
    return x.name;
  }

  void pool_attributes(onnx::NodeProto* n, const kernels::Window& w) {
    integers(n, "kernel_shape", {w.kernel_h, w.kernel_w});
    integers(n, "strides", {w.stride_h, w.stride_w});
    integers(n, "pads", {w.pad_h, w.pad_w, w.pad_h, w.pad_w});
  }

  // Average pooling as the engine computes it (kernels::avg_pool): the window's sum S of
  // x - zero point, times 2^L (L = sum_shift), requantized by M_d * 2^(e_d - 31) for its divisor
  // d, i.e. rounded twice:
  //   t = round_half_up(S * M_d * 2^(e_d - 31 + k_d + L)),  y = round_half_away(t / 2^k_d),  k_d = max(-e_d, 0).
  // ONNX Runtime's QLinearAveragePool (what DQ -> AveragePool -> Q becomes) rounds once, in float
  // and half to even. With L = 0 (files from before the shift) the first rounding moved about one
  // output in eight by one code (docs/onnx.md); with L = 16 they differ only near halves. So the
  // pool is plain ONNX ops that give the engine's arithmetic exactly: AveragePool in float gives
  // S / d, times d rounded S exactly (S < 2^22); the rest in double, where S * M_d is exact (and
  // 2^L only moves the exponent). Constants are per output position where d varies
  // (count_include_pad off at the borders).
  void avg_pool(const std::string& name, const IntegerNode& n, const Tensor& x, const std::string& out) {
    const kernels::Window& w = n.window;
    const int64_t oh = n.shape.h, ow = n.shape.w;
    std::vector<float> divisor;
    std::vector<double> multiplier, unshift;
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox) {
        const int64_t y0 = oy * w.stride_h - w.pad_h, x0 = ox * w.stride_w - w.pad_w;
        const int64_t inside = (std::min(y0 + w.kernel_h, x.shape.h) - std::max<int64_t>(y0, 0)) *
                               (std::min(x0 + w.kernel_w, x.shape.w) - std::max<int64_t>(x0, 0));
        const int64_t d = n.count_include_pad ? w.kernel_h * w.kernel_w : inside;
        const int32_t e = n.shift[static_cast<size_t>(d - 1)], k = std::max(-e, 0);
        divisor.push_back(static_cast<float>(d));
        multiplier.push_back(
            std::ldexp(static_cast<double>(n.multiplier[static_cast<size_t>(d - 1)]), e - 31 + k + n.sum_shift));
        unshift.push_back(std::ldexp(1.0, -k));
      }
    const bool uniform = std::all_of(divisor.begin(), divisor.end(), [&](float d) { return d == divisor[0]; });
    if (uniform) divisor.resize(1), multiplier.resize(1), unshift.resize(1);
    const Shape dims = uniform ? Shape{} : Shape{1, oh, ow};
    const auto F = onnx::TensorProto::FLOAT, D = onnx::TensorProto::DOUBLE;
    auto scalar = [&](const std::string& what, double v) { return constant(name + "/" + what, D, {}, std::vector<double>{v}); };
    auto op = [&](const char* type, const std::string& what, std::vector<std::string> inputs) {
      add_node(type, name + "/" + what, inputs, name + "/" + what);
      return name + "/" + what;
    };
    integer(add_node("Cast", name + "/float", {spatial(x, name)}, name + "/float"), "to", F);
    std::string v = op("Sub", "centred", {name + "/float", constant(name + "/input_zero_point", F, {},
                                                                     std::vector<float>{static_cast<float>(x.zero_point)})});
    onnx::NodeProto* pool = add_node("AveragePool", name + "/pool", {v}, name + "/pool");
    pool_attributes(pool, w);
    integer(pool, "count_include_pad", n.count_include_pad ? 1 : 0);
    v = op("Mul", "times_divisor", {name + "/pool", constant(name + "/divisor", F, dims, divisor)});
    v = op("Round", "sum", {v});
    integer(add_node("Cast", name + "/sum_double", {v}, name + "/sum_double"), "to", D);
    v = op("Mul", "scaled", {name + "/sum_double", constant(name + "/multiplier", D, dims, multiplier)});
    v = op("Add", "half_up", {v, scalar("half", 0.5)});
    const std::string t = op("Floor", "t", {v});
    v = op("Mul", "divided", {op("Abs", "abs", {t}), constant(name + "/unshift", D, dims, unshift)});
    v = op("Floor", "magnitude", {op("Add", "half_away", {v, name + "/half"})});
    v = op("Mul", "r", {op("Sign", "sign", {t}), v});
    v = op("Add", "shifted", {v, scalar("output_zero_point", n.zero_point)});
    v = op("Clip", "clamp", {v, scalar("output_min", n.out_min), scalar("output_max", n.out_max)});
    integer(add_node("Cast", name, {v}, out), "to", onnx::TensorProto::UINT8);
  }

  // A conv or linear node on codes `x`: the float sum (the logits when `logits`, [batch, N]).
  std::string weighted(const std::string& name, const IntegerNode& n, const IntegerLinear& l, const Tensor& x,
                       bool logits) {
    const int64_t N = l.out_features, K = l.in_features;
    std::vector<uint8_t> engine(static_cast<size_t>(N * K));
    kernels::unpack_weights(l.kernel_weights(), engine.data());
    std::vector<uint8_t> codes(engine.size());
    if (n.op == Op::conv) {
      // The engine's columns are (ky, kx, c) (NHWC im2col rows); ONNX's weights [N, C, kh, kw].
      const int64_t C = x.shape.c, kh = n.window.kernel_h, kw = n.window.kernel_w;
      for (int64_t o = 0; o < N; ++o)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t a = 0; a < kh * kw; ++a) codes[(o * C + c) * kh * kw + a] = engine[o * K + a * C + c];
      const std::string input = dequantize(name, "input", spatial(x, name), x.scale, x.zero_point);
      const Weights w = weights(name, l, std::move(codes), {N, C, kh, kw});
      const std::string sum = logits ? name + "/conv" : name + "/sum";
      onnx::NodeProto* conv = add_node("Conv", name + "/conv", {input, w.weight, w.bias}, sum);
      integers(conv, "kernel_shape", {kh, kw});
      integers(conv, "strides", {n.window.stride_h, n.window.stride_w});
      integers(conv, "pads", {n.window.pad_h, n.window.pad_w, n.window.pad_h, n.window.pad_w});
      if (!logits) return sum;
      integer(add_node("Flatten", "logits", {sum}, "logits"), "axis", 1);  // [batch, N, 1, 1] -> [batch, N]
      return "logits";
    }
    // Linear: the engine reads the image's codes in (y, x, c) order, ONNX's Flatten gives (c, y, x).
    const int64_t area = x.shape.h * x.shape.w, C = x.shape.c;
    if (area * C != K) throw Error(name + ": reads " + std::to_string(area * C) + " codes, its layer takes " +
                                   std::to_string(K));
    for (int64_t o = 0; o < N; ++o)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t a = 0; a < area; ++a) codes[o * K + c * area + a] = engine[o * K + a * C + c];
    std::string flat = x.name;
    if (!x.flat) {
      flat = name + "/flat";
      integer(add_node("Flatten", flat, {x.name}, flat), "axis", 1);
    }
    const std::string input = dequantize(name, "input", flat, x.scale, x.zero_point);
    const Weights w = weights(name, l, std::move(codes), {N, K});
    const std::string sum = logits ? "logits" : name + "/sum";
    integer(add_node("Gemm", name + "/gemm", {input, w.weight, w.bias}, sum), "transB", 1);
    return sum;
  }

  const std::vector<IntegerNode>& nodes_;
  Tensor input_;
  std::vector<Tensor> tensors_;
  std::string logits_;
};

}  // namespace

// The QDQ graph of a CNN .lbq (its metadata properties are the caller's).
onnx::ModelProto qdq_graph_model(const QuantizedModel& model) {
  onnx::ModelProto proto = onnx_writer::new_model("lowbit_qdq_cnn");
  QdqGraphExporter(model, proto).run();
  return proto;
}

}  // namespace lowbit
