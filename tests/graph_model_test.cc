// Models as graphs: residual blocks end to end, the presets' sizes, descriptions that must fail
// with one clear line, model files with batch norm buffers, and CNN training that learns and is
// bit-identical on 1 and 2 threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/model.h"
#include "lowbit/model_file.h"
#include "lowbit/quantize.h"
#include "lowbit/train.h"
#include "util/container.h"
#include "cnn_fixtures.h"

namespace lowbit {
namespace {

using Json = nlohmann::json;
using testing_models::node;
using testing_models::residual_description;

Tensor random_tensor(const Shape& shape, std::mt19937_64& rng, float scale = 1.0f) {
  Tensor t(shape);
  for (float& v : t.values()) v = uniform_float(rng, -scale, scale);
  return t;
}

// The smallest |input| of any ReLU in the forward pass: central differences of step h are only
// valid when no ReLU input is within reach of the perturbation.
float closest_to_a_kink(const Model& model, const Activations& acts) {
  float closest = INFINITY;
  for (size_t i = 1; i < model.node_count(); ++i)
    if (model.layer(i).kind() == "relu")
      for (float z : acts.outputs[model.node_inputs(i)[0]].values()) closest = std::min(closest, std::fabs(z));
  return closest;
}

TEST(Graph, ResidualModelBackwardMatchesFiniteDifferencesInTraining) {
  const ForwardMode mode{true, 99};  // batch statistics, one fixed dropout mask
  // Small enough (2x4x4 images, 2 and 3 channels, 2 images) that some seed keeps every ReLU input
  // away from 0; the first such seed is always the same one.
  Model model = Model::from_description(residual_description(4, 2, 3));
  Tensor x;
  Activations acts;
  std::mt19937_64 rng;
  uint64_t seed = 0;
  for (seed = 1; seed < 200; ++seed) {
    model.init(seed);
    rng.seed(seed);
    for (Tensor* p : model.parameters())  // batch norm away from gamma 1 / beta 0
      if (p->rank() == 1)
        for (float& v : p->values()) v += uniform_float(rng, -0.3f, 0.3f);
    x = random_tensor({2, 2, 4, 4}, rng);
    model.forward(x, acts, mode);
    if (closest_to_a_kink(model, acts) > 5e-3f) break;
  }
  ASSERT_LT(seed, 200u);
  const Tensor& out = acts.outputs.back();
  const Tensor r = random_tensor(out.shape(), rng);
  std::vector<Tensor> grads = model.zero_gradients();
  model.backward(x, acts, r, grads);

  auto loss = [&] {
    Activations a;
    const Tensor& y = model.forward(x, a, mode);
    double sum = 0;
    for (int64_t i = 0; i < y.size(); ++i) sum += double{y[i]} * r[i];
    return sum;
  };
  const float h = 1e-3f;
  auto params = model.parameters();
  int checked = 0;
  for (size_t p = 0; p < params.size(); ++p)
    for (int64_t i = 0; i < params[p]->size(); ++i) {
      float& v = (*params[p])[i];
      const float keep = v;
      v = keep + h;
      const double up = loss();
      v = keep - h;
      const double down = loss();
      v = keep;
      const double numeric = (up - down) / (2 * h);
      EXPECT_NEAR(grads[p][i], numeric, 1e-2 * std::max(1.0, std::fabs(numeric)))
          << "parameter " << p << "[" << i << "]";
      ++checked;
    }
  EXPECT_GT(checked, 200);
}

TEST(Graph, ANodeReadTwiceGetsBothGradients) {
  // y = fc(x) + fc(x) through add(fc, fc): dLoss/dW is twice that of fc alone.
  Json d = {{"input_shape", {3}},
            {"nodes",
             {node("fc", "linear", {"input"}, {{"out_features", 2}}), node("sum", "add", {"fc", "fc"}),
              node("out", "log_softmax", {"sum"})}}};
  Model model = Model::from_description(d);
  model.init(1);
  std::mt19937_64 rng(2);
  const Tensor x = random_tensor({2, 3}, rng);
  Activations acts;
  model.forward(x, acts);
  const Tensor r = random_tensor({2, 2}, rng);
  std::vector<Tensor> grads = model.zero_gradients();
  model.backward(x, acts, r, grads);
  // Against the same model run by hand: log_softmax(2 z), dLoss/dz = 2 dLoss/d(2z).
  const Linear& fc = dynamic_cast<const Linear&>(model.layer(0));
  Tensor z, doubled, y, dy, dz;
  fc.forward(x, z);
  doubled = z;
  for (float& v : doubled.values()) v *= 2;
  LogSoftmax().forward(doubled, y);
  LogSoftmax().backward(doubled, y, r, &dy, {});
  dz = dy;
  for (float& v : dz.values()) v *= 2;
  std::vector<Tensor> expected = model.zero_gradients();
  fc.backward(x, z, dz, nullptr, expected);
  for (size_t p = 0; p < grads.size(); ++p)
    for (int64_t i = 0; i < grads[p].size(); ++i) EXPECT_NEAR(grads[p][i], expected[p][i], 1e-6);
}

TEST(Graph, DescriptionRoundTripsAndChainsKeepTheirOldForm) {
  const Model model = Model::from_description(residual_description());
  EXPECT_FALSE(model.is_chain());
  EXPECT_EQ(model.name(), "tiny_resnet");
  const Json again = Model::from_description(model.description()).description();
  EXPECT_EQ(again, model.description());
  EXPECT_TRUE(model.description().contains("nodes"));
  EXPECT_EQ(model.node_inputs(8), (std::vector<int>{7, 2}));  // a.add reads a.bn2 and stem_relu
  EXPECT_EQ(model.node_shape(17), (Shape{6, 3, 3}));          // b.add, halved by the stride

  const Model fc = Model::from_description(Model::fc_nn_description());
  EXPECT_TRUE(fc.is_chain());
  EXPECT_EQ(fc.description(),
            Json::parse(R"({"input_shape": [1, 28, 28], "layers": [{"kind": "linear", "out_features": 64},
              {"kind": "relu"}, {"kind": "linear", "out_features": 32}, {"kind": "relu"},
              {"kind": "linear", "out_features": 10}, {"kind": "log_softmax"}]})"));
  // A chain written as nodes without names or inputs is the same model as the layers form.
  Json as_nodes = Model::fc_nn_description();
  as_nodes["nodes"] = as_nodes["layers"];
  as_nodes.erase("layers");
  EXPECT_EQ(Model::from_description(as_nodes).description(), fc.description());
}

TEST(Presets, ParameterAndMultiplyAddCountsAreThePapers) {
  const Model resnet = Model::from_description(preset_description("resnet20", {3, 32, 32}, 10));
  EXPECT_EQ(resnet.parameter_count(), 272474);
  EXPECT_EQ(resnet.multiply_adds(), 40813184);  // 40.8M, conv and linear MACs as PyTorch counts
  EXPECT_EQ(resnet.output_shape(), (Shape{10}));
  int adds = 0, convs = 0;
  for (size_t i = 0; i < resnet.node_count(); ++i) {
    adds += resnet.layer(i).kind() == "add";
    convs += resnet.layer(i).kind() == "conv2d";
  }
  EXPECT_EQ(adds, 9);
  EXPECT_EQ(convs, 21);  // 19 3x3 (1 + 18) and 2 1x1 shortcuts

  const Model small = Model::from_description(preset_description("cifar_small", {3, 32, 32}, 10));
  EXPECT_EQ(small.parameter_count(), 288746);
  EXPECT_EQ(small.multiply_adds(), 17401088);  // 17.4M

  const Model fc = Model::from_description(preset_description("fc_nn", {1, 28, 28}, 10));
  EXPECT_EQ(fc.parameter_count(), 784 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10);
  EXPECT_EQ(fc.multiply_adds(), 784 * 64 + 64 * 32 + 32 * 10);

  // The CNN presets fit MNIST's 1x28x28 images too.
  EXPECT_EQ(Model::from_description(preset_description("resnet20", {1, 28, 28}, 10)).output_shape(), (Shape{10}));
  EXPECT_EQ(Model::from_description(preset_description("cifar_small", {1, 28, 28}, 10)).output_shape(), (Shape{10}));
  EXPECT_THROW(preset_description("resnet21", {3, 32, 32}, 10), Error);
  EXPECT_EQ(model_presets().size(), 3u);
}

// The description's error: one line, starting "model description", naming `words`.
void expect_description_error(const Json& d, const std::vector<std::string>& words) {
  try {
    Model::from_description(d);
    FAIL() << "no error for " << d.dump();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(message.rfind("model description", 0), 0u) << message;
    for (const std::string& w : words) EXPECT_NE(message.find(w), std::string::npos) << message;
  }
}

TEST(Graph, BadDescriptionsAreOneLineErrorsNamingTheNode) {
  Json d = residual_description();
  d["nodes"][3]["kind"] = "conv9d";
  expect_description_error(d, {"\"a.conv1\"", "unknown layer kind \"conv9d\""});

  d = residual_description();
  d["nodes"][0]["kernel"] = 9;  // 9 > 6 + 2 * 4? padding stays 1: 9 > 8
  expect_description_error(d, {"\"stem\"", "kernel 9x9 is larger than the padded input 8x8"});

  d = residual_description();
  d["nodes"][3]["in_channels"] = 3;  // it reads 4 channels
  expect_description_error(d, {"\"a.conv1\"", "in_channels 3 does not match the 4 input channels"});

  d = residual_description();
  d["nodes"][17]["inputs"] = {"b.bn2", "a.relu2"};  // [6, 3, 3] + [4, 6, 6]
  expect_description_error(d, {"\"b.add\"", "add cannot sum shapes [6, 3, 3] and [4, 6, 6]"});

  d = residual_description();
  d["nodes"][4]["inputs"] = {"a.conv2"};  // a later node
  expect_description_error(d, {"\"a.bn1\"", "input \"a.conv2\" is not \"input\" or an earlier node"});

  d = residual_description();
  d["nodes"][4]["name"] = "a.conv1";
  expect_description_error(d, {"\"a.conv1\"", "used twice"});

  d = residual_description();
  d["nodes"][8]["inputs"] = {"a.bn2", "a.bn2"};
  d["nodes"][3]["inputs"] = {"stem_bn"};  // now nothing reads stem_relu
  expect_description_error(d, {"\"stem_relu\"", "never read"});

  d = residual_description();
  d["nodes"][0]["stirde"] = 2;
  expect_description_error(d, {"\"stem\"", "unknown field \"stirde\""});

  d = residual_description();
  d["nodes"][0].erase("out_channels");
  expect_description_error(d, {"\"stem\"", "needs an integer \"out_channels\""});

  d = residual_description();
  d["nodes"][0]["groups"] = 3;
  expect_description_error(d, {"\"stem\"", "groups 3 must divide"});

  d = residual_description();
  d["nodes"][0]["dilation"] = 2;
  expect_description_error(d, {"\"stem\"", "dilation"});

  d = residual_description();
  d["nodes"][0]["kernel"] = "three";
  expect_description_error(d, {"\"stem\"", "\"kernel\" must be an integer"});

  d = residual_description();
  d["nodes"][19]["p"] = 1.0;
  expect_description_error(d, {"\"drop\"", "dropout p"});

  d = residual_description();
  d["nodes"][8]["inputs"] = {"a.bn2"};
  expect_description_error(d, {"\"a.add\"", "at least two inputs"});

  d = residual_description();
  d["nodes"][2]["inputs"] = {"stem_bn", "stem"};
  expect_description_error(d, {"\"stem_relu\"", "takes one input, given 2"});

  d = residual_description();
  d["nodes"][20]["kind"] = "max_pool2d";
  d["nodes"][20]["kernel"] = 5;  // the image is 3x3 there
  expect_description_error(d, {"\"pool\"", "larger than the padded input"});

  d = residual_description();
  d["layers"] = Json::array();
  expect_description_error(d, {"not both"});

  expect_description_error(Json::array(), {"input_shape"});
  expect_description_error({{"input_shape", {3, 8, 8}}, {"nodes", Json::array()}}, {"no layers"});
}

std::string temp_path(const std::string& name) {
  std::filesystem::create_directories(LOWBIT_TEST_TMP);
  return std::string(LOWBIT_TEST_TMP) + "/graph_model_" + name;
}

TEST(GraphFile, RoundTripKeepsParametersAndRunningStatistics) {
  Model model = Model::from_description(residual_description());
  model.init(5);
  std::mt19937_64 rng(6);
  for (Tensor* b : model.buffers())
    for (float& v : b->values()) v = uniform_float(rng, 0.5f, 1.5f);
  model.metadata = {{"dataset", "toy"}};
  const std::string path = temp_path("residual.lbm");
  save_model(model, path);
  EXPECT_EQ(read_container(path, "float").version, 3u);
  const Model back = load_model(path);
  EXPECT_EQ(back.description(), model.description());
  EXPECT_EQ(back.metadata, model.metadata);
  const auto a = model.buffers();
  const auto b = back.buffers();
  ASSERT_EQ(a.size(), 2 * 6u);  // 6 batch norms, mean and variance each
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]->values()[0], b[i]->values()[0]);
  const Tensor x = random_tensor({2, 2, 6, 6}, rng);
  Activations aa, ab;
  const Tensor ya = model.forward(x, aa), yb = back.forward(x, ab);
  EXPECT_TRUE(std::equal(ya.values().begin(), ya.values().end(), yb.values().begin()));

  // A clone carries the buffers too.
  const Model copy = model.clone();
  EXPECT_EQ(copy.buffers()[1]->values()[0], a[1]->values()[0]);

  // A negative running variance is refused, naming the node.
  Container c = read_container(path, "float");
  // Blobs: stem's weight, then stem_bn's gamma, beta, running mean, running variance.
  std::vector<float> negative(4, -1.0f);
  c.blobs[4] = floats_to_blob(negative.data(), 4);
  const std::string bad = temp_path("negative_variance.lbm");
  std::ofstream(bad, std::ios::binary) << encode_container(c);
  try {
    load_model(bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"stem_bn\" has a negative running variance"), std::string::npos)
        << e.what();
  }
  c.blobs.pop_back();
  std::ofstream(bad, std::ios::binary) << encode_container(c);
  EXPECT_THROW(load_model(bad), Error);
}

