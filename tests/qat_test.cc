// Tests of LSQ quantization-aware training: the quantizer's maps and gradients, the gain over
// post-training quantization on the integer engine, and bit-identical runs.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/qat.h"
#include "lowbit/quantize.h"
#include "lowbit/quantized_model.h"
#include "lowbit/simulated.h"

namespace lowbit {
namespace {

TEST(LsqQuantizer, StepGradientMatchesEquation3OnHandValues) {
  const LsqQuantizer q{0.5f, 2, 1, 2};  // levels {-1, -0.5, 0, 0.5}
  EXPECT_FLOAT_EQ(q.step_gradient(0.3f), 1.0f - 0.6f);    // round(0.6) - 0.6
  EXPECT_FLOAT_EQ(q.step_gradient(-0.2f), 0.0f + 0.4f);   // round(-0.4) + 0.4
  EXPECT_FLOAT_EQ(q.step_gradient(0.125f), 0.0f - 0.25f); // round(0.25) - 0.25
  EXPECT_FLOAT_EQ(q.step_gradient(0.25f), 0.0f - 0.5f);   // half to even: round(0.5) = 0
  EXPECT_FLOAT_EQ(q.step_gradient(2.0f), 1.0f);           // above Qp s: Qp
  EXPECT_FLOAT_EQ(q.step_gradient(-3.0f), -2.0f);         // below -Qn s: -Qn
  // g = 1 / sqrt(N Qp), with Qp the larger side: 1 / sqrt(100 * 2).
  EXPECT_FLOAT_EQ(lsq_gradient_scale(100, q), 1.0f / std::sqrt(200.0f));
}

TEST(LsqQuantizer, FakeQuantizeIsQuantizeThenDequantize) {
  std::mt19937_64 rng(7);
  for (int bits = 1; bits <= 8; ++bits)
    for (bool ternary : {false, true}) {
      if (ternary && bits != 2) continue;
      LsqQuantizer q = weight_quantizer(bits, ternary);
      q.step = 0.037f;
      const QuantParams p = q.params();
      for (int i = 0; i < 2000; ++i) {
        const float v = uniform_float(rng, -0.4f, 0.4f);
        const int32_t code = q.code(v);
        ASSERT_GE(code, 0);
        ASSERT_LE(code, p.qmax());
        ASSERT_EQ(q.fake_quantize(v), p.dequantize(code)) << "bits " << bits << " v " << v;
        // Where the codes fill the b-bit range (and for sign-binary), the engine's quantizer agrees.
        if (q.sign || q.negative + q.positive == p.qmax()) {
          ASSERT_EQ(code, p.quantize(v));
        }
      }
    }
  const LsqQuantizer t = weight_quantizer(2, true);  // ternary: levels {-s, 0, s}, code 3 unused
  EXPECT_EQ(t.params().zero_point, 1);
  EXPECT_EQ(t.code(10.0f), 2);
  EXPECT_EQ(t.code(-10.0f), 0);
  const LsqQuantizer one = weight_quantizer(1, false);  // sign-binary: {-s, +s}
  EXPECT_TRUE(one.sign);
  EXPECT_EQ(one.fake_quantize(-10.0f), -one.step);
  EXPECT_EQ(one.fake_quantize(-1e-9f), -one.step);
  EXPECT_EQ(one.fake_quantize(0.0f), one.step);
  EXPECT_EQ(one.fake_quantize(10.0f), one.step);
}

TEST(LsqQuantizer, SignBinaryStepGradientAndClipRange) {
  LsqQuantizer q = weight_quantizer(1, false);
  q.step = 0.5f;  // levels {-0.5, 0.5}, clip range (-0.5, 0.5)
  EXPECT_FLOAT_EQ(q.step_gradient(0.1f), 1.0f - 0.2f);    // sign(0.2) - 0.2
  EXPECT_FLOAT_EQ(q.step_gradient(-0.3f), -1.0f + 0.6f);  // sign(-0.6) + 0.6
  EXPECT_FLOAT_EQ(q.step_gradient(0.0f), 1.0f);           // sign(0) = +1, as the code
  EXPECT_FLOAT_EQ(q.step_gradient(0.7f), 1.0f);           // above s: Qp = 1
  EXPECT_FLOAT_EQ(q.step_gradient(-0.7f), -1.0f);         // below -s: -Qn = -1
  EXPECT_TRUE(q.passes(0.49f));
  EXPECT_TRUE(q.passes(-0.49f));
  EXPECT_FALSE(q.passes(0.5f));
  EXPECT_FALSE(q.passes(-0.6f));
  EXPECT_FLOAT_EQ(lsq_gradient_scale(100, q), 0.1f);  // 1 / sqrt(100 * 1)
  const QuantParams p = q.params();
  EXPECT_TRUE(p.sign);
  EXPECT_EQ(p.bits, 1);
  EXPECT_EQ(p.scale, 0.5f);
}

TEST(LsqQuantizer, StraightThroughOnlyInsideTheClipRange) {
  const LsqQuantizer q{0.25f, 4, 3, 3};  // clip range (-1, 0.75)
  for (float v = -2.0f; v <= 2.0f; v += 0.01f)
    EXPECT_EQ(q.passes(v), v > -1.0f && v < 0.75f) << v;
  const LsqQuantizer relu{0.5f, 0, 3, 2};  // unsigned: zeros from ReLU pass no gradient
  EXPECT_FALSE(relu.passes(0.0f));
  EXPECT_TRUE(relu.passes(0.1f));
  EXPECT_FALSE(relu.passes(1.6f));
}

// A small separable problem: 10 classes, each a random 4x4 pixel prototype plus noise.
struct Synthetic {
  ImageSet train, test;
  Tensor train_x, test_x;
  Model model;
};

ImageSet make_images(int64_t count, const std::vector<std::vector<float>>& prototypes,
                     std::mt19937_64& rng) {
  ImageSet s;
  s.count = count;
  s.height = s.width = 4;
  std::normal_distribution<float> noise(0.0f, 1.0f);  // Box-Muller in libstdc++: fine in one test
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t label = static_cast<uint8_t>(i % prototypes.size());
    s.labels.push_back(label);
    for (float p : prototypes[label])
      s.pixels.push_back(static_cast<uint8_t>(std::clamp(p + 70.0f * noise(rng), 0.0f, 255.0f)));
  }
  return s;
}

Synthetic make_synthetic() {
  std::mt19937_64 rng(11);
  std::vector<std::vector<float>> prototypes(10);
  for (auto& p : prototypes)
    for (int j = 0; j < 16; ++j) p.push_back(uniform_float(rng, 0.0f, 255.0f));
  Synthetic s{make_images(2048, prototypes, rng), make_images(1024, prototypes, rng), {}, {},
              Model::from_description(Model::fc_nn_description({1, 4, 4}, 10))};
  s.model.metadata["mean"] = {0.5f};
  s.model.metadata["std"] = {0.3f};
  s.train_x = normalized_images(s.train, {0.5f}, {0.3f}, 0, s.train.count);
  s.test_x = normalized_images(s.test, {0.5f}, {0.3f}, 0, s.test.count);
  s.model.init(3);
  TrainOptions options;
  options.epochs = 10;
  options.progress = false;
  train(s.model, s.train_x, s.train.labels, options);
  return s;
}

QatOptions small_qat(int bits) {
  QatOptions options;
  options.weight_bits = options.act_bits = bits;
  options.epochs = 8;
  options.learning_rate = 2e-3f;
  options.step_learning_rate = 1e-3f;
  options.seed = 5;
  options.progress = false;
  return options;
}

TEST(Qat, TwoBitQatBeatsMinmaxOnTheIntegerEngine) {
  const Synthetic s = make_synthetic();
  QuantOptions ptq;
  ptq.weight_bits = ptq.act_bits = 2;
  const double minmax =
      QuantizedModel::build(s.model, plan_quantization(s.model, s.train_x, ptq)).evaluate(s.test).accuracy;
  const QatResult qat = quantization_aware_training(s.model, s.train_x, s.train.labels, small_qat(2));
  const double learned = QuantizedModel::build(s.model, qat.plan).evaluate(s.test).accuracy;
  std::printf("synthetic 2-bit: minmax %.4f, QAT %.4f\n", minmax, learned);
  EXPECT_GT(learned, minmax + 0.02);
}

// Binary weights and activations: the integer engine must run exactly what QAT trained.
TEST(Qat, SignBinaryQatRunsOnTheEngineAsSimulatedAndBeatsMinmax) {
  const Synthetic s = make_synthetic();
  QuantOptions ptq;
  ptq.weight_bits = ptq.act_bits = 1;
  const double minmax =
      QuantizedModel::build(s.model, plan_quantization(s.model, s.train_x, ptq)).evaluate(s.test).accuracy;
  const QatResult qat = quantization_aware_training(s.model, s.train_x, s.train.labels, small_qat(1));
  for (const QuantizedLinearPlan& p : qat.plan.layers) {
    EXPECT_EQ(p.input.bits, 1);
    for (const QuantParams& w : p.weight) EXPECT_TRUE(w.sign && w.bits == 1);
    EXPECT_TRUE(std::ranges::all_of(p.weight_codes, [](uint8_t c) { return c <= 1; }));
  }
  const QuantizedModel engine = QuantizedModel::build(s.model, qat.plan);
  EXPECT_EQ(engine.weight_bytes(), 64 * 2 + 32 * 8 + 10 * 4);  // 1 bit per weight, rows byte-aligned
  const Evaluation integer = engine.evaluate(s.test);
  const SimulatedModel simulated(qat.model, qat.plan);
  const Evaluation sim = evaluate_with(
      [&simulated](const Tensor& x, Tensor& y) { simulated.forward(x, y); }, s.test_x, s.test.labels);
  int64_t same = 0;
  for (int64_t i = 0; i < s.test.count; ++i) same += integer.predictions[i] == sim.predictions[i];
  std::printf("synthetic 1-bit: minmax %.4f, QAT engine %.4f, simulated %.4f, agree %lld/%lld\n",
              minmax, integer.accuracy, sim.accuracy, static_cast<long long>(same),
              static_cast<long long>(s.test.count));
  EXPECT_GE(same, s.test.count * 999 / 1000);
  EXPECT_GT(integer.accuracy, minmax + 0.1);
}

void expect_same_results(const QatResult& r, const QatResult& t) {
  const QuantPlan &a = r.plan, &b = t.plan;
  const std::vector<Tensor> left = r.model.zero_gradients();  // shapes only
  for (size_t l = 0; l < r.model.layer_count(); ++l)
    for (size_t p = 0; p < r.model.layer(l).parameters().size(); ++p)
      EXPECT_TRUE(std::ranges::equal(r.model.layer(l).parameters()[p].values(),
                                     t.model.layer(l).parameters()[p].values()))
          << "layer " << l << " parameter " << p;
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t l = 0; l < a.layers.size(); ++l) {
    const QuantizedLinearPlan &x = a.layers[l], &y = b.layers[l];
    EXPECT_EQ(x.weight_codes, y.weight_codes);
    EXPECT_EQ(x.bias, y.bias);  // exact float equality on purpose
    EXPECT_EQ(x.input.scale, y.input.scale);
    EXPECT_EQ(x.input.zero_point, y.input.zero_point);
    ASSERT_EQ(x.weight.size(), y.weight.size());
    for (size_t o = 0; o < x.weight.size(); ++o) EXPECT_EQ(x.weight[o].scale, y.weight[o].scale);
  }
}

