// Each optimizer's update, each schedule, label smoothing and clipping against values worked out
// by hand from the formulas (PyTorch's torch.optim definitions).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "lowbit/train.h"
#include "train/adam.h"
#include "train/batching.h"
#include "train/optimizer.h"
#include "train/sgd.h"

namespace lowbit {
namespace {

// One parameter tensor [2] and a fixed gradient sequence.
struct Problem {
  Tensor p{Shape{2}};
  std::vector<Tensor*> params{&p};
  Problem() {
    p[0] = 1.0f;
    p[1] = -2.0f;
  }
};

Tensor grad(float a, float b) {
  Tensor g(Shape{2});
  g[0] = a;
  g[1] = b;
  return g;
}

TEST(Optimizer, AdamMatchesTheFormula) {
  Problem s;
  Adam adam(s.params, 0.1f, 0.9f, 0.999f, 1e-8f);
  // Step 1: m = 0.1 g, v = 0.001 g^2, m_hat = g, v_hat = g^2: p -= 0.1 * g / (|g| + 1e-8).
  adam.step(std::vector<Tensor>{grad(0.5f, -4.0f)});
  EXPECT_NEAR(s.p[0], 1.0 - 0.1, 1e-6);
  EXPECT_NEAR(s.p[1], -2.0 + 0.1, 1e-6);
  // Step 2 with g = (1, 0): m = 0.09*0.5*... worked out in double.
  adam.step(std::vector<Tensor>{grad(1.0f, 0.0f)});
  const double m0 = 0.9 * 0.05 + 0.1 * 1.0, v0 = 0.999 * 0.00025 + 0.001 * 1.0;
  const double m1 = 0.9 * -0.4, v1 = 0.999 * 0.016;
  const double b1 = 1 - 0.81, b2 = 1 - 0.998001;
  EXPECT_NEAR(s.p[0], 0.9 - 0.1 * (m0 / b1) / (std::sqrt(v0 / b2) + 1e-8), 1e-6);
  EXPECT_NEAR(s.p[1], -1.9 - 0.1 * (m1 / b1) / (std::sqrt(v1 / b2) + 1e-8), 1e-6);
  EXPECT_EQ(adam.steps(), 2);
}

TEST(Optimizer, AdamL2AndAdamWDecoupledDecay) {
  Problem l2, decoupled;
  Adam adam(l2.params, 0.1f, 0.9f, 0.999f, 1e-8f, false);
  Adam adamw(decoupled.params, 0.1f, 0.9f, 0.999f, 1e-8f, true);
  adam.set_weight_decay({0.5f});
  adamw.set_weight_decay({0.5f});
  // L2: g' = g + 0.5 p = (0.5 + 0.5, 0.25 - 1) = (1, -0.75); first Adam step moves by lr sign(g').
  adam.step(std::vector<Tensor>{grad(0.5f, 0.25f)});
  EXPECT_NEAR(l2.p[0], 0.9, 1e-6);
  EXPECT_NEAR(l2.p[1], -1.9, 1e-6);
  // AdamW: p *= 1 - 0.1 * 0.5, then p -= 0.1 sign(g).
  adamw.step(std::vector<Tensor>{grad(0.5f, 0.25f)});
  EXPECT_NEAR(decoupled.p[0], 0.95 - 0.1, 1e-6);
  EXPECT_NEAR(decoupled.p[1], -1.9 - 0.1, 1e-6);
}

TEST(Optimizer, SgdMomentumAndNesterov) {
  Problem plain, momentum, nesterov;
  Sgd sgd(plain.params, 0.1f, 0.0f, false);
  Sgd heavy(momentum.params, 0.1f, 0.9f, false);
  Sgd ahead(nesterov.params, 0.1f, 0.9f, true);
  for (Sgd* o : {&sgd, &heavy, &ahead}) {
    o->step(std::vector<Tensor>{grad(1.0f, 2.0f)});
    o->step(std::vector<Tensor>{grad(1.0f, 2.0f)});
  }
  // Plain: two steps of -0.1 g.
  EXPECT_NEAR(plain.p[0], 1.0 - 0.2, 1e-6);
  EXPECT_NEAR(plain.p[1], -2.0 - 0.4, 1e-6);
  // Momentum: buf = g, then 1.9 g; p -= 0.1 (g + 1.9 g).
  EXPECT_NEAR(momentum.p[0], 1.0 - 0.29, 1e-6);
  EXPECT_NEAR(momentum.p[1], -2.0 - 0.58, 1e-6);
  // Nesterov: steps use g + 0.9 buf: 1.9 g, then g + 0.9 * 1.9 g = 2.71 g.
  EXPECT_NEAR(nesterov.p[0], 1.0 - 0.1 * (1.9 + 2.71), 1e-6);
  EXPECT_NEAR(nesterov.p[1], -2.0 - 0.2 * (1.9 + 2.71), 1e-6);
}

TEST(Optimizer, SgdWeightDecayAndItsExclusionOfBiases) {
  Tensor weight(Shape{1, 1}), bias(Shape{1});
  weight[0] = 2.0f;
  bias[0] = 2.0f;
  std::vector<Tensor*> params{&weight, &bias};
  TrainOptions options;
  options.optimizer = OptimizerKind::sgd;
  options.learning_rate = 0.5f;
  options.momentum = 0;
  options.weight_decay = 0.1f;
  options.decay_bias_and_norm = false;
  auto sgd = make_optimizer(options, params);
  std::vector<Tensor> g{Tensor(Shape{1, 1}), Tensor(Shape{1})};
  g[0][0] = 1.0f;
  g[1][0] = 1.0f;
  sgd->step(g);
  EXPECT_NEAR(weight[0], 2.0 - 0.5 * (1.0 + 0.1 * 2.0), 1e-6);  // decayed
  EXPECT_NEAR(bias[0], 2.0 - 0.5 * 1.0, 1e-6);                  // rank 1: not decayed
}

TEST(Schedule, ValuesAtKnownSteps) {
  Schedule s;
  EXPECT_FLOAT_EQ(scheduled_learning_rate(s, 0.1f, 57, 100, 10), 0.1f);
  s.kind = ScheduleKind::step;
  s.step_epochs = 3;
  s.gamma = 0.5f;
  EXPECT_FLOAT_EQ(scheduled_learning_rate(s, 0.1f, 29, 100, 10), 0.1f);
  EXPECT_FLOAT_EQ(scheduled_learning_rate(s, 0.1f, 30, 100, 10), 0.05f);
  EXPECT_FLOAT_EQ(scheduled_learning_rate(s, 0.1f, 65, 100, 10), 0.025f);
  s.kind = ScheduleKind::cosine;
  EXPECT_FLOAT_EQ(scheduled_learning_rate(s, 0.1f, 0, 100, 10), 0.1f);
  EXPECT_FLOAT_EQ(scheduled_learning_rate(s, 0.1f, 50, 100, 10), 0.05f);
  EXPECT_NEAR(scheduled_learning_rate(s, 0.1f, 25, 100, 10), 0.05 * (1 + std::sqrt(0.5)), 1e-7);
  s.kind = ScheduleKind::one_cycle;
  s.warmup = 0.25f;  // peak at step 25 of 100
  EXPECT_FLOAT_EQ(scheduled_learning_rate(s, 0.1f, 0, 100, 10), 0.004f);
  EXPECT_NEAR(scheduled_learning_rate(s, 0.1f, 10, 100, 10), 0.004 + 0.096 * 0.4, 1e-8);
  EXPECT_FLOAT_EQ(scheduled_learning_rate(s, 0.1f, 25, 100, 10), 0.1f);
  EXPECT_NEAR(scheduled_learning_rate(s, 0.1f, 70, 100, 10), 0.1 * 30 / 75, 1e-8);
  EXPECT_NEAR(scheduled_learning_rate(s, 0.1f, 99, 100, 10), 0.1 / 75, 1e-8);
}

TEST(Loss, LabelSmoothingLossAndGradient) {
  // log-probabilities of one sample over 4 classes, label 2.
  Tensor logp(Shape{1, 4});
  const float values[] = {std::log(0.1f), std::log(0.2f), std::log(0.6f), std::log(0.1f)};
  for (int k = 0; k < 4; ++k) logp[k] = values[k];
  const uint8_t label = 2;
  Tensor d;
  int64_t correct = 0;
  const double loss = nll(logp, &label, &d, 0.5f, &correct, nullptr, 0.2f);
  double sum = 0;
  for (float v : values) sum += v;
  EXPECT_NEAR(loss, -(0.8 * values[2] + 0.05 * sum), 1e-6);
  EXPECT_EQ(correct, 1);
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(d[k], -0.5 * (0.05 + (k == 2 ? 0.8 : 0.0)), 1e-7) << k;
  // eps 0 is the plain NLL.
  EXPECT_NEAR(nll(logp, &label, &d, 1.0f, &correct), -values[2], 1e-6);
}

TEST(Loss, ClippingScalesToTheGlobalNorm) {
  std::vector<Tensor> g{Tensor(Shape{2}), Tensor(Shape{1})};
  g[0][0] = 3.0f;
  g[0][1] = 0.0f;
  g[1][0] = 4.0f;  // global norm 5
  EXPECT_DOUBLE_EQ(clip_gradient_norm(g, 10.0f), 5.0);
  EXPECT_EQ(g[0][0], 3.0f);  // under the limit: unchanged
  EXPECT_DOUBLE_EQ(clip_gradient_norm(g, 1.0f), 5.0);
  EXPECT_NEAR(g[0][0], 0.6, 1e-6);
  EXPECT_NEAR(g[1][0], 0.8, 1e-6);
}

}  // namespace
}  // namespace lowbit
