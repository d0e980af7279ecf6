// import_onnx on graphs built here with ONNX's protobuf classes (the mappings computed by hand, each
// kind of bad file refused with one line naming the file and the node), and export_onnx round trips.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_fixtures.h"
#include "lowbit/error.h"
#include "lowbit/model.h"
#include "lowbit/model_file.h"
#include "lowbit/onnx.h"
#include "ort_fixtures.h"

namespace lowbit {
namespace {

std::string temp_path(const std::string& name) {
  std::filesystem::create_directories(LOWBIT_TEST_TMP "/onnx");
  return LOWBIT_TEST_TMP "/onnx/" + name;
}

onnx::TensorProto tensor(const std::string& name, std::vector<int64_t> dims, const std::vector<float>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  return t;
}

onnx::TensorProto int_tensor(const std::string& name, const std::vector<int64_t>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT64);
  t.add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) t.add_int64_data(v);
  return t;
}

// A model with one float input [batch, dims...] named "x" and one output named `output`.
struct Builder {
  onnx::ModelProto model;
  onnx::GraphProto* graph;
  explicit Builder(std::vector<int64_t> dims, int opset = 13) {
    model.set_ir_version(7);
    model.set_producer_name("onnx_import_test");
    model.add_opset_import()->set_version(opset);
    graph = model.mutable_graph();
    graph->set_name("test");
    auto* input = graph->add_input();
    input->set_name("x");
    auto* type = input->mutable_type()->mutable_tensor_type();
    type->set_elem_type(onnx::TensorProto::FLOAT);
    type->mutable_shape()->add_dim()->set_dim_param("batch");
    for (int64_t d : dims) type->mutable_shape()->add_dim()->set_dim_value(d);
  }
  onnx::NodeProto* node(const std::string& op, std::vector<std::string> inputs, const std::string& output) {
    auto* n = graph->add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + output);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(output);
    return n;
  }
  void initializer(const onnx::TensorProto& t) { *graph->add_initializer() = t; }
  void output(const std::string& name) {
    auto* o = graph->add_output();
    o->set_name(name);
    o->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    o->mutable_type()->mutable_tensor_type()->mutable_shape();
  }
  std::string save(const std::string& name) const {
    const std::string path = temp_path(name);
    std::ofstream(path, std::ios::binary) << model.SerializeAsString();
    return path;
  }
};

void set_ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> values) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}
void set_int(onnx::NodeProto* n, const std::string& name, int64_t value) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}
void set_float(onnx::NodeProto* n, const std::string& name, float value) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
}

