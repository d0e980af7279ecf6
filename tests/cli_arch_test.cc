// `lowbit train --arch` and `lowbit models`: presets, description files, and bad descriptions as
// one-line errors naming the file or the node, with no partial output.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "cli_fixtures.h"
#include "data_fixtures.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing_cli::CliRun;
using testing_cli::expect_clean_failure;
using testing_cli::run_cli;
using testing_data::fresh_dir;
using testing_data::write_idx_dataset;
using testing_data::write_text;

// A residual CNN for the fixtures' 1x2x3 images.
Json tiny_cnn() {
  return Json::parse(R"({"name": "tiny_cnn", "input_shape": [1, 2, 3], "nodes": [
    {"name": "conv", "kind": "conv2d", "inputs": ["input"], "out_channels": 4, "kernel": 3, "padding": 1},
    {"name": "bn", "kind": "batch_norm", "inputs": ["conv"]},
    {"name": "relu", "kind": "relu", "inputs": ["bn"]},
    {"name": "conv2", "kind": "conv2d", "inputs": ["relu"], "out_channels": 4, "kernel": [1, 3],
     "padding": [0, 1], "bias": false},
    {"name": "add", "kind": "add", "inputs": ["conv2", "relu"]},
    {"name": "pool", "kind": "global_avg_pool", "inputs": ["add"]},
    {"name": "fc", "kind": "linear", "inputs": ["pool"], "out_features": 10},
    {"name": "out", "kind": "log_softmax", "inputs": ["fc"]}]})");
}

struct Fixture {
  std::string dir, data, out;
};

Fixture make_fixture() {
  Fixture f;
  f.dir = fresh_dir();
  write_idx_dataset(f.dir + "/data/mnist", 64, 20);
  f.data = " --data-dir " + f.dir + "/data/mnist";
  f.out = f.dir + "/out";
  fs::create_directories(f.out);
  return f;
}

// Errors found once the data is loaded: stderr is the "data: ..." line, then one error line.
void expect_failure_after_data(const CliRun& run, const std::string& words) {
  EXPECT_EQ(run.exit_code, 1) << run.err;
  ASSERT_EQ(run.err.rfind("data: ", 0), 0u) << run.err;
  const std::string error = run.err.substr(run.err.find('\n') + 1);
  expect_clean_failure({run.exit_code, run.out, error}, words);
}

void expect_no_files(const std::string& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) ADD_FAILURE() << "left behind: " << entry.path();
}

