// Per-layer SQNR: the helper on hand-computed vectors, its growth with bits, and `lowbit layers`.
#include "lowbit/layer_report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_fixtures.h"
#include "data_fixtures.h"
#include "lowbit/error.h"
#include "lowbit/layers.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

TEST(Sqnr, HandComputedVectors) {
  // signal 1 + 1 = 2, noise 0 + 1 = 1: 10 log10(2) = 3.0103 dB
  const std::vector<float> x = {1, -1}, x_hat = {1, 0};
  EXPECT_NEAR(sqnr_db(x, x_hat), 10 * std::log10(2.0), 1e-9);
  EXPECT_NEAR(sqnr_db(x, x_hat), 3.0103, 1e-4);
  // signal 9 + 16 = 25, noise 0.25 + 0 = 0.25: 10 log10(100) = 20 dB
  EXPECT_NEAR(sqnr_db(std::vector<float>{3, 4}, std::vector<float>{2.5f, 4}), 20.0, 1e-9);
  EXPECT_EQ(sqnr_db(x, x), std::numeric_limits<double>::infinity());
  EXPECT_EQ(sqnr_db(std::vector<float>{0, 0}, std::vector<float>{1, 0}),
            -std::numeric_limits<double>::infinity());
}

TEST(Sqnr, LengthMismatchThrows) {
  EXPECT_THROW(sqnr_db(std::vector<float>{1, 2}, std::vector<float>{1}), Error);
}

// One Linear [64, 256] with PyTorch-default uniform weights, random calibration inputs.
Model random_linear_model(Tensor& calibration) {
  Model model = Model::from_description(
      {{"input_shape", {256}}, {"layers", {{{"kind", "linear"}, {"out_features", 64}}}}});
  model.init(7);
  std::mt19937_64 rng(11);
  calibration = Tensor({128, 256});
  for (float& v : calibration.values()) v = uniform_float(rng, -1, 1);
  return model;
}

TEST(LayerReport, MinmaxWeightSqnrGrowsAbout6DbPerBit) {
  Tensor calibration;
  const Model model = random_linear_model(calibration);
  const std::vector<int> bits = {2, 3, 4, 5, 6, 7, 8};
  const auto rows = layer_quantization_error(model, calibration, "minmax", bits);
  ASSERT_EQ(rows.size(), bits.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].bits, bits[i]);
    EXPECT_EQ(rows[i].in_features, 256);
    EXPECT_EQ(rows[i].out_features, 64);
    EXPECT_FALSE(rows[i].per_channel);
    EXPECT_TRUE(std::isfinite(rows[i].weight_sqnr_db));
    if (i) {
      EXPECT_GE(rows[i].weight_sqnr_db, rows[i - 1].weight_sqnr_db) << bits[i] << " bits";
      EXPECT_GE(rows[i].activation_sqnr_db, rows[i - 1].activation_sqnr_db) << bits[i] << " bits";
    }
  }
  // Uniform noise of step s has power s^2/12; each bit halves s: 20 log10(2) = 6.02 dB a bit.
  const double per_bit = (rows[6].weight_sqnr_db - rows[2].weight_sqnr_db) / 4;
  EXPECT_NEAR(per_bit, 6.02, 0.5);
  // A uniform signal over the whole range at b bits: SQNR = 6.02 b (signal a^2/3, noise s^2/12).
  EXPECT_NEAR(rows[6].weight_sqnr_db, 6.02 * 8, 1.5);
}

TEST(LayerReport, DequantizedWeightsUseEachChannelsParams) {
  QuantizedLinearPlan q;
  q.in_features = 2;
  q.out_features = 2;
  q.weight = {{0.5f, 1, 2}, {2.0f, 0, 2}};
  q.weight_codes = {0, 3, 1, 2};
  EXPECT_EQ(dequantized_weights(q), (std::vector<float>{-0.5f, 1.0f, 2.0f, 4.0f}));
  const Range widest = widest_weight_range(q);
  EXPECT_FLOAT_EQ(widest.min, -0.5f);  // channel 0: 0.5 * (0 - 1)
  EXPECT_FLOAT_EQ(widest.max, 6.0f);   // channel 1: 2 * (3 - 0)
}

using testing_cli::CliRun;
using testing_cli::run_cli;
using testing_cli::slurp;

TEST(LayersCli, WritesOneEntryPerLayerAndBitAndTheHistograms) {
  const std::string dir = testing_data::fresh_dir();
  testing_data::write_idx_dataset(dir + "/data/mnist", 64, 20);
  const std::string model = dir + "/m.lbm", data = " --data-dir " + dir + "/data";
  const CliRun trained = run_cli(dir, "train" + data + " --epochs 1 --out " + model);
  ASSERT_EQ(trained.exit_code, 0) << trained.err;

  const std::string out = dir + "/report";
  const CliRun run = run_cli(dir, "layers" + data + " --model " + model +
                                      " --bits 2,4,8 --calib-count 32 --out-dir " + out);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("weight SQNR"), std::string::npos) << run.out;
  const nlohmann::json json = nlohmann::json::parse(slurp(out + "/layers.json"));
  EXPECT_EQ(json["method"], "best");
  EXPECT_EQ(json["calibration_count"], 32);
  ASSERT_EQ(json["results"].size(), 3u * 3u);  // FC_NN: 3 Linear layers x 3 widths
  for (size_t i = 0; i < 9; ++i) {
    const auto& r = json["results"][i];
    EXPECT_EQ(r["linear"], i / 3);
    EXPECT_EQ(r["bits"], std::vector<int>({2, 4, 8})[i % 3]);
    EXPECT_TRUE(r["weight_sqnr_db"].is_number() || r["weight_sqnr_db"].is_null());
    EXPECT_TRUE(r["activation_sqnr_db"].is_number() || r["activation_sqnr_db"].is_null());
    EXPECT_LE(r["weight_range"][0].get<double>(), r["weight_range"][1].get<double>());
  }
  for (int j = 0; j < 3; ++j)
    for (const char* kind : {"weights", "activations"}) {
      const std::string png = out + "/layer" + std::to_string(j) + "_" + kind + ".png";
      EXPECT_TRUE(fs::exists(png)) << png;
      EXPECT_GT(fs::file_size(png), 1000u) << png;
    }
}

TEST(LayersCli, BadFlagsAreOneLineErrorsAndWriteNothing) {
  const std::string dir = testing_data::fresh_dir();
  testing_data::write_idx_dataset(dir + "/data/mnist", 20, 10);
  testing_data::write_text(dir + "/a-file", "not a folder");
  const std::string base = "layers --data-dir " + dir + "/data --model " + dir + "/none.lbm ";
  for (const auto& [args, words] : std::vector<std::pair<std::string, std::string>>{
           {"--bits 9 --out-dir " + dir + "/out", "--bits"},
           {"--method nonsense --out-dir " + dir + "/out", "nonsense"},
           {"--hist-bits 0 --out-dir " + dir + "/out", "--hist-bits"},
           {"--out-dir " + dir + "/a-file/out", "--out-dir"},
           {"--out-dir " + dir + "/out", "none.lbm"}}) {
    SCOPED_TRACE(args);
    const CliRun run = run_cli(dir, base + args);
    EXPECT_TRUE(run.exit_code == 1 || run.exit_code == 2) << run.exit_code;
    EXPECT_EQ(run.err.find('\n'), run.err.size() - 1) << run.err;
    EXPECT_NE(run.err.find(words), std::string::npos) << run.err;
    EXPECT_FALSE(fs::exists(dir + "/out/layers.json"));
  }
}

}  // namespace
}  // namespace lowbit
