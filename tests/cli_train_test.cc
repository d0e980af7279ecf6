// `lowbit train`'s recipe flags, --json history, --validation, and checkpoints: a run killed
// mid-epoch and resumed writes the same model file as an uninterrupted run.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli_fixtures.h"
#include "data_fixtures.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
using testing_cli::CliRun;
using testing_cli::expect_clean_failure;
using testing_cli::run_cli;
using testing_cli::slurp;

struct Fixture {
  std::string dir, train;
};

// 200 training images of 2x3 pixels; a recipe with every option that has state or randomness.
Fixture make_fixture() {
  Fixture f;
  f.dir = testing_data::fresh_dir();
  testing_data::write_idx_dataset(f.dir + "/data/mnist", 200, 20);
  f.train = "train --data-dir " + f.dir + "/data/mnist --batch-size 32 --optimizer sgd "
            "--lr 0.05 --nesterov --weight-decay 5e-4 --schedule one-cycle --label-smoothing 0.1 "
            "--crop-padding 1 --flip --no-progress";
  return f;
}

TEST(CliTrain, AKilledRunResumesToTheSameModelFile) {
  Fixture f = make_fixture();
  f.train += " --epochs 3 --validation 40";  // 160 images trained on
  CliRun run = run_cli(f.dir, f.train + " --out " + f.dir + "/whole.lbm --json " + f.dir + "/whole.json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("(40 held out for validation, best epoch"), std::string::npos) << run.out;

  // 160 training images: 5 steps per epoch. Killed (SIGKILL, no clean-up) at step 8, in epoch 2.
  const std::string checkpointed = f.train + " --checkpoint " + f.dir + "/run.ckpt --out " + f.dir +
                                   "/resumed.lbm --json " + f.dir + "/resumed.json";
  run = run_cli(f.dir, checkpointed, "LOWBIT_TEST_KILL_AFTER_STEP=8");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_TRUE(fs::exists(f.dir + "/run.ckpt"));
  EXPECT_FALSE(fs::exists(f.dir + "/resumed.lbm"));
  for (const auto& entry : fs::directory_iterator(f.dir))
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
  run = run_cli(f.dir, checkpointed + " --resume");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_FALSE(slurp(f.dir + "/whole.lbm").empty());
  EXPECT_EQ(slurp(f.dir + "/resumed.lbm"), slurp(f.dir + "/whole.lbm"));

  // The history covers every epoch, the resumed run's too, and marks the model's epoch.
  const auto whole = nlohmann::json::parse(slurp(f.dir + "/whole.json"));
  const auto resumed = nlohmann::json::parse(slurp(f.dir + "/resumed.json"));
  ASSERT_EQ(whole["epochs"].size(), 3u);
  ASSERT_EQ(resumed["epochs"].size(), 3u);
  int selected = 0;
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_EQ(resumed["epochs"][e]["train_loss"], whole["epochs"][e]["train_loss"]);
    EXPECT_EQ(resumed["epochs"][e]["validation_accuracy"], whole["epochs"][e]["validation_accuracy"]);
    EXPECT_GT(whole["epochs"][e]["learning_rate"].get<double>(), 0);
    EXPECT_GE(whole["epochs"][e]["seconds"].get<double>(), 0);
    selected += whole["epochs"][e]["selected"].get<bool>();
  }
  EXPECT_EQ(selected, 1);
}

TEST(CliTrain, BadRecipeFlagsAreOneLineErrorsAndWriteNothing) {
  Fixture f = make_fixture();
  const std::string out = " --out " + f.dir + "/m.lbm";
  expect_clean_failure(run_cli(f.dir, f.train + out + " --epochs 1 --resume"), "--resume needs --checkpoint FILE");
  expect_clean_failure(run_cli(f.dir, f.train + out + " --resume --checkpoint " + f.dir + "/none.ckpt"),
                       "--resume: " + f.dir + "/none.ckpt does not exist");
  expect_clean_failure(run_cli(f.dir, f.train + out + " --optimizer rmsprop"), "--optimizer");
  expect_clean_failure(run_cli(f.dir, f.train + out + " --schedule linear"), "--schedule");
  expect_clean_failure(run_cli(f.dir, f.train + out + " --label-smoothing 1.5"), "--label-smoothing");
  CliRun run = run_cli(f.dir, f.train + out + " --validation 200");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("--validation 200: must be fewer than the 200 training images"), std::string::npos)
      << run.err;
  // A checkpoint from another recipe is refused, naming the file and the difference.
  ASSERT_EQ(run_cli(f.dir, f.train + out + " --epochs 1 --checkpoint " + f.dir + "/c.ckpt").exit_code, 0);
  fs::remove(f.dir + "/m.lbm");
  run = run_cli(f.dir, f.train + out + " --epochs 1 --momentum 0.8 --resume --checkpoint " + f.dir + "/c.ckpt");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find(f.dir + "/c.ckpt: checkpoint of another run (momentum"), std::string::npos)
      << run.err;
  EXPECT_FALSE(fs::exists(f.dir + "/m.lbm"));
}

}  // namespace
}  // namespace lowbit