std::string import_error(const std::string& path, const OnnxImportOptions& options = {}) {
  try {
    import_onnx(path, options);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::vector<float> log_probabilities(const Model& model, const Tensor& x) {
  Activations a;
  const Tensor& y = model.forward(x, a);
  return {y.values().begin(), y.values().end()};
}

std::vector<float> log_softmax(std::vector<float> row) {
  float m = row[0];
  for (float v : row) m = std::max(m, v);
  double sum = 0;
  for (float v : row) sum += std::exp(v - m);
  for (float& v : row) v = v - m - static_cast<float>(std::log(sum));
  return row;
}

// Gemm with transB = 0, alpha and beta, after a Reshape of a constant shape: y = alpha x B + beta C.
TEST(OnnxImport, GemmReshapeComputesAlphaXBPlusBetaC) {
  Builder b({1, 2, 2});
  b.initializer(int_tensor("shape", {-1, 4}));
  b.initializer(tensor("B", {4, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  b.initializer(tensor("C", {3}, {0.5f, -1, 2}));
  b.node("Reshape", {"x", "shape"}, "flat");
  auto* gemm = b.node("Gemm", {"flat", "B", "C"}, "y");
  set_float(gemm, "alpha", 0.5f);
  set_float(gemm, "beta", 2.0f);
  b.output("y");
  OnnxImportOptions options;
  options.dataset = "mnist";
  const Model model = import_onnx(b.save("gemm.onnx"), options);
  ASSERT_EQ(model.node_count(), 2u);  // the Reshape before a Linear layer is left out
  EXPECT_EQ(model.layer(0).kind(), "linear");
  EXPECT_EQ(model.layer(1).kind(), "log_softmax");
  EXPECT_EQ(model.metadata["dataset"], "mnist");
  EXPECT_FLOAT_EQ(model.metadata["mean"][0].get<float>(), 0.1307f);
  const Tensor x({1, 1, 2, 2}, {1, -1, 2, 0.5f});
  std::vector<float> logits(3);
  const float B[4][3] = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10, 11, 12}}, C[3] = {0.5f, -1, 2};
  for (int o = 0; o < 3; ++o) {
    float s = 0;
    for (int i = 0; i < 4; ++i) s += x[i] * B[i][o];
    logits[o] = 0.5f * s + 2.0f * C[o];
  }
  const std::vector<float> expected = log_softmax(logits), got = log_probabilities(model, x);
  for (int o = 0; o < 3; ++o) EXPECT_NEAR(got[o], expected[o], 1e-5f) << o;
}

// MatMul + Add of a constant is one Linear layer with that bias; Relu and a residual Add map.
TEST(OnnxImport, MatMulAddIsALinearLayerAndResidualAddsMap) {
  Builder b({2});
  b.initializer(tensor("W", {2, 2}, {1, 2, -3, 4}));
  b.initializer(tensor("bias", {2}, {0.25f, -0.5f}));
  b.node("MatMul", {"x", "W"}, "p");
  b.node("Add", {"p", "bias"}, "q");
  b.node("Relu", {"q"}, "r");
  b.node("Add", {"r", "x"}, "y");
  b.output("y");
  const Model model = import_onnx(b.save("matmul.onnx"));
  ASSERT_EQ(model.node_count(), 4u);
  EXPECT_EQ(model.layer(0).kind(), "linear");
  EXPECT_EQ(model.layer(2).kind(), "add");
  const Tensor x({1, 2}, {1, 2});
  // x W + bias = [1 - 6 + 0.25, 2 + 8 - 0.5] = [-4.75, 9.5]; relu -> [0, 9.5]; + x -> [1, 11.5].
  const std::vector<float> expected = log_softmax({1.0f, 11.5f}), got = log_probabilities(model, x);
  EXPECT_NEAR(got[0], expected[0], 1e-5f);
  EXPECT_NEAR(got[1], expected[1], 1e-5f);
}

// Conv (stride, pads, bias) -> BatchNormalization (ONNX momentum) -> MaxPool -> GlobalAveragePool.
TEST(OnnxImport, ConvBatchNormPoolsMapWithTheirSettings) {
  Builder b({1, 4, 4});
  std::vector<float> w(2 * 1 * 3 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.1f * static_cast<float>(i) - 0.8f;
  b.initializer(tensor("W", {2, 1, 3, 3}, w));
  b.initializer(tensor("Wb", {2}, {0.1f, -0.2f}));
  b.initializer(tensor("scale", {2}, {1.5f, 0.5f}));
  b.initializer(tensor("B", {2}, {0.0f, 1.0f}));
  b.initializer(tensor("mean", {2}, {0.2f, -0.1f}));
  b.initializer(tensor("var", {2}, {4.0f, 0.25f}));
  b.initializer(tensor("fcW", {2, 2}, {1, 0, 0, 1}));
  auto* conv = b.node("Conv", {"x", "W", "Wb"}, "c");
  set_ints(conv, "pads", {1, 1, 1, 1});
  set_ints(conv, "strides", {1, 1});
  auto* bn = b.node("BatchNormalization", {"c", "scale", "B", "mean", "var"}, "n");
  set_float(bn, "momentum", 0.8f);
  auto* pool = b.node("MaxPool", {"n"}, "m");
  set_ints(pool, "kernel_shape", {2, 2});
  set_ints(pool, "strides", {2, 2});
  b.node("GlobalAveragePool", {"m"}, "g");
  b.node("Flatten", {"g"}, "f");
  b.node("Gemm", {"f", "fcW"}, "y");
  b.output("y");
  const Model model = import_onnx(b.save("conv.onnx"));
  ASSERT_EQ(model.node_count(), 6u);  // conv, bn, max pool, global pool, linear, log_softmax
  const nlohmann::json nodes = model.description()["nodes"];
  EXPECT_EQ(nodes[0]["padding"], 1);  // the description writes equal pairs as one number
  EXPECT_EQ(nodes[2]["stride"], 2);
  EXPECT_NEAR(nodes[1]["momentum"].get<float>(), 0.2f, 1e-6f);
  // By hand: conv with zero padding, then (c - mean) / sqrt(var + eps) * scale + B, 2x2 max, mean.
  std::vector<float> image(16);
  for (int i = 0; i < 16; ++i) image[i] = std::sin(static_cast<float>(i));
  std::vector<float> logits(2);
  const float scale[2] = {1.5f, 0.5f}, shift[2] = {0, 1}, mean[2] = {0.2f, -0.1f}, var[2] = {4, 0.25f}, wb[2] = {0.1f, -0.2f};
  for (int o = 0; o < 2; ++o) {
    float conv_out[4][4];
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) {
        float s = wb[o];
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) {
            const int iy = y + ky - 1, ix = x + kx - 1;
            if (iy >= 0 && iy < 4 && ix >= 0 && ix < 4) s += image[iy * 4 + ix] * w[o * 9 + ky * 3 + kx];
          }
        conv_out[y][x] = (s - mean[o]) / std::sqrt(var[o] + 1e-5f) * scale[o] + shift[o];
      }
    float total = 0;
    for (int py = 0; py < 2; ++py)
      for (int px = 0; px < 2; ++px)
        total += std::max({conv_out[2 * py][2 * px], conv_out[2 * py][2 * px + 1], conv_out[2 * py + 1][2 * px],
                           conv_out[2 * py + 1][2 * px + 1]});
    logits[o] = total / 4;
  }
  const std::vector<float> expected = log_softmax(logits), got = log_probabilities(model, Tensor({1, 1, 4, 4}, image));
  EXPECT_NEAR(got[0], expected[0], 1e-4f);
  EXPECT_NEAR(got[1], expected[1], 1e-4f);
}

TEST(OnnxImport, MetadataPropertiesGiveThePreprocessingAndFlagsWin) {
  Builder b({3, 2, 2});
  b.initializer(tensor("B", {12, 2}, std::vector<float>(24, 0.1f)));
  b.node("Flatten", {"x"}, "f");
  b.node("Gemm", {"f", "B"}, "y");
  b.output("y");
  for (auto [key, value] : {std::pair{"lowbit.dataset", "cifar10"}, {"lowbit.std", "0.5, 0.25,0.125"}}) {
    auto* p = b.model.add_metadata_props();
    p->set_key(key);
    p->set_value(value);
  }
  const std::string path = b.save("metadata.onnx");
  const Model model = import_onnx(path);
  EXPECT_EQ(model.metadata["dataset"], "cifar10");
  EXPECT_FLOAT_EQ(model.metadata["mean"][1].get<float>(), 0.4822f);  // the dataset's
  EXPECT_FLOAT_EQ(model.metadata["std"][2].get<float>(), 0.125f);     // the file's
  OnnxImportOptions options;
  options.std = {1, 1, 1};
  options.input_shape = {12};
  const Model flagged = import_onnx(path, options);
  EXPECT_FLOAT_EQ(flagged.metadata["std"][0].get<float>(), 1.0f);
  EXPECT_EQ(flagged.input_shape(), Shape({12}));
  options.input_shape = {13};
  EXPECT_NE(import_error(path, options).find("does not have the size of the ONNX input"), std::string::npos);
}

TEST(OnnxImport, RefusesUnsupportedNodesNamingThem) {
  Builder b({4});
  b.node("Sigmoid", {"x"}, "y");
  b.output("y");
  const std::string path = b.save("sigmoid.onnx");
  const std::string e = import_error(path);
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("node \"Sigmoid_y\" (Sigmoid): op type Sigmoid is not supported (supported: Gemm"), std::string::npos) << e;
}

TEST(OnnxImport, RefusesSettingsLowbitCannotRunExactly) {
  auto conv_model = [](int64_t kernel, auto edit) {
    Builder b({1, 4, 4});
    b.initializer(tensor("W", {1, 1, kernel, kernel}, std::vector<float>(kernel * kernel, 1.0f)));
    auto* conv = b.node("Conv", {"x", "W"}, "y");
    edit(conv);
    b.output("y");
    return b;
  };
  const std::string asymmetric = conv_model(3, [](onnx::NodeProto* n) { set_ints(n, "pads", {0, 0, 1, 1}); }).save("pads.onnx");
  EXPECT_NE(import_error(asymmetric).find("node \"Conv_y\" (Conv): asymmetric padding"), std::string::npos);
  const std::string dilated = conv_model(3, [](onnx::NodeProto* n) { set_ints(n, "dilations", {2, 2}); }).save("dilated.onnx");
  EXPECT_NE(import_error(dilated).find("dilations other than 1"), std::string::npos) << import_error(dilated);
  // A 5x5 kernel over a 4x4 input: the layer's own shape check, named by the node.
  const std::string too_big = conv_model(5, [](onnx::NodeProto*) {}).save("kernel.onnx");
  const std::string e = import_error(too_big);
  EXPECT_NE(e.find("node \"Conv_y\" (conv2d)"), std::string::npos) << e;
  EXPECT_NE(e.find("larger than the padded input"), std::string::npos) << e;
  Builder clip({4});
  clip.initializer(tensor("lo", {}, {0.0f}));
  clip.initializer(tensor("hi", {}, {6.0f}));
  clip.node("Clip", {"x", "lo", "hi"}, "y");
  clip.output("y");
  EXPECT_NE(import_error(clip.save("clip.onnx")).find("(Clip): only Clip(min 0, no max)"), std::string::npos);
}

TEST(OnnxImport, RefusesDamagedFilesWithOneLine) {
  Builder b({2});
  b.initializer(tensor("B", {2, 2}, {1, 2, 3, 4}));
  b.node("Gemm", {"x", "B"}, "y");
  b.output("y");
  const std::string bytes = b.model.SerializeAsString();
  for (size_t cut : {size_t{0}, size_t{1}, bytes.size() / 2, bytes.size() - 3}) {
    const std::string path = temp_path("cut" + std::to_string(cut) + ".onnx");
    std::ofstream(path, std::ios::binary) << bytes.substr(0, cut);
    const std::string e = import_error(path);
    EXPECT_EQ(e.rfind(path + ": ", 0), 0u) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  EXPECT_NE(import_error(temp_path("missing.onnx")).find("cannot open"), std::string::npos);

  Builder short_data = b;
  short_data.graph = short_data.model.mutable_graph();
  short_data.graph->mutable_initializer(0)->set_raw_data(std::string(12, '\0'));
  EXPECT_NE(import_error(short_data.save("short.onnx")).find("12 bytes of data for 4 elements"), std::string::npos);

  Builder huge = b;
  huge.graph = huge.model.mutable_graph();
  huge.graph->mutable_initializer(0)->set_dims(0, int64_t{1} << 40);
  const std::string e = import_error(huge.save("huge.onnx"));
  EXPECT_NE(e.find("more than 2^28 elements"), std::string::npos) << e;

  Builder old = b;
  old.model.mutable_opset_import(0)->set_version(9);
  EXPECT_NE(import_error(old.save("old.onnx")).find("opset 9 is not supported"), std::string::npos);

  Builder broken = b;  // the checker: a node reading a value nothing defines
  broken.graph = broken.model.mutable_graph();
  broken.graph->mutable_node(0)->set_input(0, "nowhere");
  const std::string checker = import_error(broken.save("checker.onnx"));
  EXPECT_NE(checker.find("ONNX checker: "), std::string::npos) << checker;
  EXPECT_EQ(checker.find('\n'), std::string::npos) << checker;
}

// A preset with every parameter and batch-norm statistic drawn at random, so that nothing
// left at its initial value could hide a mapping error.
Model random_preset(const std::string& name, const Shape& input_shape, uint64_t seed) {
  Model model = Model::from_description(preset_description(name, input_shape, 10));
  model.init(seed);
  uint64_t state = seed;
  auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<float>((state >> 40) & 0xffff) / 65536.0f;
  };
  for (Tensor* t : model.buffers())
    for (float& v : t->values()) v = v == 0 ? next() - 0.5f : 0.5f + next();  // means, then variances
  model.metadata = {{"dataset", "cifar10"}, {"mean", {0.5f, 0.25f, 0.125f}}, {"std", {0.2f, 0.3f, 0.4f}}};
  return model;
}

Tensor random_images(const Shape& input_shape, int64_t count, uint64_t seed) {
  Shape shape = {count};
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  Tensor x(shape);
  uint64_t state = seed;
  for (float& v : x.values()) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    v = static_cast<float>((state >> 40) & 0xffff) / 32768.0f - 1.0f;
  }
  return x;
}

