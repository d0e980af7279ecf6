// The CLI as a new user meets it: typo suggestions, one exit code for bad flags, flags checked
// before work, --json, --quiet and progress, and `infer` on PNGs of every kind (docs/cli.md).
#include <gtest/gtest.h>
#include <png.h>

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "cli_fixtures.h"
#include "data_fixtures.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
using testing_cli::CliRun;
using testing_cli::run_cli;
using testing_cli::slurp;
using testing_data::fresh_dir;
using testing_data::write_idx_dataset;

// A bad command line: exit 2, one line on stderr holding every one of `words`.
void expect_usage_error(const CliRun& run, const std::vector<std::string>& words) {
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_EQ(run.err.find('\n'), run.err.size() - 1) << "one line expected: " << run.err;
  for (const std::string& w : words) EXPECT_NE(run.err.find(w), std::string::npos) << run.err;
  EXPECT_TRUE(run.out.empty()) << run.out;
}

TEST(CliConventions, TyposGetTheClosestNameAndTheSubcommandsHelp) {
  const std::string dir = fresh_dir();
  expect_usage_error(run_cli(dir, "trian --epochs 1"),
                     {"unknown subcommand \"trian\"; did you mean \"train\"?", "(see lowbit --help)"});
  expect_usage_error(run_cli(dir, "train --epoch 1 --out m.lbm"),
                     {"unknown flag --epoch for lowbit train; did you mean --epochs?",
                      "(see lowbit train --help)"});
  expect_usage_error(run_cli(dir, "data lst"),
                     {"unknown subcommand \"lst\" of lowbit data; did you mean \"list\"?",
                      "(see lowbit data --help)"});
  expect_usage_error(run_cli(dir, "sweep --out-dir x --methods minmx"),
                     {"--methods: unknown method \"minmx\"; did you mean minmax?",
                      "(see lowbit sweep --help)"});
  // Nothing close: no guess, but the list to choose from.
  const CliRun far = run_cli(dir, "zzzzzz");
  expect_usage_error(far, {"unknown subcommand \"zzzzzz\"; the subcommands are data, train"});
  EXPECT_EQ(far.err.find("did you mean"), std::string::npos) << far.err;
  // CLI11's own errors point to the subcommand's help too.
  expect_usage_error(run_cli(dir, "quantize --bits 4"), {"--model", "(see lowbit quantize --help)"});
  // A flag's value is not mistaken for a subcommand or flag.
  expect_usage_error(run_cli(dir, "eval --model trian --threads x"), {"--threads"});
}

TEST(CliConventions, BadFlagValuesExitTwoEverywhere) {
  const std::string dir = fresh_dir();
  write_idx_dataset(dir + "/data/mnist", 20, 10);
  const std::string data = " --data-dir " + dir + "/data";
  for (const auto& [args, flag] : std::vector<std::pair<std::string, std::string>>{
           {"quantize --model m.lbm --out q.lbq --bits 9", "--bits"},
           {"sweep --out-dir " + dir + "/out --bits 9", "--bits"},
           {"sweep --out-dir " + dir + "/out --bits 9-10", "--bits"},
           {"layers --model m.lbm --out-dir " + dir + "/out --bits 0", "--bits"},
           {"qat --model m.lbm --out q.lbq --bits 4 --lr -1", "--lr"},
           {"qat --model m.lbm --out q.lbq --bits 4 --step-lr 0", "--step-lr"},
           {"eval --model m.lbm --threads -1", "--threads"},
           {"eval --model m.lbm --threads 2000", "--threads"},
           {"bench --model q.lbq --threads 1,-2", "--threads"},
           {"sensitivity --model m.lbm --budget -5", "--budget"},
           {"sensitivity --model m.lbm --budget 0", "--budget"},
           {"quantize --model m.lbm --out q.lbq --bits 4 --method fancy", "--method"},
           {"quantize --model m.lbm --out q.lbq", "--bits"},
       }) {
    SCOPED_TRACE(args);
    const CliRun run = run_cli(dir, args + data);
    EXPECT_EQ(run.exit_code, 2) << run.err;
    EXPECT_NE(run.err.find(flag), std::string::npos) << run.err;
    EXPECT_NE(run.err.find(" --help)"), std::string::npos) << run.err;
  }
  EXPECT_FALSE(fs::exists(dir + "/out/sweep.json"));
}

