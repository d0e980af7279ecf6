// QDQ export of quantized models (export_onnx of a QuantizedModel): the graph holds the engine's
// integer constants exactly, `lowbit export` writes .lbq files as ONNX, and ONNX Runtime runs the
// exported graphs to the engine's predictions: tiny models of every kind of layer, and an FC_NN
// trained here on MNIST at 1..8 bits (the agreement figures of docs/onnx.md).
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "cli_fixtures.h"
#include "kernels/qlinear.h"
#include "lowbit/dataset.h"
#include "lowbit/error.h"
#include "lowbit/model.h"
#include "lowbit/model_file.h"
#include "lowbit/onnx.h"
#include "lowbit/quantize.h"
#include "lowbit/quantized_model.h"
#include "lowbit/train.h"
#include "ort_fixtures.h"
#include "quant/integer_linear.h"

namespace lowbit {
namespace {

std::string temp_path(const std::string& name) {
  std::filesystem::create_directories(LOWBIT_TEST_TMP "/onnx_qdq");
  return LOWBIT_TEST_TMP "/onnx_qdq/" + name;
}

// A tiny model's variant: input shape, bits, per-channel weights, sign-binary weights.
struct Variant {
  std::string name;
  Shape shape;
  int weight_bits, act_bits;
  bool per_channel, sign;
};

std::vector<Variant> tiny_variants() {
  return {{"w8a8_per_tensor", {1, 4, 4}, 8, 8, false, false},
          {"w4a4_per_channel_3ch", {3, 4, 4}, 4, 4, true, false},
          {"w2a3_per_tensor_2ch", {2, 4, 4}, 2, 3, false, false},
          {"w6a5_per_channel_flat", {48}, 6, 5, true, false},
          {"sign_a2_per_channel", {1, 4, 4}, 1, 2, true, true}};
}

ImageSet random_images(const Shape& shape, int64_t count, uint32_t seed) {
  ImageSet images;
  images.count = count;
  images.channels = shape.size() == 3 ? shape[0] : 1;
  images.height = shape.size() == 3 ? shape[1] : 1;
  images.width = shape.size() == 3 ? shape[2] : shape[0];
  std::mt19937 gen(seed);
  for (int64_t i = 0; i < count * images.image_size(); ++i) images.pixels.push_back(static_cast<uint8_t>(gen()));
  for (int64_t i = 0; i < count; ++i) images.labels.push_back(static_cast<uint8_t>(gen() % 3));
  return images;
}

// FC_NN with 3 classes on v.shape, random initialization, a different normalization per channel;
// quantized with minmax on random images (sign-binary: the 1-bit codes read as signs).
QuantizedModel quantize_tiny(const Variant& v) {
  Model model = Model::from_description(Model::fc_nn_description(v.shape, 3));
  model.init(5);
  const int64_t channels = v.shape.size() == 3 ? v.shape[0] : 1;
  const std::vector<float> mean = {0.5f, 0.25f, 0.125f}, std = {0.2f, 0.3f, 0.4f};
  model.metadata = {{"dataset", "test"},
                    {"mean", std::vector<float>(mean.begin(), mean.begin() + channels)},
                    {"std", std::vector<float>(std.begin(), std.begin() + channels)}};
  const ImageSet calibration = random_images(v.shape, 64, 9);
  QuantOptions options = preset_options("minmax", v.weight_bits, v.act_bits);
  options.per_channel = v.per_channel;
  QuantPlan plan = plan_quantization(
      model, normalized_images(calibration, model.metadata["mean"], model.metadata["std"], 0, 64), options);
  if (v.sign)
    for (QuantizedLinearPlan& layer : plan.layers)
      for (QuantParams& w : layer.weight) w = sign_params(w.scale);
  return QuantizedModel::build(model, plan);
}

onnx::ModelProto read_proto(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto proto;
  EXPECT_TRUE(proto.ParseFromIstream(&in)) << path;
  return proto;
}

const onnx::TensorProto& initializer(const onnx::ModelProto& proto, const std::string& name) {
  for (const onnx::TensorProto& t : proto.graph().initializer())
    if (t.name() == name) return t;
  throw Error("no initializer " + name);
}

const onnx::NodeProto* find_node(const onnx::ModelProto& proto, const std::string& name) {
  for (const onnx::NodeProto& n : proto.graph().node())
    if (n.name() == name) return &n;
  return nullptr;
}

template <typename T>
std::vector<T> values(const onnx::TensorProto& t) {
  std::vector<T> v(t.raw_data().size() / sizeof(T));
  std::memcpy(v.data(), t.raw_data().data(), v.size() * sizeof(T));
  return v;
}

Shape dims(const onnx::TensorProto& t) { return Shape(t.dims().begin(), t.dims().end()); }

int64_t axis_of(const onnx::NodeProto& n) {
  for (const auto& a : n.attribute())
    if (a.name() == "axis") return a.i();
  return -1;  // absent
}

TEST(OnnxQdqExport, GraphHoldsTheEnginesConstantsExactly) {
  for (const Variant& v : tiny_variants()) {
    SCOPED_TRACE(v.name);
    const QuantizedModel q = quantize_tiny(v);
    const std::string path = temp_path(v.name + ".onnx");
    export_onnx(q, path);
    const onnx::ModelProto proto = read_proto(path);
    const auto& input = proto.graph().input(0).type().tensor_type();
    EXPECT_EQ(input.elem_type(), onnx::TensorProto::UINT8);
    ASSERT_EQ(input.shape().dim_size(), static_cast<int>(v.shape.size()) + 1);
    for (size_t d = 0; d < v.shape.size(); ++d) EXPECT_EQ(input.shape().dim(d + 1).dim_value(), v.shape[d]);
    EXPECT_EQ(proto.graph().output(0).name(), "logits");
    // The first layer's codes come from the normalization as ONNX ops (the table's codes for
    // all 256 values: OnnxRuntimeComputesThePixelTable), and from the table itself, channel c's
    // pixels indexing its c-th 256 entries, when the metadata lacks the normalization.
    EXPECT_NE(find_node(proto, "input/normalized"), nullptr);
    EXPECT_EQ(values<float>(initializer(proto, "input/scale")), std::vector<float>{q.layer(0).input_scale});
    QuantizedModel no_metadata = quantize_tiny(v);
    no_metadata.metadata.erase("mean");
    export_onnx(no_metadata, path + ".table.onnx");
    const onnx::ModelProto table_proto = read_proto(path + ".table.onnx");
    EXPECT_EQ(find_node(table_proto, "input/normalized"), nullptr);
    EXPECT_EQ(values<uint8_t>(initializer(table_proto, "pixel_table")), q.input_table());
    const int64_t features = q.input_size(), channels = q.input_channels();
    if (channels > 1) {
      const std::vector<int32_t> offset = values<int32_t>(initializer(table_proto, "input/channel_offset"));
      ASSERT_EQ(static_cast<int64_t>(offset.size()), features);
      for (int64_t i = 0; i < features; ++i) EXPECT_EQ(offset[i], i / (features / channels) * 256) << i;
    }
    for (size_t l = 0; l < q.layer_count(); ++l) {
      SCOPED_TRACE("layer " + std::to_string(l));
      const IntegerLinear& layer = q.layer(l);
      const std::string name = "fc" + std::to_string(l + 1);
      const int64_t K = layer.in_features, N = layer.out_features;
      std::vector<uint8_t> stored(static_cast<size_t>(N * K));
      kernels::unpack_weights(layer.weights, stored.data());
      // Codes and zero points times 2^shift, scales over 2^shift: the engine's real weights, and
      // ONNX Runtime's int32 sum on the engine's accumulator grid (2^acc_shift finer).
      const int shift = std::min(layer.acc_shift, 8 - layer.kernel_weight_bits());
      const onnx::TensorProto& codes = initializer(proto, name + "/weight_codes");
      EXPECT_EQ(codes.data_type(), onnx::TensorProto::UINT8);
      EXPECT_EQ(dims(codes), Shape({N, K}));
      const std::vector<uint8_t> w = values<uint8_t>(codes);
      for (int64_t i = 0; i < N * K; ++i)  // sign-binary q stands for 2q - 1: code 2q, zero point 1
        ASSERT_EQ(w[i], (v.sign ? 2 * stored[i] : stored[i]) << shift) << i;
      const std::vector<uint8_t> zero = values<uint8_t>(initializer(proto, name + "/weight_zero_point"));
      const std::vector<float> scale = values<float>(initializer(proto, name + "/weight_scale"));
      ASSERT_EQ(static_cast<int64_t>(zero.size()), v.per_channel ? N : 1);
      ASSERT_EQ(static_cast<int64_t>(scale.size()), v.per_channel ? N : 1);
      for (size_t n = 0; n < zero.size(); ++n) {
        EXPECT_EQ(zero[n], layer.weight_zero_point[n] << shift);
        if (v.sign) EXPECT_EQ(zero[n], 1 << shift);
        EXPECT_EQ(scale[n], std::ldexp(layer.weight_scale[n], -shift));
        // Each stored weight dequantizes to the engine's own.
        for (int64_t k = 0; k < K; k += 7) {
          const int64_t i = static_cast<int64_t>(n) * K + k;
          const float engine = layer.weight_scale[n] * static_cast<float>(
                                   (v.sign ? 2 * stored[i] : stored[i]) - layer.weight_zero_point[n]);
          EXPECT_EQ(scale[n] * static_cast<float>(w[i] - zero[n]), engine) << n << "," << k;
        }
      }
      ASSERT_NE(find_node(proto, name + "/weight_dq"), nullptr);
      EXPECT_EQ(axis_of(*find_node(proto, name + "/weight_dq")), v.per_channel ? 0 : -1);
      // The bias on ONNX Runtime's grid s_x * s_w: lowbit's exactly when shift = acc_shift.
      const std::vector<int32_t> bias = values<int32_t>(initializer(proto, name + "/bias_codes"));
      ASSERT_EQ(bias.size(), layer.bias.size());
      for (size_t n = 0; n < bias.size(); ++n)
        EXPECT_NEAR(std::ldexp(double{bias[n]}, layer.acc_shift - shift), layer.bias[n],
                    shift == layer.acc_shift ? 0.0 : std::ldexp(1.0, layer.acc_shift - shift - 1));
      const std::vector<float> bias_scale = values<float>(initializer(proto, name + "/bias_scale"));
      for (size_t n = 0; n < bias_scale.size(); ++n)
        EXPECT_EQ(bias_scale[n], static_cast<float>(double{scale[n]} * double{layer.input_scale}));
      EXPECT_EQ(values<float>(initializer(proto, name + "/input_scale")), std::vector<float>{layer.input_scale});
      EXPECT_EQ(values<uint8_t>(initializer(proto, name + "/input_zero_point"))[0], layer.input_zero_point);
      if (l + 1 == q.layer_count()) continue;
      EXPECT_EQ(values<float>(initializer(proto, name + "/output_scale")), std::vector<float>{layer.output_scale});
      EXPECT_EQ(values<uint8_t>(initializer(proto, name + "/output_zero_point"))[0], layer.output_zero_point);
      // The engine's clamp of the output codes as Max and Min on them (QuantizeLinear saturates
      // to [0, 255] itself): ReLU is output_min = zero point.
      const onnx::NodeProto* max = find_node(proto, name + "/relu");
      const onnx::NodeProto* min = find_node(proto, name + "/clamp");
      EXPECT_EQ(max != nullptr, layer.output_min > 0);
      EXPECT_EQ(min != nullptr, layer.output_max < 255);
      if (max) EXPECT_EQ(values<uint8_t>(initializer(proto, name + "/output_min"))[0], layer.output_min);
      if (min) EXPECT_EQ(values<uint8_t>(initializer(proto, name + "/output_max"))[0], layer.output_max);
    }
  }
}

using testing_ort::argmax_rows;
using testing_ort::run_ort;
using testing_ort::run_ort_as;

// The engine's logits on `pixels`, dequantized with the logit scale.
std::vector<float> engine_logits(const QuantizedModel& q, const std::vector<uint8_t>& pixels, int64_t count) {
  std::vector<int32_t> logits(static_cast<size_t>(count * q.num_classes()));
  q.logits(pixels.data(), count, logits.data());
  const float scale = q.layer(q.layer_count() - 1).output_scale;
  std::vector<float> real;
  for (int32_t v : logits) real.push_back(scale * static_cast<float>(v));
  return real;
}

TEST(OnnxQdqExport, OnnxRuntimeRunsTinyModelsToTheEnginesLogits) {
  const std::string modules = testing_ort::ort_node_modules();
  if (modules.empty()) GTEST_SKIP() << "node or the npm package onnxruntime-node is not installed (scripts/setup.sh)";
  for (const Variant& v : tiny_variants()) {
    SCOPED_TRACE(v.name);
    const QuantizedModel q = quantize_tiny(v);
    const std::string path = temp_path(v.name + "_ort.onnx");
    export_onnx(q, path);
    const int64_t count = 1000, classes = q.num_classes();
    const ImageSet images = random_images(v.shape, count, 17);
    const std::vector<float> expected = engine_logits(q, images.pixels, count);
    const std::vector<float> got = run_ort(modules, path, images.pixels, count, v.shape, classes);
    // The two part where a requantization lands within float rounding of a half step (ORT
    // multiplies the exact int32 sum by a float scale and rounds half to even; the engine by a
    // fixed-point multiplier, half away from zero): a hidden code one step off. Beyond that the
    // logits differ by the engine's rounding to its logit grid and the bias's rounding to ORT's
    // grid where acc_shift needs more than the uint8 codes can hold (docs/onnx.md).
    float largest = 0;
    for (float e : expected) largest = std::max(largest, std::fabs(e));
    int64_t close = 0;
    float worst = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
      close += std::fabs(got[i] - expected[i]) <= 1e-3f * largest;
      worst = std::max(worst, std::fabs(got[i] - expected[i]) / largest);
    }
    const std::vector<int> a = argmax_rows(expected, classes), b = argmax_rows(got, classes);
    int64_t same = 0;
    for (int64_t i = 0; i < count; ++i) same += a[i] == b[i];
    std::printf("%-24s logits within 1e-3: %6.2f %% (largest difference %.1e), same class: %6.2f %%\n",
                v.name.c_str(), 100.0 * close / static_cast<double>(expected.size()), worst, 100.0 * same / count);
    EXPECT_GE(close, expected.size() * 95 / 100);
    EXPECT_GE(same, count * 98 / 100);
  }
}

// ONNX Runtime maps every value 0..255 of every channel to the first layer's input code exactly as
// the engine's pixel table, both as the normalization's ops and as the table's Gather: the graph
// cut to end at those codes, run on images that hold each value once per channel.
TEST(OnnxQdqExport, OnnxRuntimeComputesThePixelTable) {
  const std::string modules = testing_ort::ort_node_modules();
  if (modules.empty()) GTEST_SKIP() << "node or the npm package onnxruntime-node is not installed (scripts/setup.sh)";
  for (const Variant& v : tiny_variants())
    for (const bool table : {false, true}) {
      SCOPED_TRACE(v.name + (table ? " (table)" : " (normalization)"));
      QuantizedModel q = quantize_tiny(v);
      if (table) q.metadata.erase("std");
      const std::string path = temp_path(v.name + (table ? "_table" : "_norm") + "_codes.onnx");
      export_onnx(q, path);
      onnx::ModelProto proto = read_proto(path);
      proto.mutable_graph()->mutable_output(0)->set_name("fc1/input_codes");
      proto.mutable_graph()->mutable_output(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
          onnx::TensorProto::UINT8);
      std::ofstream(path, std::ios::binary) << proto.SerializeAsString();
      const int64_t features = q.input_size(), per_channel = features / q.input_channels();
      const int64_t count = (256 + per_channel - 1) / per_channel;
      std::vector<uint8_t> pixels(static_cast<size_t>(count * features));
      for (int64_t i = 0; i < count; ++i)
        for (int64_t f = 0; f < features; ++f) pixels[i * features + f] = static_cast<uint8_t>((i * per_channel + f % per_channel) % 256);
      const std::vector<uint8_t> codes = run_ort_as<uint8_t>(modules, path, pixels, count, v.shape, count * features);
      int64_t wrong = 0;
      for (int64_t i = 0; i < count * features; ++i)
        wrong += codes[i] != q.input_table()[(i % features) / per_channel * 256 + pixels[i]];
      EXPECT_EQ(wrong, 0);
    }
}

TEST(OnnxQdqExport, CommandExportsQuantizedModelsOrSaysWhy) {
  using testing_cli::run_cli;
  const std::string dir = temp_path("cli");
  std::filesystem::create_directories(dir);
  quantize_tiny(tiny_variants()[1]).save(dir + "/tiny.lbq");
  const testing_cli::CliRun ok = run_cli(dir, "export " + dir + "/tiny.lbq --out " + dir + "/tiny.onnx");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("QDQ graph of 3 Linear layers (4-bit weights, 4-bit activations)"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("input \"input\" uint8 pixels [batch, 3, 4, 4]"), std::string::npos) << ok.out;
  EXPECT_EQ(read_proto(dir + "/tiny.onnx").graph().input(0).type().tensor_type().elem_type(), onnx::TensorProto::UINT8);
  // A damaged .lbq is one line naming it, and no ONNX file is written.
  std::string bytes = testing_cli::slurp(dir + "/tiny.lbq");
  bytes[bytes.size() / 2] ^= 0x5a;
  std::ofstream(dir + "/bad.lbq", std::ios::binary) << bytes;
  testing_cli::expect_clean_failure(run_cli(dir, "export " + dir + "/bad.lbq --out " + dir + "/bad.onnx"),
                                    dir + "/bad.lbq");
  EXPECT_FALSE(std::filesystem::exists(dir + "/bad.onnx"));
  // An --out inside a file is refused before anything is written.
  testing_cli::expect_clean_failure(run_cli(dir, "export " + dir + "/tiny.lbq --out " + dir + "/tiny.lbq/x.onnx"),
                                    "--out");
}

// The MNIST check: an FC_NN trained here for one epoch on 10,000 training images, quantized at
// 8 bits and at 2..7 bits (minmax per tensor and per channel, and the `best` preset), run by the
// engine and by ONNX Runtime on test images. LOWBIT_QDQ_TEST_IMAGES sets how many (default 2,000),
// LOWBIT_QDQ_TEST_MODEL a trained float model to use instead (docs/onnx.md: the full 10,000).
TEST(OnnxQdqExport, OnnxRuntimeAgreesWithTheEngineOnMnist) {
  const std::string modules = testing_ort::ort_node_modules();
  if (modules.empty()) GTEST_SKIP() << "node or the npm package onnxruntime-node is not installed (scripts/setup.sh)";
  Dataset data;
  try {
    data = load_dataset("mnist", {});
  } catch (const Error& e) {
    GTEST_SKIP() << "no MNIST: " << e.what();
  }
  int64_t count = 2000;
  if (const char* n = std::getenv("LOWBIT_QDQ_TEST_IMAGES")) count = std::atoll(n);
  count = std::min(count, data.test.count);
  const Shape shape = {1, 28, 28};
  Model model;
  if (const char* file = std::getenv("LOWBIT_QDQ_TEST_MODEL")) {  // a trained FC_NN, for docs/onnx.md
    model = load_model(file);
  } else {
    model = Model::from_description(Model::fc_nn_description(shape, 10));
    model.init(1);
    model.metadata = {{"dataset", data.name}, {"mean", data.mean}, {"std", data.std}};
    const int64_t train_count = std::min<int64_t>(10000, data.train.count);
    TrainOptions options;
    options.epochs = 1;
    options.progress = false;
    options.seed = 1;
    train(model, normalized_images(data.train, data.mean, data.std, 0, train_count),
          std::span<const uint8_t>(data.train.labels.data(), static_cast<size_t>(train_count)), options);
  }
  const Tensor calibration = normalized_images(data.train, data.mean, data.std, 0, 512);
  const std::vector<uint8_t> pixels(data.test.pixels.begin(), data.test.pixels.begin() + count * 784);
  std::printf("%s, %lld test images; agree %% of the engine with ORT, and of the engine with ORT's bias grid\n"
              "(grid) with ORT and with the engine; bias grid 2^k coarser per layer:\n"
              "  bits method   agree %%  lowbit acc  ORT acc  grid~ORT %%  grid~engine %%  k\n",
              data.name.c_str(), static_cast<long long>(count));
  for (int bits = 8; bits >= 2; --bits)
    for (const char* method : {"minmax", "minmax_pc", "best"}) {
      const bool per_channel = std::string(method) == "minmax_pc";
      QuantOptions q_options = preset_options(per_channel ? "minmax" : method, bits, bits);
      if (per_channel) q_options.per_channel = true;
      QuantPlan plan = plan_quantization(model, calibration, q_options);
      const QuantizedModel q = QuantizedModel::build(model, plan);
      // The engine once more with each bias pre-rounded to the grid the export gives ONNX Runtime
      // (s_x * s_w / 2^shift): where it and ORT still part, only the requantization arithmetic
      // differs; where it and the engine part, the bias's rounding.
      for (size_t l = 0; l < plan.layers.size(); ++l) {
        const IntegerLinear& layer = q.layer(l);
        const int shift = std::min(layer.acc_shift, 8 - layer.kernel_weight_bits());
        for (int64_t n = 0; n < layer.out_features; ++n) {
          const double grid = std::ldexp(double{layer.weight_scale[n]} * double{layer.input_scale}, -shift);
          plan.layers[l].bias[n] = static_cast<float>(std::nearbyint(plan.layers[l].bias[n] / grid) * grid);
        }
      }
      const QuantizedModel q_grid = QuantizedModel::build(model, plan);
      const std::string path = temp_path("mnist_" + std::to_string(bits) + "_" + method + ".onnx");
      export_onnx(q, path);
      const std::vector<int> a = argmax_rows(engine_logits(q, pixels, count), 10);
      const std::vector<int> b = argmax_rows(run_ort(modules, path, pixels, count, shape, 10), 10);
      const std::vector<int> c = argmax_rows(engine_logits(q_grid, pixels, count), 10);
      int64_t same = 0, right_a = 0, right_b = 0, same_grid_ort = 0, same_grid_engine = 0;
      for (int64_t i = 0; i < count; ++i) {
        same += a[i] == b[i];
        same_grid_ort += c[i] == b[i];
        same_grid_engine += c[i] == a[i];
        right_a += a[i] == data.test.labels[i];
        right_b += b[i] == data.test.labels[i];
      }
      const double agree = 100.0 * same / count, acc_a = 100.0 * right_a / count, acc_b = 100.0 * right_b / count;
      // How much coarser than the engine's the bias grid ORT gets is, per layer: acc_shift
      // beyond what the uint8 weight codes can carry.
      std::string rounded;
      for (size_t l = 0; l < q.layer_count(); ++l) {
        const IntegerLinear& layer = q.layer(l);
        rounded += " " + std::to_string(layer.acc_shift - std::min(layer.acc_shift, 8 - layer.kernel_weight_bits()));
      }
      std::printf("  %d %-10s %8.2f %10.2f %8.2f %12.2f %12.2f  %s\n", bits, method, agree, acc_a, acc_b,
                  100.0 * same_grid_ort / count, 100.0 * same_grid_engine / count, rounded.c_str());
      // On this grid ORT and the engine agreed on every one of the 10,000 images at every width.
      EXPECT_GE(100.0 * same_grid_ort / count, 99.9) << bits << " " << method;
      if (bits == 8) {
        EXPECT_GE(agree, 99.9) << method;  // issue 13's targets
        EXPECT_LE(std::fabs(acc_a - acc_b), 0.05) << method;
      } else if (bits >= 3) {
        EXPECT_GE(agree, 97.0) << bits << " " << method;
      }
      // At 2 bits the coarser bias grid alone moved 12.8 % of the predictions of a model trained on
      // mnist-10k (2 epochs) while ORT matched the engine on that grid: reported, not asserted.
    }
}

}  // namespace
}  // namespace lowbit
