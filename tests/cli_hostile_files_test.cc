// The CLI on checksum-valid hostile model files: one line naming the file, exit 1, and no result
// printed (issue 14, part 1). hostile_files_test.cc covers the loaders field by field.
#include <gtest/gtest.h>

#include <fstream>

#include "cli_fixtures.h"
#include "data_fixtures.h"
#include "lowbit/model_file.h"
#include "lowbit/quantize.h"
#include "lowbit/quantized_model.h"
#include "util/container.h"

namespace lowbit {
namespace {

using testing_cli::CliRun;
using testing_cli::expect_clean_failure;
using testing_cli::run_cli;
using testing_data::fresh_dir;

// FC_NN for the fixtures' 2x3-pixel images with `classes` outputs.
Model small_model(int64_t classes) {
  Model model = Model::from_description(Model::fc_nn_description({1, 2, 3}, classes));
  model.init(3);
  model.metadata = {{"dataset", "mnist"}, {"mean", {0.5}}, {"std", {0.25}}};
  return model;
}

void write_quantized(const Model& model, const std::string& path) {
  Tensor calibration(Shape{16, 6});
  for (int64_t i = 0; i < calibration.size(); ++i) calibration[i] = static_cast<float>(i % 7) * 0.3f - 1.0f;
  QuantizedModel::build(model, plan_quantization(model, calibration, preset_options("minmax", 4, 4))).save(path);
}

// `path` with one header field set, the CRC recomputed.
void set_field(const std::string& path, const std::string& pointer, const nlohmann::json& value) {
  Container c = read_container(path, "");
  c.header[nlohmann::json::json_pointer(pointer)] = value;
  const std::string bytes = encode_container(std::move(c));
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void expect_refused(const CliRun& run, const std::string& path, const std::string& words) {
  expect_clean_failure(run, words);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find(path), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("json.exception"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("internal error"), std::string::npos) << run.err;
  EXPECT_EQ(run.out.find("accuracy"), std::string::npos) << "a result was printed: " << run.out;
}

TEST(CliHostileFiles, ModelsWithTooFewClassesAreRefusedBeforeEvaluation) {
  const std::string dir = fresh_dir();
  testing_data::write_idx_dataset(dir + "/data/mnist", 20, 10);  // labels 0..9
  const std::string data = " --data-dir " + dir + "/data";
  const std::string lbm = dir + "/five.lbm", lbq = dir + "/two.lbq";
  save_model(small_model(5), lbm);
  write_quantized(small_model(2), lbq);
  expect_refused(run_cli(dir, "eval --model " + lbm + data), lbm, "5 outputs (classes), but mnist has 10");
  expect_refused(run_cli(dir, "eval --model " + lbq + data), lbq, "2 outputs (classes), but mnist has 10");
  expect_refused(run_cli(dir, "quantize --model " + lbm + " --bits 4 --out " + dir + "/q.lbq" + data), lbm, "outputs (classes)");
  EXPECT_FALSE(std::filesystem::exists(dir + "/q.lbq"));
  // The same models with ten outputs evaluate.
  save_model(small_model(10), lbm);
  const CliRun run = run_cli(dir, "eval --model " + lbm + data);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("accuracy"), std::string::npos) << run.out;
}

TEST(CliHostileFiles, WrongTypesAndExtremeValuesAreOneLineErrors) {
  const std::string dir = fresh_dir();
  testing_data::write_idx_dataset(dir + "/data/mnist", 20, 10);
  const std::string data = " --data-dir " + dir + "/data";
  const std::string lbm = dir + "/m.lbm", lbq = dir + "/m.lbq";
  struct Case {
    bool quantized;
    std::string pointer;
    nlohmann::json value;
    std::string words;
  };
  const std::vector<Case> cases = {
      {false, "/metadata", 5, "\"metadata\""},
      {false, "/metadata/dataset", 5, "\"dataset\""},
      {true, "/metadata", 5, "\"metadata\""},
      {true, "/metadata/dataset", 5, "\"dataset\""},
      {true, "/logit_scale", 1e39, "\"logit_scale\""},
      {true, "/layers/0/weight_bits", 1e10, "\"weight_bits\""},
      {true, "/input_shape", {1, -2, -3}, "\"input_shape\""},
      {false, "/description/input_shape", {3, -6148914691236516944LL}, "\"input_shape\""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.pointer + " = " + c.value.dump());
    const std::string& path = c.quantized ? lbq : lbm;
    if (c.quantized)
      write_quantized(small_model(10), path);
    else
      save_model(small_model(10), path);
    set_field(path, c.pointer, c.value);
    expect_refused(run_cli(dir, "eval --model " + path + data), path, c.words);
    expect_refused(run_cli(dir, "inspect " + path), path, c.words);
  }
}

}  // namespace
}  // namespace lowbit
