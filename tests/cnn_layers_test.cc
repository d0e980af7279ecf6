// CNN layers: finite-difference gradient checks (tiny-dnn style) for each, a reference convolution,
// oneDNN against im2col, batch norm's running statistics, dropout's masks and the fixed-order GEMM.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/model.h"
#include "lowbit/train.h"
#include "nn/conv2d_backend.h"
#include "nn/gemm.h"

namespace lowbit {
namespace {

Tensor random_tensor(const Shape& shape, std::mt19937_64& rng, float scale = 1.0f) {
  Tensor t(shape);
  for (float& v : t.values()) v = uniform_float(rng, -scale, scale);
  return t;
}

// Distinct values 0.05 apart in random order: finite differences of 1e-3 never swap a maximum.
Tensor distinct_tensor(const Shape& shape, std::mt19937_64& rng) {
  Tensor t(shape);
  std::vector<int64_t> order(t.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  for (int64_t i = 0; i < t.size(); ++i) t[i] = 0.05f * static_cast<float>(order[i]) - 1.0f;
  return t;
}

// Runs a layer's general form on copies of `inputs` and returns sum(y * r) in double.
double probe_loss(const Layer& layer, const std::vector<Tensor>& inputs, const ForwardMode& mode,
                  const Tensor& r) {
  std::vector<const Tensor*> pointers;
  for (const Tensor& t : inputs) pointers.push_back(&t);
  Tensor y;
  SavedTensors saved;
  layer.forward_node(pointers, y, mode, saved);
  double loss = 0;
  for (int64_t i = 0; i < y.size(); ++i) loss += double{y[i]} * r[i];
  return loss;
}

// Loss = sum(y * r) for a fixed random r, so dLoss/dy = r. Checks every input gradient and every
// parameter gradient against central differences, |analytic - numeric| <= tolerance * max(1, |numeric|).
void check_gradients(Layer& layer, std::vector<Tensor> inputs, const ForwardMode& mode,
                     double tolerance, float h = 1e-3f) {
  std::mt19937_64 rng(7);
  std::vector<const Tensor*> pointers;
  for (const Tensor& t : inputs) pointers.push_back(&t);
  Tensor y;
  SavedTensors saved;
  layer.forward_node(pointers, y, mode, saved);
  const Tensor r = random_tensor(y.shape(), rng);
  std::vector<Tensor> dx(inputs.size());
  std::vector<Tensor*> dx_pointers;
  for (Tensor& t : dx) dx_pointers.push_back(&t);
  std::vector<Tensor> grads;
  for (const Tensor& p : static_cast<const Layer&>(layer).parameters()) grads.emplace_back(p.shape());
  layer.backward_node(pointers, y, r, dx_pointers, grads, saved);

  auto expect_near = [&](float analytic, double numeric, const std::string& what) {
    EXPECT_NEAR(analytic, numeric, tolerance * std::max(1.0, std::fabs(numeric)))
        << layer.kind() << " " << what;
  };
  auto numeric = [&](float& value) {
    const float keep = value;
    value = keep + h;
    const double up = probe_loss(layer, inputs, mode, r);
    value = keep - h;
    const double down = probe_loss(layer, inputs, mode, r);
    value = keep;
    return (up - down) / (2.0 * h);
  };
  for (size_t j = 0; j < inputs.size(); ++j) {
    ASSERT_EQ(dx[j].size(), inputs[j].size());
    for (int64_t i = 0; i < inputs[j].size(); ++i)
      expect_near(dx[j][i], numeric(inputs[j][i]), "d input " + std::to_string(j) + "[" + std::to_string(i) + "]");
  }
  auto params = layer.parameters();
  for (size_t p = 0; p < params.size(); ++p)
    for (int64_t i = 0; i < params[p].size(); ++i)
      expect_near(grads[p][i], numeric(params[p][i]), "param " + std::to_string(p) + "[" + std::to_string(i) + "]");
}

const ForwardMode kEval{}, kTrain{true, 1234};

Conv2dOptions conv_options(int64_t out, int64_t kh, int64_t kw, int64_t stride, int64_t pad,
                           int64_t groups, bool bias) {
  Conv2dOptions o;
  o.out_channels = out;
  o.window = {kh, kw, stride, stride, pad, pad};
  o.groups = groups;
  o.bias = bias;
  return o;
}

// Convolution straight from its definition, in double: the specification.
Tensor reference_conv(const Conv2d& conv, const Tensor& x, const Shape& input) {
  const Conv2dOptions& o = conv.options();
  const int64_t batch = x.dim(0), c_in = input[0], h = input[1], w = input[2];
  const auto [oh_size, ow_size] = o.window.output_size(h, w);
  const int64_t group_in = c_in / o.groups, group_out = o.out_channels / o.groups;
  Tensor y({batch, o.out_channels, oh_size, ow_size});
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t oc = 0; oc < o.out_channels; ++oc)
      for (int64_t oh = 0; oh < oh_size; ++oh)
        for (int64_t ow = 0; ow < ow_size; ++ow) {
          double sum = o.bias ? conv.parameters()[1][oc] : 0.0;
          const int64_t g = oc / group_out;
          for (int64_t c = 0; c < group_in; ++c)
            for (int64_t i = 0; i < o.window.kernel_h; ++i)
              for (int64_t j = 0; j < o.window.kernel_w; ++j) {
                const int64_t ih = oh * o.window.stride_h - o.window.pad_h + i;
                const int64_t iw = ow * o.window.stride_w - o.window.pad_w + j;
                if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                sum += double{conv.weight()[((oc * group_in + c) * o.window.kernel_h + i) * o.window.kernel_w + j]} *
                       x[((n * c_in + g * group_in + c) * h + ih) * w + iw];
              }
          y[((n * o.out_channels + oc) * oh_size + oh) * ow_size + ow] = static_cast<float>(sum);
        }
  return y;
}

struct ConvCase {
  const char* name;
  Shape input;
  Conv2dOptions options;
};

const ConvCase kConvCases[] = {
    {"3x3 same", {3, 5, 5}, conv_options(4, 3, 3, 1, 1, 1, true)},
    {"3x3 stride 2 no bias", {2, 7, 6}, conv_options(3, 3, 3, 2, 1, 1, false)},
    {"2x3 kernel stride 2", {2, 5, 6}, conv_options(3, 2, 3, 2, 0, 1, true)},
    {"groups 2", {4, 5, 5}, conv_options(6, 3, 3, 1, 1, 2, true)},
    {"depthwise stride 2", {3, 6, 6}, conv_options(3, 3, 3, 2, 1, 3, false)},
    {"1x1 direct", {3, 4, 4}, conv_options(5, 1, 1, 1, 0, 1, true)},
    {"1x1 stride 2 shortcut", {3, 5, 5}, conv_options(4, 1, 1, 2, 0, 1, false)},
    {"5x5 on a 4x4 image, padding 2", {2, 4, 4}, conv_options(2, 5, 5, 1, 2, 1, true)},
};

TEST(Conv2d, MatchesTheReferenceConvolution) {
  for (const ConvCase& c : kConvCases) {
    std::mt19937_64 rng(11);
    Conv2d conv(c.input, c.options);
    conv.init(rng);
    if (c.options.bias)
      for (float& b : conv.parameters()[1].values()) b = uniform_float(rng, -1, 1);
    Shape batch_shape = c.input;
    batch_shape.insert(batch_shape.begin(), 3);
    const Tensor x = random_tensor(batch_shape, rng);
    Tensor y;
    conv.forward(x, y);
    const Tensor expected = reference_conv(conv, x, c.input);
    ASSERT_EQ(y.shape(), expected.shape()) << c.name;
    for (int64_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], expected[i], 1e-5) << c.name << " [" << i << "]";
  }
}

TEST(GradientCheck, Conv2dEveryCase) {
  for (const ConvCase& c : kConvCases) {
    SCOPED_TRACE(c.name);
    std::mt19937_64 rng(12);
    Conv2d conv(c.input, c.options);
    conv.init(rng);
    Shape batch_shape = c.input;
    batch_shape.insert(batch_shape.begin(), 2);
    check_gradients(conv, {random_tensor(batch_shape, rng)}, kEval, 2e-3, 1e-2f);
  }
}

// Shapes for oneDNN against im2col: enough channels for its blocked layouts (16 and more), odd
// sizes, stride 2 with and without padding, groups, depthwise, 1x1, bias and none.
const ConvCase kBackendCases[] = {
    {"first layer 3->16", {3, 11, 9}, conv_options(16, 3, 3, 1, 1, 1, true)},
    {"16->32 3x3 stride 2", {16, 9, 9}, conv_options(32, 3, 3, 2, 1, 1, false)},
    {"16->32 1x1 stride 2 shortcut", {16, 9, 7}, conv_options(32, 1, 1, 2, 0, 1, false)},
    {"32->32 1x1", {32, 5, 5}, conv_options(32, 1, 1, 1, 0, 1, true)},
    {"17->19 3x3 odd channels", {17, 7, 6}, conv_options(19, 3, 3, 1, 1, 1, true)},
    {"groups 4", {32, 6, 6}, conv_options(64, 3, 3, 1, 1, 4, true)},
    {"depthwise 32 stride 2", {32, 8, 8}, conv_options(32, 3, 3, 2, 1, 32, false)},
    {"5x3 kernel stride 2 no padding", {8, 9, 10}, conv_options(16, 5, 3, 2, 0, 1, true)},
};

struct ConvResults {
  Tensor y, dx, dw;
};

// forward and both backward passes of `conv` on (x, dy) through one backend; dw starts at `dw0`
// to check that the weight gradient is added.
template <typename Forward, typename Data, typename Weights>
ConvResults run_backend(const Conv2d& conv, const ConvGeometry& g, const Tensor& x, const Tensor& dy,
                        const Tensor& dw0, Forward forward, Data data, Weights weights) {
  ConvResults r{Tensor({g.batch, g.out, g.out_h, g.out_w}), Tensor(x.shape()), dw0};
  forward(g, x.data(), conv.weight().data(), r.y.data());
  data(g, conv.weight().data(), dy.data(), r.dx.data());
  weights(g, x.data(), dy.data(), r.dw.data());
  return r;
}

ConvGeometry geometry_of(const Conv2d& conv, const Shape& input, int64_t batch) {
  const Conv2dOptions& o = conv.options();
  const auto [out_h, out_w] = o.window.output_size(input[1], input[2]);
  return {batch, input[0], input[1], input[2], o.out_channels, out_h, out_w, o.groups, o.window};
}

// |a - b| <= tolerance * (1 + max |b|): float sums in two orders.
void expect_close(const Tensor& a, const Tensor& b, double tolerance, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  double scale = 1, worst = 0;
  for (int64_t i = 0; i < b.size(); ++i) scale = std::max(scale, double{std::fabs(b[i])});
  for (int64_t i = 0; i < b.size(); ++i) worst = std::max(worst, double{std::fabs(a[i] - b[i])});
  EXPECT_LE(worst, tolerance * scale) << what;
}

TEST(Conv2d, OneDnnMatchesIm2colOnOddShapes) {
  for (const ConvCase& c : kBackendCases) {
    SCOPED_TRACE(c.name);
    std::mt19937_64 rng(31);
    Conv2d conv(c.input, c.options);
    conv.init(rng);
    const ConvGeometry g = geometry_of(conv, c.input, 5);
    Shape x_shape = c.input;
    x_shape.insert(x_shape.begin(), g.batch);
    const Tensor x = random_tensor(x_shape, rng);
    const Tensor dy = random_tensor({g.batch, g.out, g.out_h, g.out_w}, rng);
    const Tensor dw0 = random_tensor(conv.weight().shape(), rng);
    const ConvResults onednn = run_backend(conv, g, x, dy, dw0, conv2d_forward_onednn,
                                           conv2d_backward_data_onednn, conv2d_backward_weights_onednn);
    const ConvResults im2col = run_backend(conv, g, x, dy, dw0, conv2d_forward_im2col,
                                           conv2d_backward_data_im2col, conv2d_backward_weights_im2col);
    expect_close(onednn.y, im2col.y, 1e-5, "forward");
    expect_close(onednn.dx, im2col.dx, 1e-5, "backward data");
    expect_close(onednn.dw, im2col.dw, 1e-5, "backward weights");
    // And against the definition, in double.
    Tensor y;
    conv.forward(x, y);
    const Tensor expected = reference_conv(conv, x, c.input);
    expect_close(y, expected, 1e-5, "layer forward against the definition");
  }
}

// oneDNN splits work by the thread count it runs with; the layer pins every call to its own
// thread, so the bits are the same whatever OpenMP allows and whichever thread calls.
TEST(Conv2d, SameBitsOnOneAndTwoThreadsAndInsideAParallelRegion) {
  const ConvCase& c = kBackendCases[1];
  std::mt19937_64 rng(32);
  Conv2d conv(c.input, c.options);
  conv.init(rng);
  const ConvGeometry g = geometry_of(conv, c.input, 32);
  const Tensor x = random_tensor({g.batch, g.channels, g.h, g.w}, rng);
  const Tensor dy = random_tensor({g.batch, g.out, g.out_h, g.out_w}, rng);
  const Tensor dw0 = random_tensor(conv.weight().shape(), rng);
  // The layer's own passes, as training runs them.
  auto run = [&] {
    ConvResults r{Tensor(), Tensor(), dw0};
    conv.forward(x, r.y);
    std::vector<Tensor> grads = {dw0};
    conv.backward(x, r.y, dy, &r.dx, grads);
    r.dw = grads[0];
    return r;
  };
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const ConvResults one = run();
  omp_set_num_threads(2);
  const ConvResults two = run();
  std::vector<ConvResults> inside(2);
  int team = 0;
#pragma omp parallel num_threads(2)
  {
    inside[omp_get_thread_num()] = run();
#pragma omp single
    team = omp_get_num_threads();
  }
  ASSERT_EQ(team, 2);
  ASSERT_EQ(two.y.size(), one.y.size());
  omp_set_num_threads(threads);
  ASSERT_EQ(one.y.size(), g.batch * g.out * g.out_h * g.out_w);
  for (const ConvResults* r : std::vector<const ConvResults*>{&two, &inside[0], &inside[1]}) {
    ASSERT_EQ(r->y.size(), one.y.size());
    ASSERT_EQ(r->dx.size(), one.dx.size());
    ASSERT_EQ(r->dw.size(), one.dw.size());
    EXPECT_TRUE(std::equal(one.y.values().begin(), one.y.values().end(), r->y.values().begin()));
    EXPECT_TRUE(std::equal(one.dx.values().begin(), one.dx.values().end(), r->dx.values().begin()));
    EXPECT_TRUE(std::equal(one.dw.values().begin(), one.dw.values().end(), r->dw.values().begin()));
  }
}

// The trainer on a preset whose convolutions have 32 to 128 channels (oneDNN's blocked kernels):
// two ragged shards a batch, the same parameters bit for bit on 1 and 2 threads.
TEST(Conv2d, TrainingGivesTheSameBitsOnOneAndTwoThreads) {
  std::mt19937_64 rng(33);
  const Tensor images = random_tensor({96, 3, 16, 16}, rng);
  std::vector<uint8_t> labels(96);
  for (uint8_t& l : labels) l = static_cast<uint8_t>(rng() % 10);
  TrainOptions options;
  options.epochs = 1;
  options.batch_size = 48;
  options.progress = false;
  auto trained = [&](int threads) {
    Model model = Model::from_description(preset_description("cifar_small", {3, 16, 16}, 10));
    model.init(5);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    train(model, images, labels, options);
    omp_set_num_threads(saved);
    std::vector<float> values;
    for (const Tensor* p : model.parameters()) values.insert(values.end(), p->values().begin(), p->values().end());
    return values;
  };
  const std::vector<float> one = trained(1), two = trained(2);
  ASSERT_EQ(one.size(), two.size());
  EXPECT_TRUE(one == two);
  Model untrained = Model::from_description(preset_description("cifar_small", {3, 16, 16}, 10));
  untrained.init(5);
  EXPECT_NE(one[0], untrained.parameters()[0]->values()[0]);  // it did train
}

TEST(Conv2d, KaimingNormalFanOut) {
  std::mt19937_64 rng(13);
  Conv2d conv({16, 8, 8}, conv_options(64, 3, 3, 1, 1, 1, true));
  conv.init(rng);
  double sum = 0, squares = 0;
  for (float v : conv.weight().values()) sum += v, squares += double{v} * v;
  const double n = static_cast<double>(conv.weight().size());
  EXPECT_NEAR(sum / n, 0.0, 0.005);
  EXPECT_NEAR(std::sqrt(squares / n), std::sqrt(2.0 / (64 * 9)), 0.003);
  for (float b : conv.parameters()[1].values()) EXPECT_EQ(b, 0.0f);
}

TEST(Conv2d, RejectsShapesThatDoNotFit) {
  EXPECT_THROW(Conv2d({3, 2, 2}, conv_options(4, 5, 5, 1, 1, 1, true)), Error);  // 5 > 2 + 2
  EXPECT_THROW(Conv2d({3, 8, 8}, conv_options(4, 3, 3, 1, 1, 2, true)), Error);  // 3 % 2
  EXPECT_THROW(Conv2d({4, 8, 8}, conv_options(3, 3, 3, 1, 1, 2, true)), Error);  // 3 % 2
  EXPECT_THROW(Conv2d({4, 8}, conv_options(3, 3, 3, 1, 1, 1, true)), Error);     // not [C, H, W]
  try {
    Conv2d({3, 2, 2}, conv_options(4, 5, 5, 1, 1, 1, true));
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "kernel 5x5 is larger than the padded input 4x4");
  }
}

