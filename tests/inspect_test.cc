// `lowbit inspect` on float and quantized files, intact and damaged; load_from_memory as load.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_fixtures.h"
#include "cnn_fixtures.h"
#include "data_fixtures.h"
#include "lowbit/error.h"
#include "lowbit/model_file.h"
#include "lowbit/quantized_model.h"
#include "model_fixtures.h"

namespace lowbit {
namespace {

using testing_cli::CliRun;
using testing_cli::expect_clean_failure;
using testing_cli::run_cli;
using testing_cli::slurp;
using testing_data::fresh_dir;

// A tiny float model and its 3-bit quantization, written into `dir`.
void write_models(const std::string& dir) {
  const Model model = testing_models::tiny_model(5);
  const ImageSet images = testing_models::random_images(64, 2);
  const Tensor calibration = normalized_images(images, {0.5f}, {0.25f}, 0, 64);
  save_model(model, dir + "/m.lbm");
  QuantizedModel::build(model, plan_quantization(model, calibration, preset_options("mse_pc", 3, 3)))
      .save(dir + "/q.lbq");
}

TEST(Inspect, QuantizedModelAsTextAndJson) {
  const std::string dir = fresh_dir();
  write_models(dir);
  const CliRun text = run_cli(dir, "inspect " + dir + "/q.lbq");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const char* words : {"version 1, quantized model", "checksum  ok", "[1, 4, 4] uint8 pixels -> 3 int32 logits",
                            "3-bit affine", "[64, 16]", "int32 logits", "multiply-adds per image", "kernels   first layer"})
    EXPECT_NE(text.out.find(words), std::string::npos) << words << "\n" << text.out;

  const CliRun json = run_cli(dir, "inspect --json " + dir + "/q.lbq");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto report = nlohmann::json::parse(json.out);
  EXPECT_EQ(report["kind"], "quantized");
  EXPECT_EQ(report["format_version"], 1);
  EXPECT_TRUE(report["checksum"]["ok"]);
  EXPECT_EQ(report["checksum"]["stored"], report["checksum"]["computed"]);
  EXPECT_EQ(report["metadata"]["quantization"]["method"], "mse_pc");
  EXPECT_EQ(report["macs_per_image"], 16 * 64 + 64 * 32 + 32 * 3);
  ASSERT_EQ(report["layers"].size(), 3u);
  const auto& first = report["layers"][0];
  EXPECT_EQ(first["weight_bits"], 3);
  EXPECT_EQ(first["packed_bytes"], 64 * 6);  // ceil(16 * 3 / 8) bytes per row
  // Per-channel weights: a range of scales and zero points, each within the 3-bit codes.
  EXPECT_LE(first["weight_scale"][0].get<double>(), first["weight_scale"][1].get<double>());
  EXPECT_GE(first["weight_zero_point"][0].get<int>(), 0);
  EXPECT_LE(first["weight_zero_point"][1].get<int>(), 7);
  EXPECT_TRUE(report["kernels"]["cpu"].contains("avx2"));
  EXPECT_NE(report["kernels"]["layers"].get<std::string>().find("qlinear_"), std::string::npos);
  // The kernel a forced choice would run is the one reported.
  const CliRun forced = run_cli(dir, "inspect --json " + dir + "/q.lbq", "LOWBIT_KERNEL=ref");
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(nlohmann::json::parse(forced.out)["kernels"]["layers"], "qlinear_u8_ref");
}

TEST(Inspect, FloatModel) {
  const std::string dir = fresh_dir();
  write_models(dir);
  const CliRun text = run_cli(dir, "inspect " + dir + "/m.lbm");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const char* words : {"float model", "checksum  ok", "float32 through Eigen", "log_softmax", "[64, 16]"})
    EXPECT_NE(text.out.find(words), std::string::npos) << words << "\n" << text.out;
  const auto report = nlohmann::json::parse(run_cli(dir, "inspect --json " + dir + "/m.lbm").out);
  EXPECT_EQ(report["kind"], "float");
  EXPECT_EQ(report["description"]["layers"].size(), 6u);
  EXPECT_EQ(report["metadata"]["mean"][0], 0.5);
  EXPECT_EQ(report["layers"][0]["parameters"], 16 * 64 + 64);
  EXPECT_EQ(report["parameter_bytes"], 4 * (16 * 64 + 64 + 64 * 32 + 32 + 32 * 3 + 3));
}