TEST(CliConventions, HelpListsTheMethods) {
  const std::string dir = fresh_dir();
  for (const std::string command : {"quantize", "sweep", "layers", "sensitivity"}) {
    SCOPED_TRACE(command);
    const CliRun run = run_cli(dir, command + " --help");
    EXPECT_EQ(run.exit_code, 0);
    for (const char* method : {"minmax", "percentile", "gptq", "adaround", "loss_aware"})
      EXPECT_NE(run.out.find(method), std::string::npos) << run.out;
  }
  EXPECT_NE(run_cli(dir, "sweep --help").out.find("or all"), std::string::npos);
  EXPECT_NE(run_cli(dir, "bench --help").out.find("0 = all cores"), std::string::npos);
  EXPECT_NE(run_cli(dir, "eval --help").out.find("0 = all cores"), std::string::npos);
}

// Tiny data and a model trained on it, shared by the tests below.
struct Trained {
  std::string dir, data, model, quantized;
};
Trained train_tiny(const std::string& dir) {
  write_idx_dataset(dir + "/data/mnist", 200, 50);
  Trained t{dir, " --data-dir " + dir + "/data", dir + "/m.lbm", dir + "/q.lbq"};
  EXPECT_EQ(run_cli(dir, "train --epochs 1 --threads 1 --out " + t.model + t.data).exit_code, 0);
  EXPECT_EQ(run_cli(dir, "quantize --bits 8 --model " + t.model + " --out " + t.quantized + t.data)
                .exit_code, 0);
  return t;
}

TEST(CliConventions, SweepMethodsAllRunsEveryPreset) {
  const Trained t = train_tiny(fresh_dir());
  const CliRun run = run_cli(t.dir, "sweep --model " + t.model + " --bits 8 --methods all --out-dir " +
                                        t.dir + "/sweep --quiet" + t.data);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const CliRun help = run_cli(t.dir, "quantize --help");
  std::set<std::string> methods;
  const auto sweep = nlohmann::json::parse(slurp(t.dir + "/sweep/sweep.json"));
  for (const auto& row : sweep["results"]) {
    methods.insert(row["method"].get<std::string>());
    EXPECT_NE(help.out.find(row["method"].get<std::string>()), std::string::npos);
  }
  EXPECT_EQ(methods.size(), 9u);
}

TEST(CliConventions, ImpossibleBudgetFailsBeforeTheSearch) {
  const Trained t = train_tiny(fresh_dir());
  const CliRun run = run_cli(t.dir, "sensitivity --model " + t.model + " --bits 2,8 --budget 10 --validation 40 --quiet" +
                                        t.data);
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_NE(run.err.find("--budget 10: no configuration fits; every layer at 2 bits (the narrowest of "
                         "--bits) takes "), std::string::npos) << run.err;
  EXPECT_TRUE(run.out.empty()) << run.out;  // no table: the work never started
  // The smallest point itself fits, and is the one chosen.
  const size_t at = run.err.find("takes ") + 6;
  const std::string smallest = run.err.substr(at, run.err.find(' ', at) - at);
  const CliRun fits = run_cli(t.dir, "sensitivity --model " + t.model + " --bits 2,8 --json --budget " +
                                         smallest + " --validation 40 --quiet --out-dir " + t.dir + "/p" + t.data);
  ASSERT_EQ(fits.exit_code, 0) << fits.err;
  const auto json = nlohmann::json::parse(fits.out);
  EXPECT_EQ(json["chosen"]["weight_bytes"].get<int64_t>(), std::stoll(smallest));
  EXPECT_EQ(nlohmann::json::parse(slurp(t.dir + "/p/pareto.json"))["chosen"], json["chosen"]);
}

TEST(CliConventions, JsonForEvalInferAndDataList) {
  const Trained t = train_tiny(fresh_dir());
  for (const std::string& model : {t.model, t.quantized}) {
    const CliRun text = run_cli(t.dir, "eval --model " + model + t.data);
    const CliRun json = run_cli(t.dir, "eval --json --model " + model + t.data);
    ASSERT_EQ(json.exit_code, 0) << json.err;
    const auto result = nlohmann::json::parse(json.out);
    char accuracy[32];
    std::snprintf(accuracy, sizeof accuracy, "accuracy %.2f%%", 100 * result["accuracy"].get<double>());
    EXPECT_NE(text.out.find(accuracy), std::string::npos) << text.out << json.out;
    EXPECT_EQ(result["dataset"], "mnist");
    EXPECT_EQ(result["test_count"], 50);
    EXPECT_EQ(result["kind"], model == t.model ? "float" : "quantized");
  }
  const std::string images = t.dir + "/data/mnist/t10k-images-idx3-ubyte.gz";
  const CliRun infer = run_cli(t.dir, "infer --json --top 2 --model " + t.quantized + " " + images);
  ASSERT_EQ(infer.exit_code, 0) << infer.err;
  const auto predictions = nlohmann::json::parse(infer.out);
  EXPECT_EQ(predictions["total"], 50);
  ASSERT_EQ(predictions["predictions"].size(), 20u);
  EXPECT_EQ(predictions["predictions"][3]["image"], "image 3");
  EXPECT_EQ(predictions["predictions"][3]["top"].size(), 2u);
  EXPECT_EQ(predictions["predictions"][3]["top"][0]["class"], predictions["predictions"][3]["class"]);
  const CliRun list = run_cli(t.dir, "data list --json" + t.data);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  bool mnist = false;
  for (const auto& row : nlohmann::json::parse(list.out))
    if (row["dataset"] == "mnist") mnist = row["found"] && row["train"] == 200 && row["test"] == 50;
  EXPECT_TRUE(mnist) << list.out;
}

