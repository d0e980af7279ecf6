// Mixed-precision search: plans made with the requested preset and per-layer bits, steps that
// follow the rules, choices made on validation data only (test labels never change them), the
// budget, and the CLI's errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <random>

#include "cli_fixtures.h"
#include "data_fixtures.h"
#include "model_fixtures.h"
#include "lowbit/dataset.h"
#include "lowbit/quantize.h"
#include "lowbit/quantized_model.h"
#include "lowbit/sensitivity.h"

namespace lowbit {
namespace {

using testing_cli::CliRun;
using testing_cli::expect_clean_failure;
using testing_cli::run_cli;
using testing_cli::slurp;
using testing_data::Bytes;
using testing_data::fresh_dir;
using testing_data::idx_labels;
using testing_data::write_file;
using testing_data::write_idx_dataset;

constexpr uint32_t kSeed = 20261128;  // every random test prints it via SCOPED_TRACE

using testing_models::random_images;
using testing_models::tiny_model;

// Number of per-layer widths that differ between two points.
int changed_widths(const MixedPrecisionPoint& a, const MixedPrecisionPoint& b) {
  int changed = 0;
  for (size_t j = 0; j < a.weight_bits.size(); ++j)
    changed += (a.weight_bits[j] != b.weight_bits[j]) + (a.act_bits[j] != b.act_bits[j]);
  return changed;
}

TEST(MixedPrecision, PlansCarryThePresetAndEachPointsBits) {
  SCOPED_TRACE(kSeed);
  const Model model = tiny_model(kSeed);
  const Tensor calibration = normalized_images(random_images(128, kSeed + 1), {0.5f}, {0.25f}, 0, 128);
  const ImageSet validation = random_images(300, kSeed + 2);
  MixedPrecisionOptions options;
  options.method = "mse";
  options.bits = {2, 4, 8};
  std::vector<MixedPrecisionPoint> evaluated;
  const auto path = mixed_precision_search(model, calibration, validation, options, &evaluated);
  ASSERT_FALSE(path.empty());
  EXPECT_EQ(path.front().weight_bits, std::vector<int>(3, 8));
  EXPECT_EQ(path.back().weight_bits, std::vector<int>(3, 2));  // runs down to the narrowest
  EXPECT_GT(evaluated.size(), path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    const MixedPrecisionPoint& p = path[i];
    EXPECT_EQ(p.plan.options.method, "mse");
    EXPECT_EQ(p.plan.options.calibration, Calibration::mse);
    EXPECT_EQ(p.plan.options.layer_weight_bits, p.weight_bits);
    EXPECT_EQ(p.plan.options.layer_act_bits, p.act_bits);
    EXPECT_EQ(p.act_bits, p.weight_bits);  // W = A per layer unless separate_act_bits
    // The plan is exactly what quantizing with the preset and these bits gives.
    const QuantPlan direct = plan_quantization(
        model, calibration, mixed_precision_options("mse", p.weight_bits, p.act_bits));
    for (size_t j = 0; j < direct.layers.size(); ++j) {
      EXPECT_EQ(p.plan.layers[j].weight_codes, direct.layers[j].weight_codes);
      EXPECT_EQ(p.plan.layers[j].input.bits, p.act_bits[j]);
    }
    const QuantizedModel engine = QuantizedModel::build(model, p.plan);
    EXPECT_EQ(engine.weight_bytes(), p.weight_bytes);
    EXPECT_EQ(engine.evaluate(validation).accuracy, p.validation_accuracy);
    EXPECT_EQ(p.test_accuracy, -1);  // the search never measures test data
    if (i == 0) continue;
    EXPECT_EQ(changed_widths(path[i - 1], p), 2) << "one layer, weights and activations";
    EXPECT_LT(p.weight_bytes, path[i - 1].weight_bytes);
  }
  // Another preset is another quantizer: some point's codes differ.
  options.method = "minmax";
  const auto minmax = mixed_precision_search(model, calibration, validation, options);
  bool differs = false;
  for (size_t i = 0; i < std::min(path.size(), minmax.size()); ++i)
    for (size_t j = 0; j < 3; ++j)
      differs |= path[i].plan.layers[j].weight_codes != minmax[i].plan.layers[j].weight_codes;
  EXPECT_TRUE(differs);
  EXPECT_EQ(minmax.front().plan.options.method, "minmax");
}

TEST(MixedPrecision, SeparateActivationStepsAreTakenOnlyWhenFree) {
  SCOPED_TRACE(kSeed);
  const Model model = tiny_model(kSeed + 3);
  const Tensor calibration = normalized_images(random_images(128, kSeed + 4), {0.5f}, {0.25f}, 0, 128);
  const ImageSet validation = random_images(300, kSeed + 5);
  MixedPrecisionOptions options;
  options.bits = {1, 2, 3, 4, 8};
  options.separate_act_bits = true;
  const auto path = mixed_precision_search(model, calibration, validation, options);
  EXPECT_EQ(path.back().weight_bits, std::vector<int>(3, 1));
  for (size_t i = 1; i < path.size(); ++i) {
    EXPECT_EQ(changed_widths(path[i - 1], path[i]), 1) << "step " << i;
    if (path[i].act_bits != path[i - 1].act_bits) {
      EXPECT_EQ(path[i].weight_bytes, path[i - 1].weight_bytes);
      EXPECT_GE(path[i].validation_accuracy, path[i - 1].validation_accuracy);
    } else {
      EXPECT_LT(path[i].weight_bytes, path[i - 1].weight_bytes);
    }
  }
  // Deterministic: the same inputs give the same path.
  const auto again = mixed_precision_search(model, calibration, validation, options);
  ASSERT_EQ(again.size(), path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    EXPECT_EQ(again[i].weight_bits, path[i].weight_bits);
    EXPECT_EQ(again[i].act_bits, path[i].act_bits);
    EXPECT_EQ(again[i].validation_accuracy, path[i].validation_accuracy);
  }
}

// The CLI on tiny IDX data (2x3-pixel images): a trained model, then the search.
class SensitivityCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_dir();
    write_idx_dataset(dir_ + "/data/mnist", 300, 60);
    const CliRun trained = run_cli(dir_, "train --epochs 2 --threads 1 --out " + model() + data());
    ASSERT_EQ(trained.exit_code, 0) << trained.err;
  }
  std::string data() const { return " --data-dir " + dir_ + "/data"; }
  std::string model() const { return dir_ + "/m.lbm"; }
  nlohmann::json search(const std::string& flags) {
    const CliRun run = run_cli(dir_, "sensitivity --model " + model() + data() +
                                         " --threads 1 --json --validation 100 " + flags);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return run.exit_code == 0 ? nlohmann::json::parse(run.out) : nlohmann::json();
  }
  std::string dir_;
};

