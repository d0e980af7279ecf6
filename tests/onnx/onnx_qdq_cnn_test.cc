// QDQ export of quantized CNNs (export_onnx of a graph .lbq): the graph holds the engine's conv
// weights in ONNX's layout, and ONNX Runtime runs the exported graph to the engine's predictions:
// tiny graphs of every integer operator on random images, and cifar_small on CIFAR-10 (the
// agreement figures of docs/onnx.md).
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "cli_fixtures.h"
#include "cnn_fixtures.h"
#include "kernels/qlinear.h"
#include "lowbit/dataset.h"
#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/model.h"
#include "lowbit/model_file.h"
#include "lowbit/onnx.h"
#include "lowbit/quantize.h"
#include "lowbit/quantized_model.h"
#include "lowbit/train.h"
#include "ort_fixtures.h"
#include "quant/integer_graph.h"
#include "quant/integer_linear.h"
#include "kernels/integer_ops.h"

namespace lowbit {
namespace {

using testing_models::node;
using testing_ort::argmax_rows;
using testing_ort::run_ort;

std::string temp_path(const std::string& name) {
  std::filesystem::create_directories(LOWBIT_TEST_TMP "/onnx_qdq_cnn");
  return LOWBIT_TEST_TMP "/onnx_qdq_cnn/" + name;
}

// Every integer operator the residual fixture lacks: padded and strided max and average pooling
// (count_include_pad off), a ReLU fused into an average pool, a ReLU on codes after a max pool, a
// 1x1 conv, flatten of an image into a linear layer, and a global max pool into a conv as logits.
nlohmann::json zoo_description() {
  auto conv = [](int64_t out, int64_t kernel, int64_t stride, int64_t pad) {
    return nlohmann::json{{"out_channels", out}, {"kernel", kernel}, {"stride", stride}, {"padding", pad}};
  };
  nlohmann::json nodes = nlohmann::json::array({
      node("c1", "conv2d", {"input"}, conv(5, 3, 1, 1)),
      node("bn1", "batch_norm", {"c1"}),
      node("r1", "relu", {"bn1"}),
      node("mp", "max_pool2d", {"r1"}, {{"kernel", 3}, {"stride", 2}, {"padding", 1}}),
      node("c2", "conv2d", {"mp"}, conv(6, 1, 1, 0)),
      node("ap", "avg_pool2d", {"c2"}, {{"kernel", 3}, {"stride", 1}, {"padding", 1}, {"count_include_pad", false}}),
      node("r2", "relu", {"ap"}),
      node("ap2", "avg_pool2d", {"r2"}, {{"kernel", 2}, {"stride", 1}}),
      node("mp2", "max_pool2d", {"ap2"}, {{"kernel", 2}}),
      node("r3", "relu", {"mp2"}),
      node("flat", "flatten", {"r3"}),
      node("fc", "linear", {"flat"}, {{"out_features", 4}}),
      node("out", "log_softmax", {"fc"}),
  });
  return {{"name", "zoo"}, {"input_shape", {3, 9, 9}}, {"nodes", nodes}};
}

// Global max pool straight into a 1x1 conv that gives the logits.
nlohmann::json conv_logits_description() {
  nlohmann::json nodes = nlohmann::json::array({
      node("c1", "conv2d", {"input"}, {{"out_channels", 4}, {"kernel", 3}, {"stride", 2}, {"padding", 0}}),
      node("r1", "relu", {"c1"}),
      node("gp", "global_max_pool", {"r1"}),
      node("head", "conv2d", {"gp"}, {{"out_channels", 3}, {"kernel", 1}}),
      node("flat", "flatten", {"head"}),
  });
  return {{"name", "conv_logits"}, {"input_shape", {1, 7, 7}}, {"nodes", nodes}};
}

struct Fixture {
  std::string name;
  nlohmann::json description;
};

std::vector<Fixture> fixtures() {
  return {{"residual", testing_models::residual_description(8, 4, 6)},
          {"zoo", zoo_description()},
          {"conv_logits", conv_logits_description()}};
}

ImageSet random_images(const Shape& shape, int64_t count, uint32_t seed) {
  ImageSet images;
  images.count = count;
  images.channels = shape[0];
  images.height = shape[1];
  images.width = shape[2];
  std::mt19937 gen(seed);
  for (int64_t i = 0; i < count * images.image_size(); ++i) images.pixels.push_back(static_cast<uint8_t>(gen()));
  for (int64_t i = 0; i < count; ++i) images.labels.push_back(static_cast<uint8_t>(gen() % 3));
  return images;
}

// A fixture's model, randomly initialized, with a normalization per channel and batch norm
// statistics away from the identity (so that folding them matters).
Model tiny_model(const Fixture& f) {
  Model model = Model::from_description(f.description);
  model.init(3);
  const int64_t channels = model.input_shape()[0];
  const std::vector<float> mean = {0.5f, 0.25f, 0.125f}, std = {0.2f, 0.3f, 0.4f};
  model.metadata = {{"dataset", "test"},
                    {"mean", std::vector<float>(mean.begin(), mean.begin() + channels)},
                    {"std", std::vector<float>(std.begin(), std.begin() + channels)}};
  std::mt19937 gen(11);
  std::uniform_real_distribution<float> shift(-0.3f, 0.3f), scale(0.5f, 2.0f);
  for (size_t i = 0; i < model.node_count(); ++i)
    if (auto* bn = dynamic_cast<BatchNorm2d*>(&model.layer(i))) {
      for (float& v : bn->running_mean().values()) v = shift(gen);
      for (float& v : bn->running_var().values()) v = scale(gen);
      for (float& v : bn->beta().values()) v = shift(gen);
    }
  return model;
}

QuantPlan plan(const Model& model, const Tensor& calibration, const std::string& method, int bits, bool per_channel) {
  QuantOptions options = preset_options(method, bits, bits);
  options.per_channel = per_channel;
  return plan_quantization(model, calibration, options);
}

QuantizedModel quantize(const Model& model, const Tensor& calibration, const std::string& method, int bits,
                        bool per_channel) {
  return QuantizedModel::build(model, plan(model, calibration, method, bits, per_channel));
}

// The same plan built with --bias-grid onnx (QuantOptions::onnx_bias_grid): each bias on the grid
// the export can give ONNX Runtime exactly. Where it and ORT still part, only the requantization
// arithmetic differs; where it and the default engine part, the bias's rounding.
QuantizedModel on_onnx_bias_grid(const Model& model, QuantPlan p) {
  p.options.onnx_bias_grid = true;
  return QuantizedModel::build(model, p);
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

// The engine's logits on `pixels` [count, ...], dequantized with the logit scale.
std::vector<float> engine_logits(const QuantizedModel& q, const std::vector<uint8_t>& pixels, int64_t count) {
  std::vector<int32_t> logits(static_cast<size_t>(count * q.num_classes()));
  q.logits(pixels.data(), count, logits.data());
  const float scale = q.layer(q.layer_count() - 1).output_scale;
  std::vector<float> real;
  for (int32_t v : logits) real.push_back(scale * static_cast<float>(v));
  return real;
}

TEST(OnnxQdqCnnExport, ConvWeightsAreTheEnginesInOnnxLayout) {
  for (const Fixture& f : fixtures()) {
    SCOPED_TRACE(f.name);
    const Model model = tiny_model(f);
    const ImageSet images = random_images(model.input_shape(), 64, 5);
    const Tensor calibration = normalized_images(images, model.metadata["mean"], model.metadata["std"], 0, 64);
    for (const bool per_channel : {false, true}) {
      const QuantizedModel q = quantize(model, calibration, "minmax", 4, per_channel);
      const std::string path = temp_path(f.name + "_layout.onnx");
      export_onnx(q, path);
      const onnx::ModelProto proto = read_proto(path);
      const auto& input = proto.graph().input(0).type().tensor_type();
      EXPECT_EQ(input.elem_type(), onnx::TensorProto::UINT8);
      ASSERT_EQ(input.shape().dim_size(), 4);
      for (int d = 0; d < 3; ++d) EXPECT_EQ(input.shape().dim(d + 1).dim_value(), model.input_shape()[d]);
      EXPECT_EQ(proto.graph().output(0).name(), "logits");
      std::map<std::string, int> ops;
      int residual_adds = 0;  // the engine's adds (other Add nodes belong to the pixel and pool arithmetic)
      for (const onnx::NodeProto& n : proto.graph().node()) {
        ++ops[n.op_type()];
        residual_adds += n.op_type() == "Add" && n.name().find("_add/sum") != std::string::npos;
      }
      const std::vector<IntegerNode>& nodes = q.graph_nodes();
      for (size_t i = 0; i < nodes.size(); ++i) {
        const IntegerNode& n = nodes[i];
        if (n.op != IntegerNode::Op::conv) continue;
        const IntegerLinear& l = q.layer(static_cast<size_t>(n.layer));
        const std::string name = "n" + std::to_string(i) + "_conv";
        const onnx::TensorProto& codes = initializer(proto, name + "/weight_codes");
        const int64_t N = l.out_features, kh = n.window.kernel_h, kw = n.window.kernel_w, C = l.in_features / (kh * kw);
        ASSERT_EQ(Shape(codes.dims().begin(), codes.dims().end()), Shape({N, C, kh, kw}));
        std::vector<uint8_t> engine(static_cast<size_t>(N * l.in_features));
        kernels::unpack_weights(l.kernel_weights(), engine.data());
        const int shift = std::min(l.acc_shift, 8 - l.kernel_weight_bits());
        const std::string& raw = codes.raw_data();
        for (int64_t o = 0; o < N; ++o)
          for (int64_t c = 0; c < C; ++c)
            for (int64_t y = 0; y < kh; ++y)
              for (int64_t x = 0; x < kw; ++x)
                ASSERT_EQ(static_cast<uint8_t>(raw[((o * C + c) * kh + y) * kw + x]),
                          static_cast<uint8_t>(engine[o * l.in_features + (y * kw + x) * C + c] << shift))
                    << name << " " << o << "," << c << "," << y << "," << x;
        EXPECT_EQ(initializer(proto, name + "/weight_scale").dims_size(), per_channel ? 1 : 0);
      }
      if (f.name == "residual") {
        EXPECT_EQ(ops["Conv"], 6);
        EXPECT_EQ(residual_adds, 2);
        EXPECT_EQ(ops["AveragePool"], 1);
        EXPECT_EQ(ops["Gemm"], 1);
      } else if (f.name == "zoo") {
        EXPECT_EQ(ops["MaxPool"], 2);
        EXPECT_EQ(ops["AveragePool"], 2);
        EXPECT_EQ(ops["Flatten"], 1);
      } else {
        EXPECT_EQ(ops["Conv"], 2);
        EXPECT_EQ(ops["MaxPool"], 1);
      }
    }
  }
}

// Agreement of the engine's and ONNX Runtime's predictions (percent), their accuracies, and how
// many logits lie within 1e-3 of the largest.
struct Agreement {
  double same = 0, acc_engine = 0, acc_ort = 0, close = 0;
  // Built with --bias-grid onnx: the engine and ORT on its export, the same class; the engine
  // with and without it, the same class.
  double grid_ort = 0, grid_engine = 0;
};

Agreement compare(const QuantizedModel& q, const QuantizedModel& q_grid, const std::string& modules,
                  const std::string& path, const std::vector<uint8_t>& pixels, const std::vector<uint8_t>& labels,
                  int64_t count) {
  export_onnx(q, path);
  const int64_t classes = q.num_classes();
  const std::vector<float> expected = engine_logits(q, pixels, count);
  const std::vector<float> got = run_ort(modules, path, pixels, count, q.input_shape(), classes);
  float largest = 0;
  for (float e : expected) largest = std::max(largest, std::fabs(e));
  Agreement a;
  for (size_t i = 0; i < expected.size(); ++i) a.close += std::fabs(got[i] - expected[i]) <= 1e-3f * largest;
  a.close *= 100.0 / static_cast<double>(expected.size());
  const std::vector<int> x = argmax_rows(expected, classes), y = argmax_rows(got, classes);
  const std::vector<int> z = argmax_rows(engine_logits(q_grid, pixels, count), classes);
  export_onnx(q_grid, path + ".grid.onnx");
  const std::vector<int> y_grid =
      argmax_rows(run_ort(modules, path + ".grid.onnx", pixels, count, q.input_shape(), classes), classes);
  for (int64_t i = 0; i < count; ++i) {
    a.grid_ort += z[i] == y_grid[i];
    a.grid_engine += z[i] == x[i];
    a.same += x[i] == y[i];
    a.acc_engine += x[i] == labels[i];
    a.acc_ort += y[i] == labels[i];
  }
  for (double* v : {&a.same, &a.acc_engine, &a.acc_ort, &a.grid_ort, &a.grid_engine}) *v *= 100.0 / count;
  return a;
}

// The tiny graphs at 8 bits (asserted) and 2..7 (reported), per tensor and per channel, on 2,000
// random images each.
TEST(OnnxQdqCnnExport, OnnxRuntimeRunsTinyGraphsToTheEnginesPredictions) {
  const std::string modules = testing_ort::ort_node_modules();
  if (modules.empty()) GTEST_SKIP() << "node or the npm package onnxruntime-node is not installed (scripts/setup.sh)";
  std::printf("  model        bits  weights      same class %%  logits within 1e-3 %%  grid~ORT %%  grid~engine %%\n");
  for (const Fixture& f : fixtures()) {
    SCOPED_TRACE(f.name);
    const Model model = tiny_model(f);
    const ImageSet calibration_images = random_images(model.input_shape(), 128, 5);
    const Tensor calibration =
        normalized_images(calibration_images, model.metadata["mean"], model.metadata["std"], 0, 128);
    const int64_t count = 2000;
    const ImageSet images = random_images(model.input_shape(), count, 17);
    for (int bits = 8; bits >= 2; --bits)
      for (const bool per_channel : {false, true}) {
        const QuantPlan p = plan(model, calibration, "minmax", bits, per_channel);
        const QuantizedModel q = QuantizedModel::build(model, p);
        const Agreement a = compare(q, on_onnx_bias_grid(model, p), modules,
                                    temp_path(f.name + "_" + std::to_string(bits) + ".onnx"), images.pixels,
                                    images.labels, count);
        std::printf("  %-12s %4d  %-11s %12.2f %21.2f %11.2f %13.2f\n", f.name.c_str(), bits,
                    per_channel ? "per channel" : "per tensor", a.same, a.close, a.grid_ort, a.grid_engine);
        // With --bias-grid onnx the two differ only where a requantization lands within float
        // rounding of a half step (100.00 % on 2,000 images at every width when measured). The
        // default bias moves more: the random residual graph on random pixels amplifies a code
        // off by one into its logits more than a trained one on real images (99.75 % at 8 bits).
        // Below 8 bits the tiny conv_logits head has exact ties between int32 logits that ORT's
        // float logits break otherwise (98.8 % at 3 bits): reported, not asserted.
        if (bits == 8) {
          EXPECT_GE(a.grid_ort, 99.9) << per_channel;
          EXPECT_GE(a.same, 99.5) << per_channel;
        }
      }
  }
}

// cifar_small on CIFAR-10 test images: trained here for one epoch on 2,000 training images (or
// LOWBIT_QDQ_CNN_MODEL, a trained float model), quantized with minmax at 8, 6, 4, 3 and 2 bits
// (W = A), run by the engine and by ONNX Runtime on LOWBIT_QDQ_TEST_IMAGES test images (default
// 1,000; docs/onnx.md: all 10,000), LOWBIT_QDQ_TEST_BITS the widths (default 8,6,4,3,2). 8 bits
// asserted for the model trained here, the rest reported.
TEST(OnnxQdqCnnExport, OnnxRuntimeAgreesWithTheEngineOnCifar10) {
  const std::string modules = testing_ort::ort_node_modules();
  if (modules.empty()) GTEST_SKIP() << "node or the npm package onnxruntime-node is not installed (scripts/setup.sh)";
  Dataset data;
  try {
    data = load_dataset("cifar10", {});
  } catch (const Error& e) {
    GTEST_SKIP() << "no CIFAR-10: " << e.what();
  }
  int64_t count = 1000;
  if (const char* n = std::getenv("LOWBIT_QDQ_TEST_IMAGES")) count = std::atoll(n);
  count = std::min(count, data.test.count);
  Model model;
  const char* file = std::getenv("LOWBIT_QDQ_CNN_MODEL");
  if (file) {
    model = load_model(file);
  } else {
    model = Model::from_description(preset_description("cifar_small", {3, 32, 32}, 10));
    model.init(1);
    model.metadata = {{"dataset", data.name}, {"mean", data.mean}, {"std", data.std}};
    const int64_t train_count = std::min<int64_t>(2000, data.train.count);
    TrainOptions options;
    options.epochs = 1;
    options.progress = false;
    options.seed = 1;
    train(model, normalized_images(data.train, data.mean, data.std, 0, train_count),
          std::span<const uint8_t>(data.train.labels.data(), static_cast<size_t>(train_count)), options);
  }
  const Tensor calibration = normalized_images(data.train, data.mean, data.std, 0, 1024);
  std::printf("%s on %s, %lld test images, minmax W = A:\n  bits  weights      same class %%  lowbit acc  ORT acc  grid~ORT %%  grid~engine %%\n",
              file ? file : "cifar_small (1 epoch on 2,000 images)", data.name.c_str(), static_cast<long long>(count));
  std::vector<int> widths = {8, 6, 4, 3, 2};
  if (const char* list = std::getenv("LOWBIT_QDQ_TEST_BITS")) {  // e.g. "6,4": a part of the sweep
    widths.clear();
    for (const char* c = list; *c; ++c)
      if (*c >= '1' && *c <= '8') widths.push_back(*c - '0');
  }
  for (const int bits : widths)
    for (const bool per_channel : {false, true}) {
      const QuantPlan p = plan(model, calibration, "minmax", bits, per_channel);
      const QuantizedModel q = QuantizedModel::build(model, p);
      const Agreement a = compare(q, on_onnx_bias_grid(model, p), modules,
                                  temp_path("cifar_" + std::to_string(bits) + ".onnx"), data.test.pixels,
                                  data.test.labels, count);
      std::printf("  %4d  %-11s %12.2f %11.2f %8.2f %11.2f %13.2f\n", bits, per_channel ? "per channel" : "per tensor",
                  a.same, a.acc_engine, a.acc_ort, a.grid_ort, a.grid_engine);
      // With --bias-grid onnx the two part only where a requantization lands within float
      // rounding of a half step; the engine's default bias, 2^acc_shift finer than the int32 bias
      // ORT's fused QLinearConv adds, moves a few near-ties more. cs0.lbm (87.6 %) at 8 bits:
      // 99.95-99.97 % and 99.74 % of the 10,000 test images (docs/onnx.md). This model, trained
      // for one epoch (34 %), has its classes closer together, so the bounds below are looser.
      // A model given by LOWBIT_QDQ_CNN_MODEL is reported, not asserted (docs/onnx.md's runs).
      if (bits == 8 && !file) {
        EXPECT_GE(a.grid_ort, 99.0) << per_channel;
        EXPECT_GE(a.same, 98.5) << per_channel;
        EXPECT_LE(std::fabs(a.acc_engine - a.acc_ort), 0.5) << per_channel;
      }
    }
}

TEST(OnnxQdqCnnExport, CommandExportsACnn) {
  using testing_cli::run_cli;
  const std::string dir = temp_path("cli");
  std::filesystem::create_directories(dir);
  const Model model = tiny_model(fixtures()[0]);
  const ImageSet images = random_images(model.input_shape(), 32, 5);
  quantize(model, normalized_images(images, model.metadata["mean"], model.metadata["std"], 0, 32), "minmax", 8, true)
      .save(dir + "/resnet.lbq");
  const testing_cli::CliRun ok = run_cli(dir, "export " + dir + "/resnet.lbq --out " + dir + "/resnet.onnx");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("QDQ graph of 7 Conv/Linear layers (8-bit weights, 8-bit activations)"), std::string::npos)
      << ok.out;
  EXPECT_NE(ok.out.find("input \"input\" uint8 pixels [batch, 2, 8, 8]"), std::string::npos) << ok.out;
  EXPECT_EQ(read_proto(dir + "/resnet.onnx").graph().input(0).type().tensor_type().elem_type(),
            onnx::TensorProto::UINT8);
  // The default engine keeps biases finer than the export can carry at 8 bits, and says so;
  // --bias-grid onnx rounds each to a multiple of 2^(acc_shift - (8 - b)), which the export
  // carries exactly.
  EXPECT_NE(ok.out.find("note: "), std::string::npos) << ok.out;
  const Tensor calibration = normalized_images(images, model.metadata["mean"], model.metadata["std"], 0, 32);
  for (const int bits : {8, 4}) {
    const QuantizedModel exact = on_onnx_bias_grid(model, plan(model, calibration, "minmax", bits, true));
    for (size_t l = 0; l < exact.layer_count(); ++l) {
      const IntegerLinear& layer = exact.layer(l);
      const int coarse = layer.acc_shift - std::min(layer.acc_shift, 8 - bits);  // as the export rounds
      for (int32_t b : layer.bias) EXPECT_EQ(b % (1 << coarse), 0) << "layer " << l << " bias " << b;
    }
    exact.save(dir + "/exact.lbq");
    const testing_cli::CliRun run = run_cli(dir, "export " + dir + "/exact.lbq --out " + dir + "/exact.onnx");
    EXPECT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(run.out.find("note: "), std::string::npos) << run.out;
  }
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

// [count, c, h, w] -> [count, h, w, c]
std::vector<uint8_t> nchw_to_nhwc(const std::vector<uint8_t>& x, int64_t count, const kernels::ImageShape& s) {
  std::vector<uint8_t> y(x.size());
  for (int64_t n = 0; n < count; ++n)
    for (int64_t c = 0; c < s.c; ++c)
      for (int64_t p = 0; p < s.h * s.w; ++p) y[(n * s.h * s.w + p) * s.c + c] = x[(n * s.c + c) * s.h * s.w + p];
  return y;
}

// Node by node: ONNX Runtime's output codes of each integer node against the engine's operator
// applied to ONNX Runtime's own input codes of that node (so that each op is checked alone).
TEST(OnnxQdqCnnExport, EachNodeComputesTheEnginesCodes) {
  const std::string modules = testing_ort::ort_node_modules();
  if (modules.empty()) GTEST_SKIP() << "node or the npm package onnxruntime-node is not installed (scripts/setup.sh)";
  // The fixtures at 8 and 3 bits (at 3 without the normalization in the metadata: the pixel table
  // by Gather), and LOWBIT_QDQ_NODES_MODEL, a .lbq, when given (reported, for a model that parts).
  struct Case {
    std::string name;
    int bits;
    QuantizedModel q;
  };
  std::vector<Case> cases;
  for (const Fixture& f : fixtures()) {
    const Model model = tiny_model(f);
    const ImageSet calibration_images = random_images(model.input_shape(), 128, 5);
    const Tensor calibration =
        normalized_images(calibration_images, model.metadata["mean"], model.metadata["std"], 0, 128);
    for (const int bits : {8, 3}) {
      cases.push_back({f.name, bits, quantize(model, calibration, "minmax", bits, false)});
      if (bits == 3) cases.back().q.metadata.erase("std");
    }
  }
  const char* extra = std::getenv("LOWBIT_QDQ_NODES_MODEL");
  if (extra) cases.push_back({extra, 0, QuantizedModel::load(extra)});
  for (Case& c : cases) {
    {
      const QuantizedModel& q = c.q;
      const Fixture f{c.name, {}};
      const int bits = c.bits;
      const int64_t count = 200;
      const ImageSet images = random_images(q.input_shape(), count, 17);
      struct {
        const Shape& input_shape() const { return shape; }
        Shape shape;
      } model{q.input_shape()};
      const std::string path = temp_path("nodes.onnx");
      export_onnx(q, path);
      const onnx::ModelProto proto = read_proto(path);
      const std::vector<IntegerNode>& nodes = q.graph_nodes();
      const kernels::ImageShape input_shape{model.input_shape()[1], model.input_shape()[2], model.input_shape()[0]};
      // ORT's codes of a tensor, NHWC.
      auto ort_codes = [&](const std::string& tensor, const kernels::ImageShape& s) {
        onnx::ModelProto cut = proto;
        cut.mutable_graph()->mutable_output(0)->set_name(tensor);
        auto* type = cut.mutable_graph()->mutable_output(0)->mutable_type()->mutable_tensor_type();
        type->set_elem_type(onnx::TensorProto::UINT8);
        type->clear_shape();
        const std::string p = path + "." + std::to_string(std::hash<std::string>()(tensor)) + ".onnx";
        std::ofstream(p, std::ios::binary) << cut.SerializeAsString();
        return nchw_to_nhwc(testing_ort::run_ort_as<uint8_t>(modules, p, images.pixels, count, model.input_shape(),
                                                             count * s.size()),
                            count, s);
      };
      std::vector<std::string> names(nodes.size());
      std::vector<std::vector<uint8_t>> codes(nodes.size());
      const std::vector<uint8_t> input = ort_codes("input_codes", input_shape);
      std::vector<uint8_t> table_codes(input.size());
      kernels::pixels_to_codes(images.pixels.data(), count, input_shape, q.input_table().data(), table_codes.data());
      EXPECT_EQ(input, table_codes) << f.name << " " << bits << " bits: the input codes";
      std::vector<int32_t> zero(nodes.size());
      for (size_t i = 0; i < nodes.size(); ++i) {
        const IntegerNode& n = nodes[i];
        auto in = [&](int t) -> const std::vector<uint8_t>& { return t < 0 ? input : codes[t]; };
        auto in_shape = [&](int t) { return t < 0 ? input_shape : nodes[t].shape; };
        auto in_zero = [&](int t) { return t < 0 ? q.graph_input_zero_point() : nodes[t].zero_point; };
        if (n.op == IntegerNode::Op::alias) {
          codes[i] = in(n.inputs[0]);
          continue;
        }
        if (n.op == IntegerNode::Op::conv && static_cast<size_t>(n.layer) + 1 == q.layer_count()) break;
        if (n.op == IntegerNode::Op::linear) break;  // flattened: checked by the logits
        codes[i] = ort_codes("n" + std::to_string(i) + "_" + n.name() + "/codes", n.shape);
        std::vector<uint8_t> expected(codes[i].size());
        const std::vector<uint8_t>& x = in(n.inputs[0]);
        switch (n.op) {
          case IntegerNode::Op::conv: {
            const IntegerLinear& l = q.layer(static_cast<size_t>(n.layer));
            std::vector<uint8_t> cols(static_cast<size_t>(count * n.shape.h * n.shape.w * l.in_features));
            kernels::im2col(x.data(), count, in_shape(n.inputs[0]), n.window, n.shape,
                            static_cast<uint8_t>(l.input_zero_point), cols.data());
            l.run(cols.data(), l.in_features, count * n.shape.h * n.shape.w, expected.data(), nullptr, n.shape.c);
            break;
          }
          case IntegerNode::Op::max_pool:
            kernels::max_pool(x.data(), count, in_shape(n.inputs[0]), n.window, n.shape, expected.data());
            break;
          case IntegerNode::Op::avg_pool: {
            const kernels::AvgPoolArgs a = avg_pool_args(n, in_zero(n.inputs[0]));
            kernels::avg_pool(x.data(), count, in_shape(n.inputs[0]), n.shape, a, expected.data());
            break;
          }
          case IntegerNode::Op::add: {
            std::vector<const uint8_t*> xs;
            std::vector<int32_t> zs;
            for (int t : n.inputs) xs.push_back(in(t).data()), zs.push_back(in_zero(t));
            kernels::AddArgs a;
            a.count = static_cast<int>(n.inputs.size());
            a.x = xs.data();
            a.zero_point = zs.data();
            a.multiplier = n.multiplier.data();
            a.shift = n.shift.data();
            a.out_multiplier = n.out_multiplier;
            a.out_shift = n.out_shift;
            a.out_zero_point = n.zero_point;
            a.out_min = n.out_min;
            a.out_max = n.out_max;
            kernels::add(a, count * n.shape.size(), expected.data());
            break;
          }
          case IntegerNode::Op::relu:
            kernels::relu(x.data(), count * n.shape.size(), static_cast<uint8_t>(n.zero_point), expected.data());
            break;
          default:
            break;
        }
        int64_t off = 0, worst = 0, above = 0;
        for (size_t k = 0; k < expected.size(); ++k) {
          off += expected[k] != codes[i][k];
          above += expected[k] > codes[i][k];
          worst = std::max<int64_t>(worst, std::abs(int{expected[k]} - int{codes[i][k]}));
        }
        std::printf("  %-12s %d bits node %2zu %-8s codes off: %6.3f %% (at most %lld; engine above %lld)\n", f.name.c_str(), bits, i,
                    n.name(), 100.0 * off / expected.size(), static_cast<long long>(worst), static_cast<long long>(above));
        // Pools, adds and ReLUs are the engine's arithmetic exactly; a conv's codes part by one
        // where ORT's coarser bias grid or its float requantization moves a value across a half step.
        if (extra && c.name == extra) {
          continue;  // reported only
        } else if (n.op == IntegerNode::Op::conv) {
          EXPECT_LE(worst, 1) << f.name << " node " << i;
          EXPECT_LE(100.0 * off / expected.size(), 2.0) << f.name << " node " << i;
        } else {
          EXPECT_EQ(off, 0) << f.name << " node " << i << " " << n.name();
        }
      }
    }
  }
}

}  // namespace
}  // namespace lowbit