TEST(CliArch, PresetsAndDescriptionFilesTrainAndEvaluate) {
  const Fixture f = make_fixture();
  const std::string file = f.dir + "/tiny_cnn.json";
  write_text(file, tiny_cnn().dump());
  CliRun run = run_cli(f.dir, "train --epochs 2 --arch " + file + " --out " + f.out + "/cnn.lbm" + f.data);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("trained tiny_cnn for 2 epochs"), std::string::npos) << run.err;
  run = run_cli(f.dir, "eval --model " + f.out + "/cnn.lbm" + f.data);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("float32"), std::string::npos) << run.out;

  // ResNet-20 fits 2x3 images too (its strides take them to 1x2, then 1x1).
  run = run_cli(f.dir, "train --epochs 1 --arch resnet20 --out " + f.out + "/resnet.lbm" + f.data);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("trained resnet20 for 1 epochs"), std::string::npos) << run.err;

  // The default is still FC_NN.
  run = run_cli(f.dir, "train --epochs 1 --out " + f.out + "/fc.lbm" + f.data);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("trained FC_NN for 1 epochs"), std::string::npos) << run.err;

  // The CNN runs on the integer engine, and the .lbq evaluates.
  run = run_cli(f.dir, "quantize --model " + f.out + "/cnn.lbm --bits 4 --out " + f.dir + "/q.lbq" + f.data);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  run = run_cli(f.dir, "eval --model " + f.dir + "/q.lbq" + f.data);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("integer"), std::string::npos) << run.out;

  // Per-layer reports name the convs: one row per weighted layer and width.
  run = run_cli(f.dir, "layers --model " + f.out + "/cnn.lbm --bits 2,8 --json --out-dir " + f.dir + "/layers" + f.data);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const Json layers = Json::parse(run.out);
  const Json description = tiny_cnn();
  size_t weighted = 0;
  for (const Json& n : description["nodes"]) weighted += n["kind"] == "conv2d" || n["kind"] == "linear";
  ASSERT_EQ(layers["results"].size(), 2 * weighted);
  EXPECT_EQ(layers["results"][0]["name"], description["nodes"][0]["name"]);
  EXPECT_TRUE(fs::exists(f.dir + "/layers/layer0_weights.png"));
  run = run_cli(f.dir, "sensitivity --model " + f.out + "/cnn.lbm --bits 8 --json" + f.data);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const Json sensitivity = Json::parse(run.out);
  ASSERT_EQ(sensitivity["layers"].size(), weighted);
  EXPECT_EQ(sensitivity["layers"].back()["name"], "fc");
  // Where its time goes: a row for every node that does work (and for its im2col), nothing else,
  // the shares summing to 100 % and the times to the timed pass's time per image.
  run = run_cli(f.dir, "inspect --json " + f.dir + "/q.lbq");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const Json nodes = Json::parse(run.out)["nodes"];
  std::set<int> working;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i]["op"] != "alias") working.insert(static_cast<int>(i));
  ASSERT_GE(working.size(), 5u);
  run = run_cli(f.dir, "bench --model " + f.dir + "/q.lbq --batch 1,7 --threads 1,2 --seconds 0.05 --layers --json" + f.data);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const Json results = Json::parse(run.out)["results"];
  ASSERT_EQ(results.size(), 4u);
  for (const Json& r : results) {
    SCOPED_TRACE(r.dump());
    const Json& steps = r["layers"]["steps"];
    std::set<int> seen;
    double percent = 0, us = 0;
    for (const Json& s : steps) {
      const int node = s["node"];
      if (node >= 0) {
        ASSERT_LT(node, static_cast<int>(nodes.size()));
        EXPECT_EQ(s["op"], s["op"] == "im2col" ? "im2col" : nodes[node]["op"]);
        if (s["op"] != "im2col") EXPECT_EQ(s["shape"], nodes[node]["shape_hwc"]);
      } else {
        EXPECT_EQ(s["op"], "pixels");
      }
      seen.insert(node);
      EXPECT_GE(s["percent"].get<double>(), 0.0);
      percent += s["percent"].get<double>();
      us += s["us_per_image"].get<double>();
    }
    seen.erase(-1);
    EXPECT_EQ(seen, working);
    EXPECT_NEAR(percent, 100.0, 0.01);
    EXPECT_NEAR(us, 1e6 / r["layers"]["images_per_s"].get<double>(), 1e-6 * us + 1e-9);
  }
  run = run_cli(f.dir, "bench --model " + f.dir + "/q.lbq --batch 3 --threads 1 --seconds 0.02 --layers" + f.data);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("steps at batch 3, 1 threads"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("im2col"), std::string::npos) << run.out;

  // The same predictions from every operator kernel set this CPU has, on one and two threads.
  const std::string infer = "infer --json --model " + f.dir + "/q.lbq --limit 20 " + f.dir + "/data/mnist/t10k-images-idx3-ubyte.gz";
  const CliRun expected = run_cli(f.dir, infer + " --threads 1", "LOWBIT_OPS_KERNEL=ref");
  ASSERT_EQ(expected.exit_code, 0) << expected.err;
  for (const char* ops : {"avx2", "avx512"})
    for (const char* threads : {" --threads 1", " --threads 2"}) {
      run = run_cli(f.dir, infer + threads, std::string("LOWBIT_OPS_KERNEL=") + ops);
      if (run.exit_code != 0 && run.err.find("this CPU cannot run") != std::string::npos) continue;
      ASSERT_EQ(run.exit_code, 0) << run.err;
      EXPECT_EQ(run.out, expected.out) << ops << threads;
    }

  // What the engine cannot run is refused in one line naming the node, before any file is written.
  Json grouped = tiny_cnn();
  grouped["nodes"][3]["groups"] = 2;
  write_text(f.dir + "/grouped.json", grouped.dump());
  run = run_cli(f.dir, "train --epochs 1 --arch " + f.dir + "/grouped.json --out " + f.out + "/grouped.lbm" + f.data);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  run = run_cli(f.dir, "quantize --model " + f.out + "/grouped.lbm --bits 4 --out " + f.dir + "/g.lbq" + f.data);
  expect_clean_failure(run, f.out + "/grouped.lbm: node \"conv2\" (conv2d): the integer engine runs convolutions "
                            "of groups 1 only");
  EXPECT_FALSE(fs::exists(f.dir + "/g.lbq"));
}