TEST(GradientCheck, BatchNormTrainingUsesTheBatchStatistics) {
  std::mt19937_64 rng(14);
  BatchNorm2d bn({3, 2, 3});
  for (float& v : bn.gamma().values()) v = uniform_float(rng, 0.5f, 1.5f);
  for (float& v : bn.beta().values()) v = uniform_float(rng, -0.5f, 0.5f);
  check_gradients(bn, {random_tensor({4, 3, 2, 3}, rng, 2.0f)}, kTrain, 5e-3);
}

TEST(GradientCheck, BatchNormEvaluationUsesTheRunningStatistics) {
  std::mt19937_64 rng(15);
  BatchNorm2d bn({2, 3, 3});
  for (float& v : bn.gamma().values()) v = uniform_float(rng, 0.5f, 1.5f);
  for (float& v : bn.running_mean().values()) v = uniform_float(rng, -0.5f, 0.5f);
  for (float& v : bn.running_var().values()) v = uniform_float(rng, 0.5f, 2.0f);
  check_gradients(bn, {random_tensor({2, 2, 3, 3}, rng)}, kEval, 2e-3);
}

TEST(BatchNorm, TrainingNormalizesEachChannelAndEvaluationUsesRunningStatistics) {
  std::mt19937_64 rng(16);
  BatchNorm2d bn({2, 4, 4});
  Tensor x = random_tensor({8, 2, 4, 4}, rng, 3.0f);
  for (int64_t i = 0; i < x.size(); ++i) x[i] += (i / 16) % 2 ? 5.0f : -2.0f;  // channel offsets
  const Tensor* inputs[] = {&x};
  Tensor y;
  SavedTensors saved;
  bn.forward_node(inputs, y, kTrain, saved);
  ASSERT_EQ(saved.size(), 3u);
  EXPECT_EQ(saved[2][0], 8.0f * 16.0f);
  for (int c = 0; c < 2; ++c) {
    double sum = 0, squares = 0;
    for (int n = 0; n < 8; ++n)
      for (int i = 0; i < 16; ++i) {
        const float v = y[(n * 2 + c) * 16 + i];
        sum += v, squares += double{v} * v;
      }
    EXPECT_NEAR(sum / 128, 0.0, 1e-5);
    EXPECT_NEAR(squares / 128, 1.0, 1e-3);  // epsilon makes it slightly less than 1
  }
  // Evaluation before any update: running mean 0, variance 1, so y = x / sqrt(1 + eps).
  bn.forward(x, y);
  for (int64_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i] / std::sqrt(1.0f + 1e-5f), 1e-5);
}