TEST(Inspect, FloatCnnCountsConvolutionsAndBatchNorm) {
  const std::string dir = fresh_dir();
  Model model = Model::from_description(testing_models::residual_description(6, 4, 6));
  model.init(3);
  save_model(model, dir + "/cnn.lbm");
  const auto report = nlohmann::json::parse(run_cli(dir, "inspect --json " + dir + "/cnn.lbm").out);
  // Every parameter tensor and the multiply-adds of every conv and linear, from the layers themselves.
  int64_t parameters = 0;
  for (const Tensor* t : model.parameters()) parameters += t->size();
  EXPECT_EQ(report["parameter_bytes"], 4 * parameters);
  EXPECT_EQ(report["macs_per_image"], model.multiply_adds());
  // The stem: 4 x 2 x 3 x 3 weights on a 6 x 6 map, and its batch norm's gamma and beta.
  EXPECT_EQ(report["layers"][0]["kind"], "conv2d");
  EXPECT_EQ(report["layers"][0]["macs"], 4 * 2 * 9 * 36);
  EXPECT_EQ(report["layers"][1]["parameters"], 2 * 4);
  EXPECT_EQ(report["layers"][1]["macs"], 0);
  const CliRun text = run_cli(dir, "inspect " + dir + "/cnn.lbm");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find(std::to_string(model.multiply_adds()) + " multiply-adds per image"), std::string::npos)
      << text.out;
}

TEST(Inspect, DamagedFilesAreDescribedThenRefused) {
  const std::string dir = fresh_dir();
  write_models(dir);
  std::string bytes = slurp(dir + "/q.lbq");
  bytes[bytes.size() / 2] ^= 0x20;
  testing_data::write_file(dir + "/bad.lbq", testing_data::Bytes(bytes.begin(), bytes.end()));
  const CliRun text = run_cli(dir, "inspect " + dir + "/bad.lbq");
  expect_clean_failure(text, "checksum mismatch");
  EXPECT_NE(text.out.find("checksum  MISMATCH"), std::string::npos) << text.out;
  const CliRun json = run_cli(dir, "inspect --json " + dir + "/bad.lbq");
  expect_clean_failure(json, "checksum mismatch");
  const auto report = nlohmann::json::parse(json.out);
  EXPECT_FALSE(report["checksum"]["ok"]);
  EXPECT_NE(report["checksum"]["stored"], report["checksum"]["computed"]);

  testing_data::write_text(dir + "/text.lbq", "hello, I am not a model");
  expect_clean_failure(run_cli(dir, "inspect " + dir + "/text.lbq"), "bad magic");
  expect_clean_failure(run_cli(dir, "inspect " + dir + "/none.lbq"), "none.lbq: cannot open");
  expect_clean_failure(run_cli(dir, "inspect " + dir), "is a directory");
}

TEST(QuantizedModelFile, LoadFromMemoryIsLoad) {
  const std::string dir = fresh_dir();
  write_models(dir);
  const std::string bytes = slurp(dir + "/q.lbq");
  const QuantizedModel from_file = QuantizedModel::load(dir + "/q.lbq");
  const QuantizedModel from_memory = QuantizedModel::load_from_memory(bytes.data(), bytes.size());
  const ImageSet images = testing_models::random_images(10, 3);
  std::vector<int32_t> a(30), b(30);
  from_file.logits(images.pixels.data(), 10, a.data());
  from_memory.logits(images.pixels.data(), 10, b.data());
  EXPECT_EQ(a, b);
  EXPECT_EQ(from_file.summary(), from_memory.summary());
  try {
    QuantizedModel::load_from_memory(bytes.data(), bytes.size() - 1, "my buffer");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("my buffer: ", 0), 0u) << e.what();
  }
  EXPECT_THROW(QuantizedModel::load_from_memory(nullptr, 0), Error);
}

}  // namespace
}  // namespace lowbit