TEST(Graph, QuantizationRefusesWhatTheEngineCannotRunInOneLine) {
  // A batch norm after a ReLU has no conv to fold into.
  Json d = residual_description();
  d["nodes"][1] = node("stem_relu", "relu", {"stem"});
  d["nodes"][2] = node("stem_bn", "batch_norm", {"stem_relu"});
  d["nodes"][3]["inputs"] = {"stem_bn"};             // a.conv1
  d["nodes"][8]["inputs"] = {"a.bn2", "stem_bn"};  // a.add
  const Model model = Model::from_description(d);
  std::mt19937_64 rng(7);
  try {
    plan_quantization(model, random_tensor({4, 2, 6, 6}, rng), QuantOptions{});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "node \"stem_bn\" (batch_norm): the integer engine folds batch norm into a conv2d "
                           "read by nothing else, and its input is not one");
  }
}

// Random 2x6x6 images, labels from a pattern a CNN can find (which quadrant is brightest).
struct Images {
  Tensor x;
  std::vector<uint8_t> labels;
};

Images quadrant_images(int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Images out{Tensor({count, 2, 6, 6}), std::vector<uint8_t>(count)};
  for (int64_t n = 0; n < count; ++n) {
    const int label = static_cast<int>(rng() % 3);
    out.labels[n] = static_cast<uint8_t>(label);
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j)
          out.x[((n * 2 + c) * 6 + i) * 6 + j] =
              uniform_float(rng, -1, 1) + ((i < 3) + 2 * (j < 3) == label + 1 ? 1.0f : 0.0f);
  }
  return out;
}