TEST(BatchNorm, RunningStatisticsPoolTheShardsAsOneBatch) {
  std::mt19937_64 rng(17);
  BatchNorm2d bn({1, 2, 2}, 1e-5f, 0.25f);
  const Tensor whole = random_tensor({6, 1, 2, 2}, rng, 2.0f);
  // Shards of 4 and 2 rows, as the trainer would cut a 6-row batch with smaller shards.
  Tensor a({4, 1, 2, 2}), b({2, 1, 2, 2});
  std::copy_n(whole.data(), 16, a.data());
  std::copy_n(whole.data() + 16, 8, b.data());
  SavedTensors sa, sb;
  Tensor y;
  const Tensor* ia[] = {&a};
  const Tensor* ib[] = {&b};
  bn.forward_node(ia, y, kTrain, sa);
  bn.forward_node(ib, y, kTrain, sb);
  const SavedTensors* shards[] = {&sa, &sb};
  bn.update_running_statistics(shards);
  double mean = 0, variance = 0;
  for (float v : whole.values()) mean += v;
  mean /= 24;
  for (float v : whole.values()) variance += (v - mean) * (v - mean);
  variance /= 23;  // unbiased, as PyTorch's running variance
  EXPECT_NEAR(bn.running_mean()[0], 0.25 * mean, 1e-6);
  EXPECT_NEAR(bn.running_var()[0], 0.75 + 0.25 * variance, 1e-6);
}