// export then import gives the same graph, parameters and outputs, bit for bit.
TEST(OnnxExport, RoundTripsEveryPresetExactly) {
  for (const auto& [name, shape] : {std::pair<std::string, Shape>{"fc_nn", {1, 28, 28}}, {"cifar_small", {3, 32, 32}},
                                     {"resnet20", {3, 32, 32}}}) {
    const Model model = random_preset(name, shape, 7);
    const std::string path = temp_path(name + "_export.onnx");
    export_onnx(model, path);
    const Model back = import_onnx(path);
    ASSERT_EQ(back.node_count(), model.node_count()) << name;
    for (size_t i = 0; i < model.node_count(); ++i) {
      EXPECT_EQ(back.layer(i).kind(), model.layer(i).kind()) << name << " node " << i;
      EXPECT_EQ(back.node_inputs(i), model.node_inputs(i)) << name << " node " << i;
    }
    EXPECT_EQ(back.metadata["mean"], model.metadata["mean"]);
    EXPECT_EQ(back.metadata["dataset"], "cifar10");
    const Tensor x = random_images(shape, 3, 11);
    EXPECT_EQ(log_probabilities(back, x), log_probabilities(model, x)) << name;
  }
}

// ONNX Runtime (npm onnxruntime-node, which setup installs) runs the exported graphs and gives
// lowbit's float outputs; skipped where node or the package is missing.
TEST(OnnxExport, OnnxRuntimeAgreesWithLowbitsFloatEngine) {
  const std::string modules = testing_ort::ort_node_modules();
  if (modules.empty())
    GTEST_SKIP() << "node or the npm package onnxruntime-node is not installed (scripts/setup.sh installs them)";
  for (const auto& [name, shape] : {std::pair<std::string, Shape>{"fc_nn", {1, 28, 28}}, {"cifar_small", {3, 32, 32}},
                                     {"resnet20", {3, 32, 32}}}) {
    const Model model = random_preset(name, shape, 3);
    const std::string base = temp_path(name + "_ort");
    export_onnx(model, base + ".onnx");
    const int64_t count = 64;
    const Tensor x = random_images(shape, count, 5);
    const std::vector<float> expected = log_probabilities(model, x);
    std::ofstream(base + ".in", std::ios::binary).write(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float));
    std::ofstream(base + ".out", std::ios::binary)
        .write(reinterpret_cast<const char*>(expected.data()), static_cast<std::streamsize>(expected.size() * sizeof(float)));
    std::string shape_text;
    for (int64_t d : shape) shape_text += (shape_text.empty() ? "" : ",") + std::to_string(d);
    const std::string command = "NODE_PATH=" + modules + " ORT_INPUT_SHAPE=" + shape_text + " node " +
                                LOWBIT_TEST_SOURCE "/onnx/ort_compare.js " + base + ".onnx " + base + ".in " + base +
                                ".out " + std::to_string(count) + " 1e-4";
    EXPECT_EQ(std::system(command.c_str()), 0) << name << ": " << command;
  }
}

