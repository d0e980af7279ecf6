// Sign-binary weights (code q means scale * (2q - 1)): the levels, a hand-computed integer layer,
// agreement with the simulation, the 1-bit file round trip and rejection of invalid files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "lowbit/dataset.h"
#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/quantize.h"
#include "lowbit/quantized_model.h"
#include "lowbit/simulated.h"
#include "lowbit/train.h"
#include "util/container.h"

namespace lowbit {
namespace {

constexpr uint32_t kSeed = 20261128;  // every random test prints it via SCOPED_TRACE

std::string temp_path(const std::string& name) {
  std::filesystem::create_directories(LOWBIT_TEST_TMP);
  return std::string(LOWBIT_TEST_TMP) + "/sign_binary_" + name;
}

TEST(SignParams, LevelsArePlusAndMinusScale) {
  const QuantParams p = sign_params(0.25f);
  EXPECT_EQ(p.bits, 1);
  EXPECT_TRUE(p.sign);
  EXPECT_EQ(p.dequantize(0), -0.25f);
  EXPECT_EQ(p.dequantize(1), 0.25f);
  EXPECT_EQ(p.quantize(-3.0f), 0);
  EXPECT_EQ(p.quantize(-1e-20f), 0);
  EXPECT_EQ(p.quantize(0.0f), 1);  // zero goes to +scale
  EXPECT_EQ(p.quantize(1e-20f), 1);
  EXPECT_EQ(p.quantize(7.0f), 1);
  EXPECT_EQ(p.fake_quantize(-0.01f), -0.25f);
  EXPECT_EQ(p.fake_quantize(0.9f), 0.25f);
  // The affine 1-bit form with the same scale cannot give both signs.
  for (int32_t z : {0, 1}) {
    const QuantParams affine{0.25f, z, 1, false};
    EXPECT_EQ(affine.dequantize(0) * affine.dequantize(1), 0.0f) << "zero point " << z;
  }
}

// 4 pixels -> Linear 3 -> log_softmax, normalization mean 0, std 1 (normalized = pixel / 255).
Model four_pixel_model() {
  Model m = Model::from_description({{"input_shape", {1, 1, 4}},
                                     {"layers", {{{"kind", "linear"}, {"out_features", 3}},
                                                 {{"kind", "log_softmax"}}}}});
  m.metadata["mean"] = {0.0f};
  m.metadata["std"] = {1.0f};
  return m;
}

TEST(SignBinaryEngine, HandMadeLayerComputesPlusMinusScaleSumsExactly) {
  const Model model = four_pixel_model();
  QuantPlan plan;
  QuantizedLinearPlan p;
  p.layer = 0;
  p.in_features = 4;
  p.out_features = 3;
  p.input = {0.25f, 0, 2, false};  // pixel 0, 64, 128, 255 -> codes 0, 1, 2, 3
  p.weight.assign(3, sign_params(0.5f));
  p.weight_codes = {1, 0, 1, 1,   // +1 -1 +1 +1
                    0, 0, 1, 0,   // -1 -1 +1 -1
                    1, 1, 1, 1};  // +1 +1 +1 +1
  p.bias = {0.25f, -0.5f, 0.0f};
  plan.layers.push_back(p);
  const QuantizedModel engine = QuantizedModel::build(model, plan);
  EXPECT_EQ(engine.weight_bits(), 1);
  EXPECT_EQ(engine.weight_bytes(), 3);  // one byte per row: 4 weights at 1 bit
  EXPECT_EQ(engine.summary()["layers"][0]["weight_coding"], "sign");

  // Pixels 64, 128, 255, 0 are input codes 1, 2, 3, 0. Real logits:
  //   0.5 * 0.25 * (1 - 2 + 3 + 0) + 0.25 = 0.5, 0.125 * (-1 - 2 + 3 - 0) - 0.5 = -0.5,
  //   0.125 * (1 + 2 + 3 + 0) + 0 = 0.75.
  // The logits are on the scale s_x * s_w / 2^S, so they are these times 8 * 2^S, exactly.
  const std::vector<uint8_t> pixels = {64, 128, 255, 0};
  int32_t logits[3];
  engine.logits(pixels.data(), 1, logits);
  const int shift = engine.summary()["layers"][0]["acc_shift"];
  EXPECT_EQ(logits[0], 4 << shift);
  EXPECT_EQ(logits[1], -4 << shift);
  EXPECT_EQ(logits[2], 6 << shift);

  // The simulated model gives the same log-probabilities.
  ImageSet image;
  image.count = 1;
  image.height = 1;
  image.width = 4;
  image.pixels = pixels;
  image.labels = {2};
  Tensor sim;
  SimulatedModel(model, plan).forward(normalized_images(image, {0.0f}, {1.0f}, 0, 1), sim);
  const Tensor integer = engine.log_probabilities(logits, 1);
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(integer[j], sim[j], 1e-5) << j;
}

TEST(SignBinaryEngine, MixedSignAndAffineChannelsInOneLayerAreRejected) {
  const Model model = four_pixel_model();
  QuantPlan plan;
  QuantizedLinearPlan p;
  p.in_features = 4;
  p.out_features = 3;
  p.input = {0.25f, 0, 2, false};
  p.weight = {sign_params(0.5f), sign_params(0.5f), QuantParams{0.5f, 0, 1, false}};
  p.weight_codes.assign(12, 1);
  p.bias.assign(3, 0.0f);
  plan.layers.push_back(p);
  EXPECT_THROW(QuantizedModel::build(model, plan), Error);
}

// FC_NN on 4x4 images with random sign-binary weights everywhere and 1-bit hidden activations.
struct RandomBinary {
  Model model = Model::from_description(Model::fc_nn_description({1, 4, 4}, 10));
  QuantPlan plan;
  ImageSet images;
};

RandomBinary random_binary(uint32_t seed) {
  RandomBinary r;
  r.model.metadata["mean"] = {0.5f};
  r.model.metadata["std"] = {0.25f};
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  const int64_t widths[] = {16, 64, 32, 10};
  for (int l = 0; l < 3; ++l) {
    QuantizedLinearPlan p;
    p.layer = static_cast<size_t>(2 * l);
    p.in_features = widths[l];
    p.out_features = widths[l + 1];
    p.relu = l < 2;
    p.input = l == 0 ? QuantParams{0.5f, 1, 2, false} : QuantParams{0.6f, 0, 1, false};
    for (int64_t o = 0; o < p.out_features; ++o) {
      p.weight.push_back(sign_params(0.1f + 0.2f * unit(gen)));
      p.bias.push_back(unit(gen) - 0.5f);
    }
    for (int64_t k = 0; k < p.in_features * p.out_features; ++k)
      p.weight_codes.push_back(unit(gen) < 0.5f ? 0 : 1);
    r.plan.layers.push_back(p);
  }
  r.images.count = 500;
  r.images.height = r.images.width = 4;
  for (int64_t i = 0; i < r.images.count * 16; ++i)
    r.images.pixels.push_back(static_cast<uint8_t>(255 * unit(gen)));
  r.images.labels.assign(r.images.count, 0);
  return r;
}

TEST(SignBinaryFile, RoundTripKeepsOneBitPackingAndPredictions) {
  SCOPED_TRACE(kSeed);
  const RandomBinary r = random_binary(kSeed);
  const QuantizedModel built = QuantizedModel::build(r.model, r.plan);
  EXPECT_EQ(built.weight_bytes(), 64 * 2 + 32 * 8 + 10 * 4);  // ceil(K / 8) bytes per row

  const Evaluation before = built.evaluate(r.images);
  const Tensor x = normalized_images(r.images, {0.5f}, {0.25f}, 0, r.images.count);
  const SimulatedModel simulated(r.model, r.plan);
  const Evaluation sim = evaluate_with(
      [&simulated](const Tensor& in, Tensor& out) { simulated.forward(in, out); }, x,
      r.images.labels);
  int64_t same = 0;
  for (int64_t i = 0; i < r.images.count; ++i) same += before.predictions[i] == sim.predictions[i];
  EXPECT_GE(same, r.images.count * 99 / 100) << "engine vs simulation";

  const std::string path = temp_path("roundtrip.lbq");
  built.save(path);
  const Container c = read_container(path, "quantized");
  EXPECT_EQ(c.version, 2u);  // sign-binary layers need a reader that knows them
  for (size_t l = 0; l < 3; ++l) {
    EXPECT_EQ(c.header["layers"][l]["weight_bits"], 1);
    EXPECT_EQ(c.header["layers"][l]["weight_coding"], "sign");
    EXPECT_EQ(c.blobs[1 + 6 * l].size(), static_cast<size_t>(r.plan.layers[l].out_features *
                                                             ((r.plan.layers[l].in_features + 7) / 8)));
  }
  const QuantizedModel loaded = QuantizedModel::load(path);
  EXPECT_EQ(loaded.weight_bits(), 1);
  EXPECT_EQ(loaded.weight_bytes(), built.weight_bytes());
  std::vector<int32_t> a(r.images.count * 10), b(r.images.count * 10);
  built.logits(r.images.pixels.data(), r.images.count, a.data());
  loaded.logits(r.images.pixels.data(), r.images.count, b.data());
  EXPECT_EQ(a, b);
}

TEST(SignBinaryFile, AffineModelsStayVersionOne) {
  RandomBinary r = random_binary(kSeed + 1);
  for (QuantizedLinearPlan& p : r.plan.layers)
    for (QuantParams& w : p.weight) w = {w.scale, 0, 1, false};
  const std::string path = temp_path("affine.lbq");
  QuantizedModel::build(r.model, r.plan).save(path);
  const Container c = read_container(path, "quantized");
  EXPECT_EQ(c.version, 1u);
  EXPECT_FALSE(c.header["layers"][0].contains("weight_coding"));
  EXPECT_EQ(QuantizedModel::load(path).summary()["layers"][0]["weight_coding"], "affine");
}

void expect_load_error(const Container& c, const std::string& name, const std::string& words) {
  const std::string path = temp_path(name);
  std::ofstream(path, std::ios::binary) << encode_container(c);
  try {
    QuantizedModel::load(path);
    FAIL() << "no error for " << name;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(SignBinaryFile, InvalidSignLayersAreCleanErrors) {
  const RandomBinary r = random_binary(kSeed + 2);
  const std::string path = temp_path("valid.lbq");
  QuantizedModel::build(r.model, r.plan).save(path);
  const Container valid = read_container(path, "quantized");

  Container old = valid;
  old.version = 1;  // a version-1 reader would run the codes as affine {0, s} / {-s, 0}
  expect_load_error(old, "v1.lbq", "version 1");

  Container unknown = valid;
  unknown.header["layers"][1]["weight_coding"] = "xnor";
  expect_load_error(unknown, "unknown.lbq", "unknown weight_coding");

  Container wide = valid;
  wide.header["layers"][0]["weight_bits"] = 2;
  expect_load_error(wide, "wide.lbq", "must be 1-bit");

  Container zero = valid;
  std::string& zero_points = zero.blobs[1 + 6 * 2 + 2];  // layer 2's weight zero points
  zero_points.assign(zero_points.size(), '\0');
  expect_load_error(zero, "zero.lbq", "zero point is not 1");

  Container not_string = valid;
  not_string.header["layers"][0]["weight_coding"] = 1;
  expect_load_error(not_string, "type.lbq", "\"weight_coding\" must be a string");
}

}  // namespace
}  // namespace lowbit