// What the search decided: everything but the test accuracies (of one point or of an array).
nlohmann::json decisions(nlohmann::json points) {
  if (points.is_object()) points.erase("test_accuracy");
  for (auto& p : points)
    if (p.is_object()) p.erase("test_accuracy");
  return points;
}

TEST_F(SensitivityCli, TestLabelsNeverChangeTheChosenConfigurations) {
  const std::string flags = "--bits 2,3,8 --budget 1000 --method mse --separate-act-bits";
  const nlohmann::json before = search(flags);
  ASSERT_FALSE(before.is_null());
  // Every test label moved to the next class: only the reported test accuracies may change.
  Bytes shifted;
  for (uint32_t i = 0; i < 60; ++i) shifted.push_back(static_cast<uint8_t>((i % 10 + 1) % 10));
  write_file(dir_ + "/data/mnist/t10k-labels-idx1-ubyte.gz", idx_labels(shifted), true);
  const nlohmann::json after = search(flags);
  ASSERT_FALSE(after.is_null());
  EXPECT_EQ(decisions(before["mixed_precision"]), decisions(after["mixed_precision"]));
  ASSERT_TRUE(before["chosen"].is_object());
  EXPECT_EQ(decisions(before["chosen"]), decisions(after["chosen"]));
  // ... and the relabelled test set was read: some reported test accuracy moved.
  bool moved = false;
  for (size_t i = 0; i < before["mixed_precision"].size(); ++i)
    moved |= before["mixed_precision"][i]["test_accuracy"] != after["mixed_precision"][i]["test_accuracy"];
  EXPECT_TRUE(moved);
}