TEST(GradientCheck, MaxPool) {
  std::mt19937_64 rng(18);
  Pool2d pool(Pool2d::Op::max, {2, 5, 5}, {2, 2, 2, 2, 0, 0});
  check_gradients(pool, {distinct_tensor({2, 2, 5, 5}, rng)}, kEval, 2e-3);
  Pool2d overlapping(Pool2d::Op::max, {2, 5, 5}, {3, 3, 2, 2, 1, 1});
  check_gradients(overlapping, {distinct_tensor({2, 2, 5, 5}, rng)}, kEval, 2e-3);
}

// On ties the first maximum of the window (row-major) takes the gradient, in the 2x2 fast path
// and in the general loop (3x3 windows) alike.
TEST(Pool2d, MaxPoolTiesGoToTheFirstMaximum) {
  for (const Window2d& win : {Window2d{2, 2, 2, 2, 0, 0}, Window2d{3, 3, 3, 3, 0, 0}}) {
    Pool2d pool(Pool2d::Op::max, {1, 3, 3}, win);
    Tensor x({1, 1, 3, 3}, {0, 5, 5, 5, 5, 0, 0, 0, 0}), y, dx;
    pool.forward(x, y);
    ASSERT_EQ(y.size(), 1);
    EXPECT_EQ(y[0], 5.0f);
    const Tensor dy({1, 1, 1, 1}, {2.0f});
    pool.backward(x, y, dy, &dx, {});
    const std::vector<float> expected = {0, 2, 0, 0, 0, 0, 0, 0, 0};
    EXPECT_EQ(std::vector<float>(dx.values().begin(), dx.values().end()), expected) << win.kernel_h;
  }
}

