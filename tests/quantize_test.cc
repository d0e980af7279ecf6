// Post-training quantization: hand-computed parameters, each calibration, GPTQ, AdaRound, bias correction,
// the round-trip error bound per bit width, and integer engine vs simulation per preset.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "lowbit/dataset.h"
#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/quantize.h"
#include "lowbit/quantized_model.h"
#include "lowbit/simulated.h"
#include "lowbit/train.h"
#include "model_fixtures.h"
#include "quant/calibration.h"
#include "quant/rounding.h"

namespace lowbit {
namespace {

constexpr uint32_t kSeed = 20261127;  // every random test prints it via SCOPED_TRACE

std::vector<float> random_values(int64_t n, uint32_t seed, float stddev = 1) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = normal(gen);
  return v;
}

TEST(MinmaxParams, HandComputedTwoBits) {
  const QuantParams p = minmax_params({-1, 3}, 2);
  EXPECT_FLOAT_EQ(p.scale, 4.0f / 3);
  EXPECT_EQ(p.zero_point, 1);  // round(1 / (4/3)) = round(0.75)
  EXPECT_EQ(p.quantize(-1), 0);
  EXPECT_EQ(p.quantize(3), 3);
  EXPECT_FLOAT_EQ(p.dequantize(1), 0);
}

TEST(MinmaxParams, AllZerosAndOneBit) {
  const std::vector<float> zeros(8, 0.0f);
  const QuantParams z = minmax_params(range_of(zeros), 4);
  EXPECT_EQ(z.scale, 1.0f);
  EXPECT_EQ(z.fake_quantize(0), 0.0f);
  const QuantParams one = minmax_params({-1, 1}, 1);
  EXPECT_FLOAT_EQ(one.scale, 2);
  EXPECT_EQ(one.zero_point, 0);  // round_half_even(0.5) = 0
  EXPECT_EQ(one.quantize(-1), 0);
  EXPECT_EQ(one.quantize(1), 0);  // 1 / 2 = 0.5 rounds half to even
  EXPECT_EQ(one.quantize(1.01f), 1);
}

TEST(SymmetricParams, GridIsSymmetricAndOneBitKeepsTheLargerSide) {
  const QuantParams p = symmetric_params({-1, 3}, 3);  // a = 3, levels -3..3 step 1
  EXPECT_EQ(p.zero_point, 4);
  EXPECT_FLOAT_EQ(p.scale, 1);
  EXPECT_FLOAT_EQ(p.fake_quantize(-3), -3);
  EXPECT_FLOAT_EQ(p.fake_quantize(3), 3);
  const QuantParams ternary = symmetric_params({-2, 1}, 2);
  EXPECT_FLOAT_EQ(ternary.fake_quantize(-2), -2);
  EXPECT_FLOAT_EQ(ternary.fake_quantize(2), 2);
  EXPECT_FLOAT_EQ(ternary.fake_quantize(0.1f), 0);
  const QuantParams one = symmetric_params({-2, 1}, 1);
  EXPECT_FLOAT_EQ(one.fake_quantize(-2), -2);
  EXPECT_FLOAT_EQ(one.fake_quantize(1), 0);
}

std::vector<float> values_with_outlier() {
  std::vector<float> v = random_values(4000, kSeed);
  v[17] = 40;  // one outlier 40 sigma out
  return v;
}

TEST(Calibration, MseNeverWorseThanMinmax) {
  SCOPED_TRACE(kSeed);
  const std::vector<float> v = values_with_outlier();
  for (int bits = 1; bits <= 8; ++bits) {
    const double minmax = quantization_mse(v, minmax_params(range_of(v), bits));
    const double mse =
        quantization_mse(v, minmax_params(calibrate_range(v, bits, Calibration::mse, 0), bits));
    EXPECT_LE(mse, minmax) << bits << " bits";
    // Where the step is coarse, clipping the outlier pays for itself many times over.
    if (bits >= 3 && bits <= 4) {
      EXPECT_LT(mse, 0.5 * minmax) << bits << " bits";
    }
  }
}

TEST(Calibration, PercentileAndKlClipTheOutlier) {
  const std::vector<float> v = values_with_outlier();
  const Range p = calibrate_range(v, 4, Calibration::percentile, 99.9);
  EXPECT_LT(p.max, 6);
  EXPECT_GT(p.max, 2);
  EXPECT_LT(p.min, -2);
  const Range kl = calibrate_range(v, 8, Calibration::kl, 0);
  EXPECT_LT(kl.max, 40);
}

TEST(Calibration, PerChannelGivesEachRowItsOwnRange) {
  Model model = Model::from_description(
      {{"input_shape", {4}}, {"layers", {{{"kind", "linear"}, {"out_features", 2}}}}});
  model.metadata = {{"mean", {0.0}}, {"std", {1.0}}};
  auto& linear = dynamic_cast<Linear&>(model.layer(0));
  const float rows[8] = {-1, 0, 0.5f, 1, -10, 0, 5, 10};
  std::copy(rows, rows + 8, linear.weight().data());
  Tensor images({3, 4}, std::vector<float>(12, 0.5f));
  QuantOptions options = preset_options("minmax", 4, 8);
  options.per_channel = true;
  const QuantPlan plan = plan_quantization(model, images, options);
  ASSERT_EQ(plan.layers[0].weight.size(), 2u);
  EXPECT_FLOAT_EQ(plan.layers[0].weight[0].scale, 2.0f / 15);
  EXPECT_FLOAT_EQ(plan.layers[0].weight[1].scale, 20.0f / 15);
}

// ggml test-quantize-fns style: inside the range, |x - dequant(quant(x))| <= scale / 2.
TEST(RoundTrip, WorstErrorPerBitWidth) {
  const std::vector<float> v = random_values(10000, kSeed + 1);
  const Range range = range_of(v);
  for (int bits = 1; bits <= 8; ++bits) {
    const QuantParams p = minmax_params(range, bits);
    float worst = 0;
    for (float x : v) worst = std::max(worst, std::fabs(x - p.fake_quantize(x)));
    EXPECT_LE(worst, p.scale / 2 * (1 + 1e-5f)) << bits << " bits";
    const float table_limit = (range.max - range.min) / ((1 << bits) - 1);  // one full step
    EXPECT_LE(worst, table_limit) << bits << " bits";
  }
}

double layer_output_error(const Tensor& x, const Tensor& w, const std::vector<uint8_t>& codes,
                          const std::vector<QuantParams>& params) {
  const int64_t out = w.dim(0), in = w.row_size();
  double sum = 0;
  for (int64_t r = 0; r < x.dim(0); ++r)
    for (int64_t o = 0; o < out; ++o) {
      const QuantParams& p = params.size() == 1 ? params[0] : params[o];
      double e = 0;
      for (int64_t k = 0; k < in; ++k)
        e += x[r * in + k] * (w[o * in + k] - p.dequantize(codes[o * in + k]));
      sum += e * e;
    }
  return std::sqrt(sum);
}

// Correlated inputs, as real activations are: x = z A. [count, in]
Tensor correlated_inputs(int64_t count, int64_t in, uint32_t seed) {
  const std::vector<float> z = random_values(count * in, seed);
  const std::vector<float> a = random_values(in * in, seed + 1, 0.3f);
  Tensor x({count, in});
  for (int64_t r = 0; r < count; ++r)
    for (int64_t j = 0; j < in; ++j)
      for (int64_t k = 0; k < in; ++k) x[r * in + j] += z[r * in + k] * a[k * in + j];
  return x;
}

TEST(Gptq, ReducesLayerOutputErrorVersusNearest) {
  SCOPED_TRACE(kSeed);
  const int64_t count = 256, in = 32, out = 8;
  const Tensor x = correlated_inputs(count, in, kSeed + 2);
  const Tensor w({out, in}, random_values(out * in, kSeed + 4));
  for (int bits : {2, 3, 4}) {
    const std::vector<QuantParams> params{minmax_params(range_of(w.values()), bits)};
    const double nearest = layer_output_error(x, w, round_to_nearest(w, params), params);
    const double gptq = layer_output_error(x, w, round_with_gptq(w, params, x), params);
    EXPECT_LT(gptq, 0.9 * nearest) << bits << " bits";
  }
}

// Per tensor or per row, the minmax range of `w` times `shrink` (< 1 clips the largest weights).
std::vector<QuantParams> shrunk_params(const Tensor& w, int bits, bool per_channel, float shrink) {
  std::vector<QuantParams> params;
  const int64_t rows = per_channel ? w.dim(0) : 1, size = per_channel ? w.row_size() : w.size();
  for (int64_t row = 0; row < rows; ++row) {
    const Range r = range_of(w.values().subspan(row * size, size));
    params.push_back(minmax_params({r.min * shrink, r.max * shrink}, bits));
  }
  return params;
}

TEST(AdaRound, EachCodeIsTheFloorOrCeilingOfItsWeightInRange) {
  SCOPED_TRACE(kSeed);
  const int64_t count = 64, in = 24, out = 6;
  const Tensor x = correlated_inputs(count, in, kSeed + 20);
  const Tensor w({out, in}, random_values(out * in, kSeed + 22));
  AdaRoundOptions options;
  options.iterations = 200;
  for (int bits = 1; bits <= 8; ++bits)
    for (bool per_channel : {false, true})
      for (float shrink : {1.0f, 0.6f}) {
        SCOPED_TRACE(std::to_string(bits) + " bits, per channel " + std::to_string(per_channel) +
                     ", range x" + std::to_string(shrink));
        const std::vector<QuantParams> params = shrunk_params(w, bits, per_channel, shrink);
        const std::vector<uint8_t> codes = round_with_adaround(w, params, x, x, options);
        for (int64_t o = 0; o < out; ++o)
          for (int64_t k = 0; k < in; ++k) {
            const QuantParams& p = params.size() == 1 ? params[0] : params[o];
            const int code = codes[o * in + k];
            const int floor = static_cast<int>(std::floor(w[o * in + k] / p.scale)) + p.zero_point;
            ASSERT_LE(code, p.qmax());
            ASSERT_TRUE(code == std::clamp(floor, 0, p.qmax()) ||
                        code == std::clamp(floor + 1, 0, p.qmax()))
                << "weight " << w[o * in + k] << " scale " << p.scale << " code " << code;
          }
      }
}

TEST(AdaRound, ReconstructsTheLayerOutputNoWorseThanNearest) {
  SCOPED_TRACE(kSeed);
  const int64_t count = 256, in = 32, out = 8;
  const Tensor x = correlated_inputs(count, in, kSeed + 2);
  const Tensor w({out, in}, random_values(out * in, kSeed + 4));
  for (int bits : {2, 3, 4})
    for (bool per_channel : {false, true}) {
      const std::vector<QuantParams> params = shrunk_params(w, bits, per_channel, 1.0f);
      const double nearest = layer_output_error(x, w, round_to_nearest(w, params), params);
      const double adaround = layer_output_error(x, w, round_with_adaround(w, params, x, x), params);
      EXPECT_LE(adaround, nearest) << bits << " bits, per channel " << per_channel;
    }
}

TEST(AdaRound, SameCodesOnEveryRun) {
  SCOPED_TRACE(kSeed);
  const Tensor x = correlated_inputs(128, 40, kSeed + 30);
  const Tensor w({12, 40}, random_values(12 * 40, kSeed + 32));
  const std::vector<QuantParams> params = shrunk_params(w, 3, true, 0.9f);
  EXPECT_EQ(round_with_adaround(w, params, x, x), round_with_adaround(w, params, x, x));
}

TEST(Rounding, UnknownNameIsOneClearError) {
  EXPECT_EQ(parse_rounding("adaround"), Rounding::adaround);
  try {
    parse_rounding("adarond");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("adarond"), std::string::npos) << message;
    EXPECT_NE(message.find("adaround"), std::string::npos) << message;  // lists the known names
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(Calibration, OutputMseWeightsGiveNoLargerLayerErrorThanMse) {
  SCOPED_TRACE(kSeed);
  Model model = Model::from_description(
      {{"input_shape", {16}}, {"layers", {{{"kind", "linear"}, {"out_features", 6}}}}});
  model.init(kSeed);
  model.metadata = {{"mean", {0.0}}, {"std", {1.0}}};
  const auto& linear = dynamic_cast<const Linear&>(model.layer(0));
  Tensor images({200, 16}, random_values(200 * 16, kSeed + 8));
  for (int64_t r = 0; r < 200; ++r) images[r * 16] *= 10;  // one dominant input
  for (int bits : {2, 3}) {
    double error[2];
    for (int i = 0; i < 2; ++i) {
      QuantOptions options = preset_options("mse_pc", bits, 8);
      options.weight_calibration = i ? Calibration::output_mse : Calibration::mse;
      const QuantPlan plan = plan_quantization(model, images, options);
      Tensor x = images;
      for (float& v : x.values()) v = plan.layers[0].input.fake_quantize(v);
      error[i] = layer_output_error(x, linear.weight(), plan.layers[0].weight_codes,
                                    plan.layers[0].weight);
    }
    EXPECT_LE(error[1], error[0] * (1 + 1e-6)) << bits << " bits";
  }
}

using testing_models::random_images;
using testing_models::tiny_model;

TEST(BiasCorrection, MakesMeanOutputErrorNearZero) {
  SCOPED_TRACE(kSeed);
  const Model model = tiny_model(kSeed);
  const Tensor images = normalized_images(random_images(512, kSeed), {0.5f}, {0.25f}, 0, 512);
  Activations reference;
  model.forward(images, reference);
  const Tensor& logits = reference.outputs[model.layer_count() - 2];  // last Linear's output
  for (bool correct : {false, true}) {
    QuantOptions options = preset_options("minmax", 3, 3);
    options.bias_correction = correct;
    const QuantPlan plan = plan_quantization(model, images, options);
    // The last Linear's quantized output, replayed from the plan in float.
    Model replay = model.clone();
    for (const QuantizedLinearPlan& q : plan.layers) {
      auto& linear = dynamic_cast<Linear&>(replay.layer(q.layer));
      for (int64_t o = 0; o < q.out_features; ++o) {
        for (int64_t k = 0; k < q.in_features; ++k)
          linear.weight()[o * q.in_features + k] =
              q.weight_params(o).dequantize(q.weight_codes[o * q.in_features + k]);
        linear.bias()[o] = q.bias[o];
      }
    }
    Tensor current = images, next;
    for (size_t i = 0; i + 1 < replay.layer_count(); ++i) {
      for (const QuantizedLinearPlan& q : plan.layers)
        if (q.layer == i) for (float& v : current.values()) v = q.input.fake_quantize(v);
      replay.layer(i).forward(current, next);
      std::swap(current, next);
    }
    double worst_mean = 0;
    for (int64_t c = 0; c < 3; ++c) {
      double sum = 0;
      for (int64_t r = 0; r < current.dim(0); ++r) sum += current[r * 3 + c] - logits[r * 3 + c];
      worst_mean = std::max(worst_mean, std::fabs(sum / current.dim(0)));
    }
    if (correct) EXPECT_LT(worst_mean, 1e-4) << "mean logit error with bias correction";
    else EXPECT_GT(worst_mean, 1e-3) << "3-bit minmax should leave a visible mean error";
  }
}

TEST(EndToEnd, IntegerEngineAgreesWithSimulationForEveryPresetAt8Bits) {
  SCOPED_TRACE(kSeed);
  const Model model = tiny_model(kSeed + 5);
  const ImageSet test = random_images(1000, kSeed + 6);
  const Tensor calibration = normalized_images(random_images(256, kSeed + 7), {0.5f}, {0.25f}, 0, 256);
  const Tensor test_images = normalized_images(test, {0.5f}, {0.25f}, 0, test.count);
  for (const std::string& method : quantization_methods()) {
    const QuantPlan plan = plan_quantization(model, calibration, preset_options(method, 8, 8));
    const SimulatedModel simulated(model, plan);
    const Evaluation sim = evaluate_with(
        [&simulated](const Tensor& x, Tensor& y) { simulated.forward(x, y); }, test_images,
        test.labels);
    const Evaluation engine = QuantizedModel::build(model, plan).evaluate(test);
    int64_t same = 0;
    for (int64_t i = 0; i < test.count; ++i) same += engine.predictions[i] == sim.predictions[i];
    EXPECT_GE(same, 990) << method;
  }
}

TEST(LossAware, NeverEndsWithAWorseCalibrationLossThanItsStart) {
  SCOPED_TRACE(kSeed);
  const Model model = tiny_model(kSeed + 8);
  const Tensor calibration =
      normalized_images(random_images(128, kSeed + 9), {0.5f}, {0.25f}, 0, 128);
  for (int bits : {2, 3, 4}) {
    QuantOptions start = preset_options("loss_aware", bits, bits);
    start.loss_aware = false;  // the search's starting point: the best preset's plan
    const QuantPlan searched = plan_quantization(model, calibration, preset_options("loss_aware", bits, bits));
    const double before = calibration_loss(model, calibration, plan_quantization(model, calibration, start));
    const double after = calibration_loss(model, calibration, searched);
    EXPECT_LE(after, before) << bits << " bits";
  }
}

TEST(Presets, UnknownNameAndBadLayerBitsThrow) {
  EXPECT_THROW(preset_options("nope", 4, 4), Error);
  const Model model = tiny_model(1);
  const Tensor images = normalized_images(random_images(8, 1), {0.5f}, {0.25f}, 0, 8);
  QuantOptions options = preset_options("minmax", 4, 4);
  options.layer_weight_bits = {8, 4};  // the model has 3 Linear layers
  EXPECT_THROW(plan_quantization(model, images, options), Error);
  options.layer_weight_bits = {8, 4, 8};
  options.layer_act_bits = {8, 2, 8};
  const QuantPlan plan = plan_quantization(model, images, options);
  EXPECT_EQ(plan.layers[1].weight[0].bits, 4);
  EXPECT_EQ(plan.layers[1].input.bits, 2);
}

}  // namespace
}  // namespace lowbit
