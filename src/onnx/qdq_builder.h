// The pieces both QDQ exporters (a chain of Linear layers, a CNN graph) build their ONNX graph from:
// constants, nodes, the raw-pixel input stage, a weighted layer's DequantizeLinear'd weights and
// bias, and the engine's requantize-and-clamp as QuantizeLinear -> Max/Min on the codes.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/quantized_model.h"
#include "onnx/onnx_writer.h"
#include "lowbit/tensor.h"

namespace lowbit {

struct IntegerLinear;

class QdqBuilder {
 protected:
  QdqBuilder(const QuantizedModel& model, onnx::GraphProto* graph) : model_(model), graph_(graph) {}

  // A graph input or output named `name`: [batch, ...per_sample] of `type_code`.
  void add_value(onnx::ValueInfoProto* v, const std::string& name, int type_code, const Shape& per_sample);

  // A constant; dims {} is a scalar.
  template <typename T>
  std::string constant(const std::string& name, int type_code, const Shape& dims, const std::vector<T>& values) {
    onnx::TensorProto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(type_code);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
    return name;
  }
  std::string scalar_float(const std::string& name, float v);
  std::string scalar_u8(const std::string& name, int32_t v);

  onnx::NodeProto* add_node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                            const std::string& output);
  static void integer(onnx::NodeProto* n, const char* name, int64_t value) { onnx_writer::integer(n, name, value); }
  static void integers(onnx::NodeProto* n, const char* name, const std::vector<int64_t>& values) {
    onnx_writer::integers(n, name, values);
  }

  // Raw uint8 pixels `x` -> the codes `codes` of the grid (scale, zero_point, bits) that the
  // engine's pixel table gives. x is [batch, features] (pixels [C, H, W] flattened) when !image,
  // [batch, C, H, W] when image. Preferably the engine's own arithmetic as ONNX ops (Cast -> Div 255
  // -> Sub mean -> Div std -> QuantizeLinear -> Min for codes under 8 bits), used when each of the
  // 256 values of every channel, computed so, gives the table's code; else the table, by Gather.
  void input_codes(const std::string& x, const std::string& codes, float scale, int32_t zero_point, int bits,
                   bool image);

  // A weighted layer's DequantizeLinear'd weights and bias for Gemm or Conv. `codes` are the
  // kernel's weight codes (l.kernel_weights(), sign-binary expanded) in the ONNX op's layout,
  // `dims` its weight shape ([N, K] for Gemm's transposed B, [N, C, kh, kw] for Conv); channel n
  // is axis 0. Returns {weight, bias} tensor names.
  struct Weights {
    std::string weight, bias;
  };
  Weights weights(const std::string& name, const IntegerLinear& l, std::vector<uint8_t> codes, const Shape& dims);

  // DequantizeLinear of uint8 codes x on (scale, zero_point) -> float tensor `name`/`what`.
  std::string dequantize(const std::string& name, const std::string& what, const std::string& x, float scale,
                         int32_t zero_point);

  // float `x` -> uint8 codes `out`: QuantizeLinear on (scale, zero_point), then the engine's clamp to
  // [lower, upper] as Max and Min on the codes (QuantizeLinear saturates to [0, 255] itself) — after
  // the QuantizeLinear so that ONNX Runtime still fuses DQ -> op -> Q. A ReLU is lower = zero point.
  void quantize_clamp(const std::string& name, const std::string& x, const std::string& out, float scale,
                      int32_t zero_point, int32_t lower, int32_t upper);

  const QuantizedModel& model_;
  onnx::GraphProto* graph_;

 private:
  std::vector<float> channel_values(const char* key) const;
  bool arithmetic_input_codes(const std::string& x, const std::string& codes, float scale, int32_t zero_point,
                              int bits, bool image);
  void table_input_codes(const std::string& x, const std::string& codes, bool image);
};

}  // namespace lowbit