TEST(GradientCheck, AvgPool) {
  std::mt19937_64 rng(19);
  Pool2d pool(Pool2d::Op::average, {2, 4, 6}, {2, 3, 2, 3, 0, 0});
  check_gradients(pool, {random_tensor({2, 2, 4, 6}, rng)}, kEval, 2e-3);
  Pool2d padded(Pool2d::Op::average, {2, 5, 5}, {3, 3, 2, 2, 1, 1}, false);
  check_gradients(padded, {random_tensor({2, 2, 5, 5}, rng)}, kEval, 2e-3);
}

TEST(Pool2d, AveragesAndMaximaOfAKnownImage) {
  Tensor x({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor y;
  Pool2d(Pool2d::Op::max, {1, 2, 4}, {2, 2, 2, 2, 0, 0}).forward(x, y);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 1, 2}));
  EXPECT_EQ(y[0], 6.0f);
  EXPECT_EQ(y[1], 8.0f);
  Pool2d(Pool2d::Op::average, {1, 2, 4}, {2, 2, 2, 2, 0, 0}).forward(x, y);
  EXPECT_EQ(y[0], 3.5f);
  EXPECT_EQ(y[1], 5.5f);
  // Padding 1 with a 2x2 kernel: the corner window holds one value, divided by 4 or by 1.
  Pool2d(Pool2d::Op::average, {1, 2, 4}, {2, 2, 2, 2, 1, 1}, true).forward(x, y);
  EXPECT_EQ(y[0], 0.25f);
  Pool2d(Pool2d::Op::average, {1, 2, 4}, {2, 2, 2, 2, 1, 1}, false).forward(x, y);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_THROW(Pool2d(Pool2d::Op::max, {1, 2, 4}, {2, 2, 2, 2, 2, 2}), Error);  // pad > kernel / 2
}