// The command: `lowbit import` writes a loadable .lbm or nothing; other commands take .onnx too.
TEST(OnnxImportCli, ImportWritesAModelFileOrNothing) {
  using testing_cli::run_cli;
  const std::string dir = temp_path("cli");
  std::filesystem::create_directories(dir);
  Builder b({1, 28, 28});
  b.initializer(tensor("B", {10, 784}, std::vector<float>(7840, 0.01f)));
  b.node("Flatten", {"x"}, "f");
  auto* gemm = b.node("Gemm", {"f", "B"}, "y");
  set_int(gemm, "transB", 1);
  b.output("y");
  const std::string onnx_path = b.save("cli/mlp.onnx");
  const testing_cli::CliRun ok = run_cli(dir, "import " + onnx_path + " --out " + dir + "/mlp.lbm --dataset mnist");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("2 nodes, 7850 parameters, input [1, 28, 28], for mnist"), std::string::npos) << ok.out;
  EXPECT_EQ(load_model(dir + "/mlp.lbm").metadata["dataset"], "mnist");

  // export writes the preprocessing into the ONNX file, so importing it back needs no flags.
  const testing_cli::CliRun exported = run_cli(dir, "export " + dir + "/mlp.lbm --out " + dir + "/again.onnx");
  EXPECT_EQ(exported.exit_code, 0) << exported.err;
  const testing_cli::CliRun again = run_cli(dir, "import " + dir + "/again.onnx --out " + dir + "/again.lbm");
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("for mnist"), std::string::npos) << again.out;
  testing_cli::expect_clean_failure(run_cli(dir, "export " + dir + "/junk.lbm --out " + dir + "/x.onnx"), dir + "/junk.lbm");

  std::ofstream(dir + "/junk.onnx", std::ios::binary) << "not a model at all";
  const testing_cli::CliRun bad = run_cli(dir, "import " + dir + "/junk.onnx --out " + dir + "/junk.lbm");
  testing_cli::expect_clean_failure(bad, dir + "/junk.onnx: not an ONNX model");
  EXPECT_FALSE(std::filesystem::exists(dir + "/junk.lbm"));

  // Without a dataset in the file or on the command line, nothing says how to normalize inputs.
  const testing_cli::CliRun unknown = run_cli(dir, "eval --model " + onnx_path);
  testing_cli::expect_clean_failure(unknown, "says nothing of its inputs");
  const testing_cli::CliRun shape = run_cli(dir, "import " + onnx_path + " --out " + dir + "/x.lbm --input-shape 3,28,28");
  testing_cli::expect_clean_failure(shape, "does not have the size of the ONNX input");
}

}  // namespace
}  // namespace lowbit