TEST_F(SensitivityCli, MethodIsHonouredAndTheBudgetRespected) {
  const nlohmann::json all = search("--bits 2,4,8 --budget 1000000 --method mse");
  ASSERT_FALSE(all.is_null());
  EXPECT_EQ(all["method"], "mse");
  const auto& path = all["mixed_precision"];
  ASSERT_GE(path.size(), 2u);
  // A budget between the path's extremes: the chosen point fits and is the most accurate on
  // validation among the path's points that fit.
  const int64_t budget =
      (path.front()["weight_bytes"].get<int64_t>() + path.back()["weight_bytes"].get<int64_t>()) / 2;
  const nlohmann::json mid = search("--bits 2,4,8 --method mse --budget " + std::to_string(budget));
  ASSERT_FALSE(mid.is_null());
  const auto& chosen = mid["chosen"];
  ASSERT_FALSE(chosen.is_null());
  EXPECT_LE(chosen["weight_bytes"].get<int64_t>(), budget);
  for (const auto& p : mid["mixed_precision"]) {
    if (p["weight_bytes"].get<int64_t>() <= budget) {
      EXPECT_LE(p["validation_accuracy"].get<double>(), chosen["validation_accuracy"].get<double>());
    }
    EXPECT_TRUE(p.contains("test_accuracy"));
  }
  // A budget below every point is a usage error before the search (docs/cli.md), naming the
  // smallest point the path reaches.
  const CliRun below = run_cli(dir_, "sensitivity --model " + model() + data() +
                                         " --threads 1 --json --validation 100 --bits 2,4,8 --budget 1");
  EXPECT_EQ(below.exit_code, 2) << below.err;
  EXPECT_NE(below.err.find("--budget 1: no configuration fits; every layer at 2 bits (the narrowest "
                           "of --bits) takes " + std::to_string(all["mixed_precision"].back()["weight_bytes"].get<int64_t>()) +
                           " bytes"), std::string::npos) << below.err;
  EXPECT_TRUE(below.out.empty()) << below.out;
  // The plot and JSON files say the method too.
  const CliRun plotted = run_cli(dir_, "sensitivity --model " + model() + data() +
                                           " --threads 1 --validation 100 --bits 2,8 --method gptq "
                                           "--budget 1000 --out-dir " + dir_ + "/out");
  ASSERT_EQ(plotted.exit_code, 0) << plotted.err;
  EXPECT_NE(plotted.out.find("gptq"), std::string::npos) << plotted.out;
  const auto files = nlohmann::json::parse(slurp(dir_ + "/out/pareto.json"));
  EXPECT_EQ(files["method"], "gptq");
  EXPECT_EQ(files["validation_images"], 100);
}

TEST_F(SensitivityCli, ABudgetOfBitOperationsCountsActivationBitsToo) {
  const nlohmann::json all = search("--bits 2,8 --separate-act-bits --budget-ops 1000000000");
  ASSERT_FALSE(all.is_null());
  EXPECT_EQ(all["budget_of"], "bit_operations");
  const auto& path = all["mixed_precision"];
  ASSERT_GE(path.size(), 2u);
  // FC_NN on 2x3 images: 6x64 + 64x32 + 32x10 multiply-adds, each costing weight bits x act bits.
  const int64_t macs = 6 * 64 + 64 * 32 + 32 * 10;
  EXPECT_EQ(path.front()["bit_operations"], macs * 8 * 8);
  EXPECT_EQ(path.back()["bit_operations"], macs * 2 * 2);
  bool activation_step = false;
  for (size_t i = 1; i < path.size(); ++i) {
    EXPECT_LT(path[i]["bit_operations"].get<int64_t>(), path[i - 1]["bit_operations"].get<int64_t>());
    // With bit-operations as the cost, lowering a layer's activations saves too, so the path takes
    // such steps (they save no bytes).
    activation_step |= path[i]["weight_bytes"] == path[i - 1]["weight_bytes"];
  }
  EXPECT_TRUE(activation_step);
  const int64_t budget = (path.front()["bit_operations"].get<int64_t>() + path.back()["bit_operations"].get<int64_t>()) / 2;
  const nlohmann::json mid = search("--bits 2,8 --separate-act-bits --budget-ops " + std::to_string(budget));
  ASSERT_FALSE(mid.is_null());
  ASSERT_FALSE(mid["chosen"].is_null());
  EXPECT_LE(mid["chosen"]["bit_operations"].get<int64_t>(), budget);
  const CliRun both = run_cli(dir_, "sensitivity --model " + model() + data() + " --budget 10 --budget-ops 10");
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("--budget and --budget-ops"), std::string::npos) << both.err;
}

TEST_F(SensitivityCli, BadMethodAndValidationAreOneLineErrors) {
  const std::string base = "sensitivity --model " + model() + data() + " --threads 1 ";
  expect_clean_failure(run_cli(dir_, base + "--method nearest --budget 1000"), "--method");
  expect_clean_failure(run_cli(dir_, base + "--method nearest"), "--method");
  // Known only once the data is loaded (whose line comes first): the error is the last line.
  const CliRun too_many = run_cli(dir_, base + "--validation 300 --budget 1000");
  EXPECT_EQ(too_many.exit_code, 2);  // a flag's value: a usage error (docs/cli.md)
  ASSERT_FALSE(too_many.err.empty());
  const std::string last_line =
      too_many.err.substr(too_many.err.rfind('\n', too_many.err.size() - 2) + 1);
  EXPECT_EQ(last_line.rfind("lowbit: error: --validation 300", 0), 0u) << too_many.err;
  expect_clean_failure(run_cli(dir_, base + "--validation 0 --budget 1000"), "--validation");
}

}  // namespace
}  // namespace lowbit