TEST(GradientCheck, GlobalPools) {
  std::mt19937_64 rng(20);
  GlobalPool average(Pool2d::Op::average, {3, 3, 4});
  check_gradients(average, {random_tensor({2, 3, 3, 4}, rng)}, kEval, 2e-3);
  GlobalPool max(Pool2d::Op::max, {3, 3, 4});
  check_gradients(max, {distinct_tensor({2, 3, 3, 4}, rng)}, kEval, 2e-3);
  Tensor y;
  average.forward(random_tensor({2, 3, 3, 4}, rng), y);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 1, 1}));
}

TEST(GradientCheck, Flatten) {
  std::mt19937_64 rng(21);
  Flatten flatten;
  check_gradients(flatten, {random_tensor({2, 3, 2, 2}, rng)}, kEval, 2e-3);
  EXPECT_EQ(flatten.output_shape({3, 2, 2}), (Shape{12}));
}

TEST(GradientCheck, DropoutWithAFixedMask) {
  std::mt19937_64 rng(22);
  Dropout dropout(0.4f);
  check_gradients(dropout, {random_tensor({4, 50}, rng)}, kTrain, 2e-3);
}

TEST(Dropout, MaskDependsOnTheSeedOnlyAndEvaluationIsIdentity) {
  std::mt19937_64 rng(23);
  Dropout dropout(0.3f);
  const Tensor x = random_tensor({8, 500}, rng);
  const Tensor* inputs[] = {&x};
  Tensor a, b, c;
  SavedTensors saved;
  dropout.forward_node(inputs, a, {true, 5}, saved);
  int64_t dropped = 0;
  for (int64_t i = 0; i < a.size(); ++i) {
    if (a[i] == 0.0f) ++dropped;
    else EXPECT_FLOAT_EQ(a[i], x[i] / 0.7f);
  }
  EXPECT_NEAR(static_cast<double>(dropped) / a.size(), 0.3, 0.02);
  // The same seed on another thread gives the same mask; another seed another mask.
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    {
      SavedTensors s;
      dropout.forward_node(inputs, b, {true, 5}, s);
    }
  }
  EXPECT_TRUE(std::equal(a.values().begin(), a.values().end(), b.values().begin()));
  dropout.forward_node(inputs, c, {true, 6}, saved);
  EXPECT_FALSE(std::equal(a.values().begin(), a.values().end(), c.values().begin()));
  dropout.forward_node(inputs, c, kEval, saved);
  EXPECT_TRUE(std::equal(x.values().begin(), x.values().end(), c.values().begin()));
}

