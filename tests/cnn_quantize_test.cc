// CNNs on the integer engine: batch-norm folding, the integer operators against their real-valued
// meaning, the engine against the simulation at every width and preset, files and hostile graphs.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "cnn_fixtures.h"
#include "kernels/integer_ops.h"
#include "kernels/requantize.h"
#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/quantized_model.h"
#include "lowbit/sensitivity.h"
#include "lowbit/simulated.h"
#include "lowbit/train.h"
#include "quant/inference_graph.h"
#include "util/container.h"

namespace lowbit {
namespace {

using Json = nlohmann::json;

// `count` 2x6x6 images whose label (0..2) says which quadrant is brightest.
ImageSet quadrant_pixels(int64_t count, uint32_t seed) {
  std::mt19937 gen(seed);
  ImageSet images;
  images.count = count;
  images.channels = 2;
  images.height = images.width = 6;
  for (int64_t n = 0; n < count; ++n) {
    const int label = static_cast<int>(gen() % 3);
    images.labels.push_back(static_cast<uint8_t>(label));
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j) {
          const bool bright = (i < 3) + 2 * (j < 3) == label + 1;
          images.pixels.push_back(static_cast<uint8_t>(gen() % 128 + (bright ? 127 : 0)));
        }
  }
  return images;
}

const std::vector<float> kMean = {0.5f, 0.5f}, kStd = {0.3f, 0.3f};

// The tiny ResNet trained for a few epochs on quadrant images, so batch norm has real statistics.
struct Trained {
  Model model;
  ImageSet train, test;
  Tensor calibration, test_images;
};

const Trained& trained() {
  static const Trained t = [] {
    Trained r{Model::from_description(testing_models::residual_description()), quadrant_pixels(256, 1),
              quadrant_pixels(200, 2), {}, {}};
    r.model.init(3);
    r.model.metadata = {{"mean", kMean}, {"std", kStd}};
    r.calibration = normalized_images(r.train, kMean, kStd, 0, r.train.count);
    r.test_images = normalized_images(r.test, kMean, kStd, 0, r.test.count);
    TrainOptions options;
    options.epochs = 4;
    options.batch_size = 32;
    options.learning_rate = 1e-2f;
    options.progress = false;
    train(r.model, r.calibration, r.train.labels, options);
    return r;
  }();
  return t;
}

std::vector<int32_t> engine_logits(const QuantizedModel& q, const ImageSet& images) {
  std::vector<int32_t> logits(images.count * q.num_classes());
  q.logits(images.pixels.data(), images.count, logits.data());
  return logits;
}

TEST(InferenceGraph, FoldsBatchNormAndDropsDropoutWithoutChangingTheFunction) {
  const Trained& t = trained();
  const Model folded = inference_graph(t.model);
  size_t bn = 0, dropout = 0;
  for (size_t i = 0; i < t.model.node_count(); ++i) {
    bn += t.model.layer(i).kind() == "batch_norm";
    dropout += t.model.layer(i).kind() == "dropout";
  }
  ASSERT_EQ(bn, 6u);
  EXPECT_EQ(folded.node_count(), t.model.node_count() - bn - dropout);
  Activations a, b;
  const Tensor& y = t.model.forward(t.test_images, a);
  const Tensor& z = folded.forward(t.test_images, b);
  ASSERT_EQ(y.size(), z.size());
  for (int64_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], z[i], 1e-4f * (1 + std::fabs(y[i]))) << i;
}