std::vector<float> all_values(Model& model) {
  std::vector<float> out;
  for (Tensor* p : model.parameters()) out.insert(out.end(), p->values().begin(), p->values().end());
  for (Tensor* b : model.buffers()) out.insert(out.end(), b->values().begin(), b->values().end());
  return out;
}

TEST(GraphTraining, ATinyResNetLearns) {
  const Images data = quadrant_images(192, 1);
  Model model = Model::from_description(residual_description());
  model.init(2);
  TrainOptions options;
  options.epochs = 6;
  options.batch_size = 32;
  options.learning_rate = 1e-2f;
  options.progress = false;
  const auto history = train(model, data.x, data.labels, options);
  EXPECT_LT(history.back().loss, 0.8 * history.front().loss);
  // Evaluation runs on the running statistics, which training moved off their start.
  EXPECT_NE(model.buffers()[0]->values()[0], 0.0f);
  EXPECT_GT(evaluate(model, data.x, data.labels).accuracy, 0.6);
}

TEST(GraphTraining, BitIdenticalOnOneAndTwoThreads) {
  const Images data = quadrant_images(100, 3);
  TrainOptions options;
  options.epochs = 2;
  options.batch_size = 50;  // shards of 32 and 18: ghost batch norm on both, dropout on each
  options.seed = 9;
  options.progress = false;
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 1, 2}) {
    omp_set_num_threads(threads);
    Model model = Model::from_description(residual_description());
    model.init(4);
    train(model, data.x, data.labels, options);
    results.push_back(all_values(model));
  }
  for (size_t r = 1; r < results.size(); ++r) EXPECT_EQ(results[r], results[0]) << "run " << r;
}

}  // namespace
}  // namespace lowbit