TEST(CliArch, ACnnTrainsToTheSameFileOnOneAndTwoThreads) {
  const Fixture f = make_fixture();
  const std::string file = f.dir + "/tiny_cnn.json";
  Json d = tiny_cnn();
  // Dropout before the pool: its mask must not depend on the thread either.
  d["nodes"][5]["inputs"] = {"drop"};
  d["nodes"].insert(d["nodes"].begin() + 5, Json{{"name", "drop"}, {"kind", "dropout"}, {"inputs", {"add"}}, {"p", 0.3}});
  write_text(file, d.dump());
  const std::string train = "train --epochs 2 --batch-size 48 --arch " + file + f.data;
  ASSERT_EQ(run_cli(f.dir, train + " --threads 1 --out " + f.out + "/t1.lbm").exit_code, 0);
  ASSERT_EQ(run_cli(f.dir, train + " --threads 2 --out " + f.out + "/t2.lbm").exit_code, 0);
  EXPECT_EQ(testing_cli::slurp(f.out + "/t1.lbm"), testing_cli::slurp(f.out + "/t2.lbm"));
}

TEST(CliArch, BadDescriptionsAreOneLineErrorsAndWriteNothing) {
  const Fixture f = make_fixture();
  const std::string train = "train --epochs 1 --out " + f.out + "/m.lbm" + f.data + " --arch ";
  struct Case {
    const char* name;
    std::function<void(Json&)> edit;
    std::string words;
    bool after_data = false;  // found only once the data says which images the model must take
  };
  const std::vector<Case> cases = {
      {"unknown_kind", [](Json& d) { d["nodes"][1]["kind"] = "batch_norm3d"; },
       "node \"bn\" (batch_norm3d): unknown layer kind \"batch_norm3d\""},
      {"kernel_too_large", [](Json& d) { d["nodes"][0]["kernel"] = 5; },
       "node \"conv\" (conv2d): kernel 5x5 is larger than the padded input 4x5"},
      {"channels", [](Json& d) { d["nodes"][3]["in_channels"] = 3; },
       "node \"conv2\" (conv2d): in_channels 3 does not match the 4 input channels"},
      {"residual_shapes", [](Json& d) { d["nodes"][3]["out_channels"] = 5; },
       "node \"add\" (add): add cannot sum shapes [5, 2, 3] and [4, 2, 3]"},
      {"input_shape", [](Json& d) { d["input_shape"] = {3, 2, 3}; },
       "input_shape [3, 2, 3] does not fit mnist's [1, 2, 3] images", true},
      {"no_log_softmax", [](Json& d) { d["nodes"][7]["kind"] = "relu"; },
       "the model must end in log_softmax over 10 classes; it ends in relu [10]", true},
  };
  for (const Case& c : cases) {
    Json d = tiny_cnn();
    c.edit(d);
    const std::string file = f.dir + "/" + c.name + ".json";
    write_text(file, d.dump());
    const CliRun run = run_cli(f.dir, train + file);
    SCOPED_TRACE(c.name);
    if (c.after_data) expect_failure_after_data(run, file + ": " + c.words);
    else expect_clean_failure(run, file + ": model description: " + c.words);
    EXPECT_EQ(run.exit_code, 1);
  }
  write_text(f.dir + "/broken.json", "{\"input_shape\": [1, 2, 3], \"nodes\": [");
  expect_clean_failure(run_cli(f.dir, train + f.dir + "/broken.json"),
                       f.dir + "/broken.json: not a JSON model description");
  expect_clean_failure(run_cli(f.dir, train + "resnet21"),
                       "--arch resnet21: neither a preset (fc_nn, resnet20, cifar_small) nor a model "
                       "description file");
  // cifar_small's three max-pools need larger images than 2x3.
  expect_failure_after_data(run_cli(f.dir, train + "cifar_small"),
                       "--arch cifar_small: model description: node \"group2.pool\" (max_pool2d): "
                       "kernel 2x2 is larger than the padded input 1x1");
  expect_no_files(f.out);
}

TEST(CliArch, ModelsListsThePresetsWithTheirSizes) {
  const std::string dir = fresh_dir();
  CliRun run = run_cli(dir, "models");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("272,474"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("40.8M"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("288,746"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("17.4M"), std::string::npos) << run.out;
  run = run_cli(dir, "models --json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const Json rows = Json::parse(run.out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1]["name"], "resnet20");
  EXPECT_EQ(rows[1]["parameters"], 272474);
  EXPECT_EQ(rows[1]["multiply_adds"], 40813184);
  EXPECT_EQ(rows[2]["name"], "cifar_small");
  EXPECT_EQ(rows[2]["parameters"], 288746);
  EXPECT_EQ(rows[2]["multiply_adds"], 17401088);
  EXPECT_EQ(rows[0]["input_shape"], Json({1, 28, 28}));
}

}  // namespace
}  // namespace lowbit