// Codes drawn at random, the real-valued result of the op on their grids, rounded: the engine's
// operators must give it, up to one code where a value falls near a rounding tie.
TEST(IntegerOps, AddAndAveragePoolingAreTheRealOperationRounded) {
  std::mt19937 gen(5);
  const float s_a = 0.031f, s_b = 0.0125f, s_out = 0.04f;
  const int32_t z_a = 12, z_b = 200, z_out = 30;
  const int64_t n = 4096;
  std::vector<uint8_t> a(n), b(n), y(n);
  for (int64_t i = 0; i < n; ++i) a[i] = static_cast<uint8_t>(gen()), b[i] = static_cast<uint8_t>(gen());
  const double largest = std::max(s_a, s_b);
  int32_t m[2], e[2], out_m, out_e;
  kernels::quantize_multiplier(s_a / (2 * largest), &m[0], &e[0]);
  kernels::quantize_multiplier(s_b / (2 * largest), &m[1], &e[1]);
  kernels::quantize_multiplier(2 * largest / (std::ldexp(1.0, kernels::kAddLeftShift) * s_out), &out_m, &out_e);
  const uint8_t* xs[2] = {a.data(), b.data()};
  const int32_t zs[2] = {z_a, z_b};
  kernels::AddArgs args;
  args.x = xs, args.zero_point = zs, args.multiplier = m, args.shift = e;
  args.out_multiplier = out_m, args.out_shift = out_e, args.out_zero_point = z_out;
  kernels::add(args, n, y.data());
  int64_t exact = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double real = s_a * (a[i] - z_a) + s_b * (b[i] - z_b);
    const double expected = std::clamp(std::nearbyint(real / s_out) + z_out, 0.0, 255.0);
    EXPECT_LE(std::fabs(y[i] - expected), 1.0) << i;
    exact += y[i] == expected;
  }
  EXPECT_GT(exact, n * 99 / 100);

  // 3x3 average pooling, stride 2, padding 1, both divisor rules, on a 7x5x3 image.
  const kernels::ImageShape in{7, 5, 3}, out{4, 3, 3};
  std::vector<uint8_t> x(in.size()), pooled(out.size());
  for (uint8_t& v : x) v = static_cast<uint8_t>(gen());
  for (const bool include_pad : {true, false}) {
    kernels::AvgPoolArgs p;
    p.window = {3, 3, 2, 2, 1, 1};
    p.count_include_pad = include_pad;
    p.in_zero_point = 7, p.out_zero_point = 3;
    p.sum_shift = kernels::avg_pool_sum_shift(9);
    std::vector<int32_t> pm(9), pe(9);
    for (int d = 1; d <= 9; ++d)
      kernels::quantize_multiplier(0.02 / (0.015 * d) / std::ldexp(1.0, p.sum_shift), &pm[d - 1], &pe[d - 1]);
    p.multiplier = pm.data(), p.shift = pe.data();
    kernels::avg_pool(x.data(), 1, in, out, p, pooled.data());
    for (int64_t oy = 0; oy < out.h; ++oy)
      for (int64_t ox = 0; ox < out.w; ++ox)
        for (int64_t c = 0; c < 3; ++c) {
          double sum = 0;
          int inside = 0;
          for (int64_t ky = 0; ky < 3; ++ky)
            for (int64_t kx = 0; kx < 3; ++kx) {
              const int64_t yy = oy * 2 - 1 + ky, xx = ox * 2 - 1 + kx;
              if (yy < 0 || yy >= in.h || xx < 0 || xx >= in.w) continue;
              sum += 0.02 * (x[(yy * in.w + xx) * 3 + c] - 7), ++inside;
            }
          const double mean = sum / (include_pad ? 9 : inside) / 0.015;
          // Rounded once, half away from zero: exact unless the mean lies next to a half.
          const double expected = std::clamp(std::round(mean) + 3, 0.0, 255.0);
          if (std::fabs(mean - std::floor(mean) - 0.5) < 1e-3) continue;
          EXPECT_EQ(pooled[(oy * out.w + ox) * 3 + c], expected) << oy << " " << ox << " " << c;
        }
  }
}