TEST(CliConventions, InferSaysWhenItShowsOnlySomeImages) {
  const Trained t = train_tiny(fresh_dir());
  const std::string images = t.dir + "/data/mnist/t10k-images-idx3-ubyte.gz";
  CliRun run = run_cli(t.dir, "infer --model " + t.quantized + " " + images);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(std::count(run.out.begin(), run.out.end(), '\n'), 20);
  EXPECT_NE(run.err.find("showing the first 20 of 50 in " + images + " (--limit N for more)"),
            std::string::npos) << run.err;
  run = run_cli(t.dir, "infer --limit 80 --model " + t.quantized + " " + images);
  EXPECT_EQ(std::count(run.out.begin(), run.out.end(), '\n'), 50);
  EXPECT_NE(run.err.find("all 50 in "), std::string::npos) << run.err;
  // By content, not by name: the same gzip IDX file named like a PNG.
  fs::copy_file(images, t.dir + "/digits.PNG");
  const CliRun renamed = run_cli(t.dir, "infer --model " + t.quantized + " " + t.dir + "/digits.PNG");
  ASSERT_EQ(renamed.exit_code, 0) << renamed.err;
  EXPECT_EQ(renamed.out, run_cli(t.dir, "infer --model " + t.quantized + " " + images).out);
  // --quiet leaves out the images line.
  EXPECT_EQ(run_cli(t.dir, "infer --quiet --model " + t.quantized + " " + images).err, "");
}

void write_png(const std::string& path, png_uint_32 format, int height, int width,
               const std::vector<uint8_t>& pixels) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = width;
  image.height = height;
  image.format = format;
  ASSERT_TRUE(png_image_write_to_file(&image, path.c_str(), 0, pixels.data(), 0, nullptr));
}

// What infer printed for one image, without the image's name.
std::string prediction(const CliRun& run) { return run.out.substr(run.out.find(':')); }