TEST(GradientCheck, Add) {
  std::mt19937_64 rng(24);
  Add add({{2, 3, 3}, {2, 3, 3}});
  check_gradients(add, {random_tensor({2, 2, 3, 3}, rng), random_tensor({2, 2, 3, 3}, rng)}, kEval, 2e-3);
  EXPECT_THROW(Add({{2, 3, 3}, {2, 4, 4}}), Error);
  EXPECT_THROW(Add({{2, 3, 3}}), Error);
}

// gemm() sums in an order fixed by the shapes: the same bits on any thread, from any alignment.
TEST(Gemm, SameBitsOnEveryThreadAndAlignment) {
  std::mt19937_64 rng(25);
  const int64_t m = 37, n = 45, k = 300;
  std::vector<float> a(m * k + 16), b(k * n + 16);
  for (float& v : a) v = uniform_float(rng, -1, 1);
  for (float& v : b) v = uniform_float(rng, -1, 1);
  std::vector<float> first(m * n), again(m * n);
  gemm(m, n, k, a.data(), k, false, b.data(), n, false, first.data(), n, false);
  // Shifted copies of the operands: other alignments, same values.
  std::vector<float> a2(a.size() + 3), b2(b.size() + 5);
  std::copy(a.begin(), a.end(), a2.begin() + 3);
  std::copy(b.begin(), b.end(), b2.begin() + 5);
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    gemm(m, n, k, a2.data() + 3, k, false, b2.data() + 5, n, false, again.data(), n, false);
  }
  EXPECT_EQ(first, again);
  double worst = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p) sum += double{a[i * k + p]} * b[p * n + j];
      worst = std::max(worst, std::fabs(sum - first[i * n + j]));
    }
  EXPECT_LT(worst, 1e-4);
  // Transposed operands give the same product.
  std::vector<float> at(k * m), bt(n * k), third(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p) at[p * m + i] = a[i * k + p];
  for (int64_t p = 0; p < k; ++p)
    for (int64_t j = 0; j < n; ++j) bt[j * k + p] = b[p * n + j];
  gemm(m, n, k, at.data(), m, true, bt.data(), k, true, third.data(), n, false);
  for (int64_t i = 0; i < m * n; ++i) EXPECT_NEAR(third[i], first[i], 1e-4);
}

}  // namespace
}  // namespace lowbit