// The average pool's requantization rounds once (docs/quantization.md, section 4): with the sum
// shifted left, every output is the single rounding of S * M * 2^(e - 31 + L) unless that value
// lies within 2^-L of a half; without the shift (files before version 4) about one in eight was
// one code off, which is what this test exists to catch.
TEST(IntegerOps, AveragePoolRoundsOnceWithTheSumShift) {
  std::mt19937 gen(11);
  const kernels::ImageShape in{4, 4, 16}, out{1, 1, 16};  // a global pool over 16 cells
  int64_t checked = 0, off_without_shift = 0;
  for (int trial = 0; trial < 400; ++trial) {
    // Codes near the input's zero point and s_in / s_out in [1, 4], as after a trained conv: the
    // mean stays on the output grid, and the multiplier's exponent is -2..-4, where the double
    // rounding showed most.
    const int32_t z_in = 40 + static_cast<int32_t>(gen() % 176), z_out = 128;
    std::vector<uint8_t> x(in.size()), y(out.size());
    for (uint8_t& v : x) v = static_cast<uint8_t>(z_in - 20 + static_cast<int32_t>(gen() % 41));
    const double ratio = 1.0 + 3.0 * static_cast<double>(gen() % 1000) / 1000.0;
    for (const int32_t sum_shift : {kernels::avg_pool_sum_shift(16), 0}) {
      std::vector<int32_t> m(16), e(16);
      for (int d = 1; d <= 16; ++d) kernels::quantize_multiplier(ratio / d / std::ldexp(1.0, sum_shift), &m[d - 1], &e[d - 1]);
      kernels::AvgPoolArgs a;
      a.window = {4, 4, 1, 1, 0, 0};
      a.in_zero_point = z_in, a.out_zero_point = z_out, a.sum_shift = sum_shift;
      a.multiplier = m.data(), a.shift = e.data();
      kernels::avg_pool(x.data(), 1, in, out, a, y.data());
      for (int64_t c = 0; c < 16; ++c) {
        int64_t sum = 0;
        for (int64_t cell = 0; cell < 16; ++cell) sum += x[cell * 16 + c] - z_in;
        const double real = std::ldexp(static_cast<double>(sum) * m[15], e[15] - 31 + sum_shift);
        if (std::fabs(std::fabs(real - std::trunc(real)) - 0.5) < 1e-3) continue;
        const double expected = std::clamp(std::round(real) + z_out, 0.0, 255.0);
        if (sum_shift == 0) {
          off_without_shift += y[c] != expected;
        } else {
          EXPECT_EQ(y[c], expected) << "trial " << trial << " channel " << c << " sum " << sum;
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 5000);
  EXPECT_GT(off_without_shift, checked / 50);  // the double rounding the shift removes
}

TEST(IntegerOps, Im2colAndMaxPoolingFollowTheirDefinitions) {
  std::mt19937 gen(6);
  const kernels::ImageShape in{5, 4, 3};
  const kernels::Window w{3, 2, 2, 1, 1, 0};
  const kernels::ImageShape out{3, 3, 3};  // (5 + 2 - 3) / 2 + 1, (4 - 2) / 1 + 1
  std::vector<uint8_t> x(2 * in.size());
  for (uint8_t& v : x) v = static_cast<uint8_t>(gen());
  std::vector<uint8_t> cols(2 * out.h * out.w * 3 * 2 * 3), pooled(2 * out.size());
  kernels::im2col(x.data(), 2, in, w, out, 77, cols.data());
  kernels::max_pool(x.data(), 2, in, w, out, pooled.data());
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t oy = 0; oy < out.h; ++oy)
      for (int64_t ox = 0; ox < out.w; ++ox)
        for (int64_t c = 0; c < 3; ++c) {
          int best = -1;
          for (int64_t ky = 0; ky < 3; ++ky)
            for (int64_t kx = 0; kx < 2; ++kx) {
              const int64_t yy = oy * 2 - 1 + ky, xx = ox + kx;
              const bool inside = yy >= 0 && yy < in.h && xx >= 0 && xx < in.w;
              const int v = inside ? x[n * in.size() + (yy * in.w + xx) * 3 + c] : 77;
              const int64_t row = (n * out.h + oy) * out.w + ox;
              EXPECT_EQ(cols[row * 18 + (ky * 2 + kx) * 3 + c], v);
              if (inside) best = std::max(best, v);
            }
          EXPECT_EQ(pooled[n * out.size() + (oy * out.w + ox) * 3 + c], best);
        }
}

// With bias correction asked for, a graph is planned with and without it, and the correction kept
// unless the plan without it picks the float model's class clearly more often on the calibration
// images (by two standard errors): never clearly worse than the plan without it.
// The folder these tests write their files in, created.
std::string scratch_dir() {
  const std::string dir = std::string(LOWBIT_TEST_TMP) + "/cnn_quantize";
  std::filesystem::create_directories(dir);
  return dir;
}

template <class T>
int64_t argmax_row(const T* row, int64_t cols) {
  return std::max_element(row, row + cols) - row;
}

double top1_agreement(const Tensor& a, const Tensor& b) {
  const int64_t rows = a.dim(0), cols = a.row_size();
  int64_t same = 0;
  for (int64_t r = 0; r < rows; ++r) same += argmax_row(a.data() + r * cols, cols) == argmax_row(b.data() + r * cols, cols);
  return static_cast<double>(same) / static_cast<double>(rows);
}

TEST(CnnEngine, BiasCorrectionIsDroppedOnlyWhereItClearlyHurts) {
  const Trained& t = trained();
  Activations a;
  const Tensor reference = t.model.forward(t.calibration, a);
  const double n = static_cast<double>(t.calibration.dim(0));
  for (const int bits : {2, 3, 4, 8}) {
    const QuantPlan best = plan_quantization(t.model, t.calibration, preset_options("best", bits, bits));
    QuantOptions plain_options = preset_options("best", bits, bits);
    plain_options.bias_correction = false;
    const QuantPlan plain = plan_quantization(t.model, t.calibration, plain_options);
    Tensor best_out, plain_out;
    SimulatedModel(t.model, best).forward(t.calibration, best_out);
    SimulatedModel(t.model, plain).forward(t.calibration, plain_out);
    const double p = top1_agreement(reference, best_out), q = top1_agreement(reference, plain_out);
    EXPECT_GE(p, q - std::max(2.0 * std::sqrt(p * (1 - p) / n), 2.0 / n)) << bits << " bits";
    if (!best.options.bias_correction) {  // then it is the plain plan itself, layer for layer
      ASSERT_EQ(best.layers.size(), plain.layers.size());
      for (size_t l = 0; l < best.layers.size(); ++l) EXPECT_EQ(best.layers[l].bias, plain.layers[l].bias) << l;
    }
  }
}

TEST(CnnEngine, AgreesWithTheSimulationAt8BitsAndTracksTheFloatModel) {
  const Trained& t = trained();
  const QuantPlan plan = plan_quantization(t.model, t.calibration, preset_options("minmax", 8, 8));
  ASSERT_TRUE(plan.graph);
  EXPECT_EQ(plan.layers.size(), 7u);  // stem, 2 + 3 convs, the shortcut, fc
  const QuantizedModel q = QuantizedModel::build(t.model, plan);
  ASSERT_TRUE(q.is_graph());
  const std::vector<int32_t> logits = engine_logits(q, t.test);
  const Tensor engine = q.log_probabilities(logits.data(), t.test.count);
  Tensor simulated;
  SimulatedModel(t.model, plan).forward(t.test_images, simulated);
  Activations a;
  const Tensor& real = t.model.forward(t.test_images, a);
  auto argmax = [](const Tensor& v, int64_t i) {
    return std::max_element(v.data() + i * 3, v.data() + i * 3 + 3) - (v.data() + i * 3);
  };
  int64_t same = 0, same_float = 0;
  double largest_difference = 0;
  for (int64_t i = 0; i < t.test.count; ++i) {
    same += argmax(engine, i) == argmax(simulated, i);
    same_float += argmax(engine, i) == argmax(real, i);
    for (int c = 0; c < 3; ++c)
      largest_difference = std::max(largest_difference, double{std::fabs(engine[i * 3 + c] - simulated[i * 3 + c])});
  }
  EXPECT_GE(same, t.test.count * 99 / 100);
  EXPECT_GE(same_float, t.test.count * 95 / 100);
  EXPECT_LT(largest_difference, 0.1);
  const Evaluation e = q.evaluate(t.test);
  EXPECT_GT(e.accuracy, 0.6);  // the float model learned the quadrants; 8 bits keep that
  EXPECT_EQ(q.macs_per_image(), t.model.multiply_adds());
}

TEST(CnnEngine, EveryPresetAndWidthRunsAndAgreesWithItsSimulationFrom4BitsUp) {
  const Trained& t = trained();
  for (const std::string& method : quantization_methods()) {
    if (method == "loss_aware") {
      EXPECT_THROW(plan_quantization(t.model, t.calibration, preset_options(method, 4, 4)), Error);
      continue;
    }
    for (int bits : {8, 4, 2, 1}) {
      SCOPED_TRACE(method + " " + std::to_string(bits));
      const QuantPlan plan = plan_quantization(t.model, t.calibration, preset_options(method, bits, bits));
      const QuantizedModel q = QuantizedModel::build(t.model, plan);
      EXPECT_EQ(q.weight_bits(), bits);
      const std::vector<int32_t> logits = engine_logits(q, t.test);
      const Tensor engine = q.log_probabilities(logits.data(), t.test.count);
      Tensor simulated;
      SimulatedModel(t.model, plan).forward(t.test_images, simulated);
      int64_t same = 0;
      for (int64_t i = 0; i < t.test.count; ++i)
        same += std::max_element(engine.data() + i * 3, engine.data() + i * 3 + 3) - (engine.data() + i * 3) ==
                std::max_element(simulated.data() + i * 3, simulated.data() + i * 3 + 3) - (simulated.data() + i * 3);
      // At 2 bits and below the tiny model's logits take few values and near-ties go either way.
      if (bits >= 4) {
        EXPECT_GE(same, t.test.count * 9 / 10);
      }
    }
  }
}

TEST(CnnSensitivity, OneConvAtATimeNamedAndOrderedByBitsAndTheSearchRunsTheEngine) {
  const Trained& t = trained();
  const std::vector<int> bits = {1, 8};
  const std::vector<SensitivityRow> rows =
      layer_sensitivity(t.model, t.calibration, t.test_images, t.test.labels, bits, "minmax");
  ASSERT_EQ(rows.size(), 7u * bits.size());  // 6 convs and the fc, at each width
  const Evaluation real = evaluate(t.model, t.test_images, t.test.labels);
  double kl_8 = 0, kl_1 = 0;
  for (size_t i = 0; i < rows.size(); i += 2) {
    const SensitivityRow& wide = rows[i], & narrow = rows[i + 1];
    SCOPED_TRACE(wide.name);
    EXPECT_EQ(wide.linear, i / 2);
    EXPECT_EQ(wide.name, narrow.name);
    EXPECT_EQ(wide.bits, 8);
    EXPECT_EQ(narrow.bits, 1);
    // One layer at 8 bits, the rest float: the float model's answers, nearly.
    EXPECT_NEAR(wide.accuracy, real.accuracy, 0.03);
    EXPECT_LT(wide.kl, 0.01);
    EXPECT_GE(wide.kl, 0.0);
    kl_8 += wide.kl, kl_1 += narrow.kl;
  }
  EXPECT_GT(kl_1, 10 * kl_8);  // 1-bit weights and inputs move the outputs far more
  EXPECT_EQ(rows[0].name, "stem");
  EXPECT_EQ(rows.back().name, "fc");

  // Per-layer widths through the engine: the greedy path starts with every layer at 8 bits and
  // ends with every layer at 1, each point a real quantized model.
  MixedPrecisionOptions options;
  options.bits = {1, 8};
  ImageSet validation = quadrant_pixels(64, 9);
  const std::vector<MixedPrecisionPoint> path =
      mixed_precision_search(t.model, t.calibration, validation, options);
  ASSERT_GE(path.size(), 2u);
  EXPECT_EQ(path.front().weight_bits, std::vector<int>(7, 8));
  EXPECT_EQ(path.back().weight_bits, std::vector<int>(7, 1));
  for (size_t i = 1; i < path.size(); ++i) EXPECT_LT(path[i].weight_bytes, path[i - 1].weight_bytes);
  // A single-layer plan is for simulation only.
  QuantPlan only = plan_quantization(t.model, t.calibration, preset_options("minmax", 8, 8));
  only.layers.resize(1);
  only.only_listed_layers = true;
  EXPECT_THROW(QuantizedModel::build(t.model, only), Error);
}

TEST(CnnEngine, SameLogitsOnOneAndTwoThreadsAndAfterASaveAndLoad) {
  const Trained& t = trained();
  const QuantizedModel q =
      QuantizedModel::build(t.model, plan_quantization(t.model, t.calibration, preset_options("mse_pc", 4, 4)));
  omp_set_num_threads(1);
  const std::vector<int32_t> one = engine_logits(q, t.test);
  omp_set_num_threads(2);
  EXPECT_EQ(engine_logits(q, t.test), one);
  const std::string dir = scratch_dir();
  q.save(dir + "/a.lbq");
  const QuantizedModel loaded = QuantizedModel::load(dir + "/a.lbq");
  EXPECT_EQ(engine_logits(loaded, t.test), one);
  loaded.save(dir + "/b.lbq");
  std::ifstream a(dir + "/a.lbq", std::ios::binary), b(dir + "/b.lbq", std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(a), {}), std::string(std::istreambuf_iterator<char>(b), {}));
}

// A batch of at most one chunk splits each node's output rows among the threads (bands of rows,
// padding and strides at the bands' edges): the same logits as whole images on one thread.
TEST(CnnEngine, SmallBatchesSplitAcrossThreadsGiveTheSameLogits) {
  const Trained& t = trained();
  setenv("LOWBIT_GRAPH_SPLIT", "1", 1);
  for (const char* method : {"minmax", "mse_pc"}) {
    const QuantizedModel q =
        QuantizedModel::build(t.model, plan_quantization(t.model, t.calibration, preset_options(method, 8, 4)));
    omp_set_num_threads(1);
    const std::vector<int32_t> whole = engine_logits(q, t.test);
    const int64_t classes = q.num_classes(), pixels = q.input_size();
    for (int threads : {2, 3})
      for (int64_t batch : {1, 2, 3, 4})
        for (int64_t first : {int64_t{0}, int64_t{17}}) {
          omp_set_num_threads(threads);
          std::vector<int32_t> logits(static_cast<size_t>(batch * classes));
          q.logits(t.test.pixels.data() + first * pixels, batch, logits.data());
          EXPECT_EQ(logits, std::vector<int32_t>(whole.begin() + first * classes, whole.begin() + (first + batch) * classes))
              << method << ", " << threads << " threads, images " << first << ".." << first + batch - 1;
        }
  }
  unsetenv("LOWBIT_GRAPH_SPLIT");
  omp_set_num_threads(2);
}

// A graph node's field changed, the checksum recomputed: every change is a one-line error naming
// the file and the node, never a crash.
TEST(CnnEngine, HostileGraphFieldsAreErrorsNamingTheNode) {
  const Trained& t = trained();
  const QuantizedModel q =
      QuantizedModel::build(t.model, plan_quantization(t.model, t.calibration, preset_options("minmax", 8, 8)));
  const std::string dir = scratch_dir();
  const std::string good = dir + "/good.lbq";
  q.save(good);
  const Container original = read_container(good, "quantized");
  const Json& nodes = original.header["graph"]["nodes"];
  // The first conv (node 0), an add, an average pool.
  size_t add = 0, pool = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i]["op"] == "add" && !add) add = i;
    if (nodes[i]["op"] == "avg_pool") pool = i;
  }
  ASSERT_GT(add, 0u);
  ASSERT_GT(pool, 0u);
  const std::vector<std::pair<std::string, std::function<void(Json&)>>> edits = {
      {"kernel larger than the input", [](Json& g) { g["nodes"][0]["window"][0] = 99; }},
      {"zero stride", [](Json& g) { g["nodes"][0]["window"][2] = 0; }},
      {"padding of a whole kernel", [](Json& g) { g["nodes"][0]["window"][4] = 3; }},
      {"a later input", [](Json& g) { g["nodes"][0]["inputs"] = {5}; }},
      {"input out of range", [](Json& g) { g["nodes"][1]["inputs"] = {-7}; }},
      {"unknown op", [](Json& g) { g["nodes"][0]["op"] = "softmax"; }},
      {"layer skipped", [](Json& g) { g["nodes"][0]["layer"] = 1; }},
      {"shape that does not follow", [](Json& g) { g["nodes"][0]["shape"][2] = 5; }},
      {"add multiplier off", [add](Json& g) { g["nodes"][add]["multiplier"][0] = (1 << 30) + 12345; }},
      {"add with one input", [add](Json& g) { g["nodes"][add]["inputs"] = {g["nodes"][add]["inputs"][0]}; }},
      {"pool divisor multipliers missing", [pool](Json& g) { g["nodes"][pool]["multiplier"] = Json::array(); }},
      {"pool sum shift out of range", [pool](Json& g) { g["nodes"][pool]["sum_shift"] = 17; }},
      {"pool sum shift unlike its multipliers", [pool](Json& g) { g["nodes"][pool]["sum_shift"] = 3; }},
      {"scale zero", [add](Json& g) { g["nodes"][add]["scale"] = 0; }},
      {"zero point past the codes", [add](Json& g) { g["nodes"][add]["zero_point"] = 300; }},
      {"bits 9", [](Json& g) { g["nodes"][0]["bits"] = 9; }},
      {"no logits", [](Json& g) { g["nodes"].erase(g["nodes"].size() - 1); g["nodes"].erase(g["nodes"].size() - 1); }},
      {"nodes not an array", [](Json& g) { g["nodes"] = 3; }},
  };
  for (const auto& [what, edit] : edits) {
    Container c = original;
    edit(c.header["graph"]);
    c.header.erase("blobs");
    const std::string bad = dir + "/bad.lbq";
    std::ofstream(bad, std::ios::binary) << encode_container(c);
    try {
      QuantizedModel::load(bad);
      ADD_FAILURE() << what << ": loaded";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind(bad, 0), 0u) << what << ": " << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << what << ": " << message;
    }
  }
}