TEST(Qat, BitIdenticalAcrossRunsAndThreadCounts) {
  const Synthetic s = make_synthetic();
  QatOptions options = small_qat(2);
  options.epochs = 2;
  options.batch_size = 100;  // several shards, the last one short
  const int threads = omp_get_max_threads();
  omp_set_num_threads(2);
  const QatResult a = quantization_aware_training(s.model, s.train_x, s.train.labels, options);
  const QatResult b = quantization_aware_training(s.model, s.train_x, s.train.labels, options);
  omp_set_num_threads(1);
  const QatResult c = quantization_aware_training(s.model, s.train_x, s.train.labels, options);
  omp_set_num_threads(threads);
  {
    SCOPED_TRACE("two runs, 2 threads");
    expect_same_results(a, b);
  }
  SCOPED_TRACE("2 threads vs 1 thread");
  expect_same_results(a, c);
}

TEST(Qat, SignBinaryWithDistillationIsBitIdenticalAcrossThreadCounts) {
  const Synthetic s = make_synthetic();
  QatOptions options = small_qat(1);
  options.epochs = 2;
  options.batch_size = 100;
  options.distill = 0.5f;
  const int threads = omp_get_max_threads();
  omp_set_num_threads(2);
  const QatResult a = quantization_aware_training(s.model, s.train_x, s.train.labels, options);
  omp_set_num_threads(1);
  const QatResult b = quantization_aware_training(s.model, s.train_x, s.train.labels, options);
  omp_set_num_threads(threads);
  expect_same_results(a, b);
  options.distill = 1.5f;
  EXPECT_THROW(quantization_aware_training(s.model, s.train_x, s.train.labels, options), Error);
  options.distill = 0.0f;
  options.sign_ste_range = 0.0f;
  EXPECT_THROW(quantization_aware_training(s.model, s.train_x, s.train.labels, options), Error);
}

}  // namespace
}  // namespace lowbit