TEST(CliConventions, InferConvertsResizesAndInvertsPngs) {
  const Trained t = train_tiny(fresh_dir());
  const std::string infer = "infer --model " + t.quantized + " ";
  // A dark-background 2x3 image, as the training data (mnist) has.
  const std::vector<uint8_t> gray = {0, 200, 0, 0, 128, 0};
  write_png(t.dir + "/gray.png", PNG_FORMAT_GRAY, 2, 3, gray);
  const CliRun reference = run_cli(t.dir, infer + t.dir + "/gray.png");
  ASSERT_EQ(reference.exit_code, 0) << reference.err;
  EXPECT_EQ(reference.err.find("inverted"), std::string::npos) << reference.err;

  // The same picture in RGBA, named in capitals: read by content, converted by libpng.
  std::vector<uint8_t> rgba;
  for (uint8_t v : gray) rgba.insert(rgba.end(), {v, v, v, 255});
  write_png(t.dir + "/UPPER7.PNG", PNG_FORMAT_RGBA, 2, 3, rgba);
  const CliRun upper = run_cli(t.dir, infer + t.dir + "/UPPER7.PNG");
  ASSERT_EQ(upper.exit_code, 0) << upper.err;
  EXPECT_EQ(prediction(upper), prediction(reference));

  // 4x6, each pixel of the 2x3 picture as a 2x2 block, but the 128 block as {0, 0, 255, 255}:
  // the area filter averages it to 128, as in the reference.
  std::vector<uint8_t> big(24);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x) big[y * 6 + x] = gray[(y / 2) * 3 + x / 2];
  big[2 * 6 + 2] = big[2 * 6 + 3] = 0;
  big[3 * 6 + 2] = big[3 * 6 + 3] = 255;
  write_png(t.dir + "/big.png", PNG_FORMAT_GRAY, 4, 6, big);
  const CliRun unsized = run_cli(t.dir, infer + t.dir + "/big.png");
  EXPECT_EQ(unsized.exit_code, 1);
  EXPECT_NE(unsized.err.find(t.dir + "/big.png: 6x4 pixels, the model takes 3x2; --resize scales it"),
            std::string::npos) << unsized.err;
  const CliRun resized = run_cli(t.dir, infer + "--resize " + t.dir + "/big.png");
  ASSERT_EQ(resized.exit_code, 0) << resized.err;
  EXPECT_EQ(prediction(resized), prediction(reference));

  // Dark on light: a note, naming the file; --invert turns it into the reference.
  std::vector<uint8_t> light;
  for (uint8_t v : gray) light.push_back(static_cast<uint8_t>(255 - v));
  write_png(t.dir + "/light.png", PNG_FORMAT_GRAY, 2, 3, light);
  const CliRun noted = run_cli(t.dir, infer + t.dir + "/light.png");
  ASSERT_EQ(noted.exit_code, 0) << noted.err;
  EXPECT_NE(noted.err.find("lowbit: note: " + t.dir + "/light.png looks inverted: its border is bright"),
            std::string::npos) << noted.err;
  EXPECT_NE(noted.err.find("try --invert"), std::string::npos) << noted.err;
  const CliRun inverted = run_cli(t.dir, infer + "--invert " + t.dir + "/light.png");
  ASSERT_EQ(inverted.exit_code, 0) << inverted.err;
  EXPECT_EQ(inverted.err.find("inverted"), std::string::npos) << inverted.err;
  EXPECT_EQ(prediction(inverted), prediction(reference));

  // One bad file among good ones: reported on its own line, the others classified, exit 1.
  testing_data::write_text(t.dir + "/broken.png", "not a picture");
  const CliRun mixed = run_cli(t.dir, infer + t.dir + "/gray.png " + t.dir + "/broken.png " +
                                          t.dir + "/UPPER7.PNG");
  EXPECT_EQ(mixed.exit_code, 1);
  EXPECT_NE(mixed.out.find(t.dir + "/gray.png: class"), std::string::npos) << mixed.out;
  EXPECT_NE(mixed.out.find(t.dir + "/UPPER7.PNG: class"), std::string::npos) << mixed.out;
  EXPECT_EQ(mixed.out.find("broken"), std::string::npos) << mixed.out;
  EXPECT_NE(mixed.err.find("lowbit: error: " + t.dir + "/broken.png: not a PNG file\n"),
            std::string::npos) << mixed.err;
  EXPECT_NE(mixed.err.find("images: 2 of 3 PNG files"), std::string::npos) << mixed.err;
}

// A terminal gets a bar; a pipe gets nothing for quick work; --quiet silences both.
TEST(CliConventions, ProgressBarOnATerminalOnly) {
  const Trained t = train_tiny(fresh_dir());
  if (std::system("script -qec true /dev/null >/dev/null 2>&1") != 0) GTEST_SKIP() << "no script(1)";
  const std::string sweep = std::string(LOWBIT_CLI_PATH) + " sweep --model " + t.model +
                            " --bits 4,8 --methods minmax,mse --out-dir " + t.dir + "/sweep" + t.data;
  auto on_terminal = [&](const std::string& args) {
    const std::string out = t.dir + "/terminal.txt";
    EXPECT_EQ(std::system(("script -qec '" + args + "' /dev/null >" + out + " 2>&1").c_str()), 0);
    return slurp(out);
  };
  const std::string shown = on_terminal(sweep);
  EXPECT_NE(shown.find("\r["), std::string::npos) << shown;
  EXPECT_NE(shown.find("100% sweep: rows (method, bits) 4/4"), std::string::npos) << shown;
  const std::string silent = on_terminal(sweep + " --quiet");
  EXPECT_EQ(silent.find("\r["), std::string::npos) << silent;
  EXPECT_EQ(silent.find("data: "), std::string::npos) << silent;
  const CliRun piped = run_cli(t.dir, "sweep --model " + t.model + " --bits 4,8 --out-dir " + t.dir +
                                          "/sweep2" + t.data);
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.err.find("\r"), std::string::npos) << piped.err;
  EXPECT_EQ(run_cli(t.dir, "sweep --quiet --model " + t.model + " --bits 8 --out-dir " + t.dir +
                               "/sweep3" + t.data).err, "");
}

}  // namespace
}  // namespace lowbit