// Average pools shift their sums since format version 4. A version-3 file (no sum_shift, the
// multipliers 2^L larger) still loads, runs with shift 0 and saves back byte for byte; a
// sum_shift in a version-3 file is refused.
TEST(CnnEngine, VersionThreeGraphsLoadWithoutTheSumShift) {
  const Trained& t = trained();
  const QuantizedModel q =
      QuantizedModel::build(t.model, plan_quantization(t.model, t.calibration, preset_options("minmax", 8, 8)));
  const std::string dir = scratch_dir();
  q.save(dir + "/v4.lbq");
  Container c = read_container(dir + "/v4.lbq", "quantized");
  EXPECT_EQ(c.version, 4u);
  Container with_shift = c;
  int pools = 0;
  for (Json& n : c.header["graph"]["nodes"]) {
    if (!n.contains("sum_shift")) continue;
    const int shift = n["sum_shift"].get<int>();
    EXPECT_GT(shift, 0);
    for (Json& e : n["shift"]) e = e.get<int>() + shift;  // the same multipliers, 2^shift larger
    n.erase("sum_shift");
    ++pools;
  }
  ASSERT_GT(pools, 0);
  c.version = 3;
  c.header.erase("blobs");
  const std::string old_file = dir + "/v3.lbq";
  std::ofstream(old_file, std::ios::binary) << encode_container(c);
  const QuantizedModel old_model = QuantizedModel::load(old_file);
  // One code in a pool here and there: the predictions stay (nearly) the new file's.
  const std::vector<int32_t> old_logits = engine_logits(old_model, t.test), new_logits = engine_logits(q, t.test);
  const int64_t classes = q.num_classes();
  int64_t same = 0;
  for (int64_t i = 0; i < t.test.count; ++i)
    same += argmax_row(old_logits.data() + i * classes, classes) == argmax_row(new_logits.data() + i * classes, classes);
  EXPECT_GE(same, t.test.count * 9 / 10);
  old_model.save(dir + "/v3_again.lbq");
  std::ifstream a(old_file, std::ios::binary), b(dir + "/v3_again.lbq", std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(a), {}), std::string(std::istreambuf_iterator<char>(b), {}));

  with_shift.version = 3;
  with_shift.header.erase("blobs");
  std::ofstream(dir + "/v3_with_shift.lbq", std::ios::binary) << encode_container(with_shift);
  EXPECT_THROW(QuantizedModel::load(dir + "/v3_with_shift.lbq"), Error);
}

}  // namespace
}  // namespace lowbit
