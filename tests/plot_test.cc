// Charts written through PLplot: real PNG/SVG output, and clean failures that leave no file.
#include "lowbit/plot.h"

#include <gtest/gtest.h>
#include <png.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iterator>
#include <set>

#include "lowbit/error.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

std::string temp_dir() {
  const std::string dir = std::string(LOWBIT_TEST_TMP) + "/plot";
  fs::create_directories(dir);
  return dir;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::uint32_t big_endian(const std::string& bytes, std::size_t at) {
  std::uint32_t value = 0;
  for (std::size_t i = at; i < at + 4; ++i)
    value = value << 8 | static_cast<unsigned char>(bytes[i]);
  return value;
}

// Files in `dir` whose name starts with `name`: the chart itself or its temporary file.
int files_named_like(const std::string& dir, const std::string& name) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().starts_with(name)) ++count;
  return count;
}

struct Pixels {
  int distinct_colours = 0;
  double non_white_fraction = 0;
};

Pixels decode(const std::string& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  EXPECT_TRUE(png_image_begin_read_from_file(&image, path.c_str())) << image.message;
  image.format = PNG_FORMAT_RGB;
  std::vector<png_byte> rgb(PNG_IMAGE_SIZE(image));
  EXPECT_TRUE(png_image_finish_read(&image, nullptr, rgb.data(), 0, nullptr)) << image.message;
  std::set<std::uint32_t> colours;
  std::size_t non_white = 0;
  for (std::size_t i = 0; i + 2 < rgb.size(); i += 3) {
    colours.insert(rgb[i] << 16 | rgb[i + 1] << 8 | rgb[i + 2]);
    if (rgb[i] != 255 || rgb[i + 1] != 255 || rgb[i + 2] != 255) ++non_white;
  }
  return {static_cast<int>(colours.size()), static_cast<double>(non_white) / (rgb.size() / 3)};
}

LinePlot accuracy_by_bits() {
  LinePlot plot;
  plot.title = "FC_NN on MNIST: test accuracy by bit width";
  plot.x_label = "bits";
  plot.y_label = "test accuracy (%)";
  plot.x_min = 0.6, plot.x_max = 8.4, plot.y_min = 0, plot.y_max = 100;
  for (int bits = 1; bits <= 8; ++bits) plot.x_ticks.push_back(bits);
  PlotSeries method{"uniform, per-tensor", {}, {}};
  PlotSeries reference{"reference (paper)", {}, {}, true};
  const double reference_accuracy[] = {9.74, 11.5, 76.74, 92.29, 96.0, 96.65, 97.0, 96.71};
  for (int bits = 1; bits <= 8; ++bits) {
    method.x.push_back(bits);
    method.y.push_back(100 - 90 * std::exp(-0.9 * (bits - 1)));
    reference.x.push_back(bits);
    reference.y.push_back(reference_accuracy[bits - 1]);
  }
  PlotSeries float_model{"float 32", {0.6, 8.4}, {97.1, 97.1}, true, false};
  plot.series = {method, reference, float_model};
  return plot;
}

Histogram weight_histogram() {
  Histogram histogram{"fc1 weights", "weight", {}, 64, {-0.25, 0.25}};
  for (int i = 0; i < 5000; ++i)
    histogram.values.push_back(0.1 * std::sin(i * 0.37) * std::cos(i * 0.011));
  return histogram;
}

void expect_error_naming(const std::function<void()>& write, const std::string& path) {
  try {
    write();
    FAIL() << "expected lowbit::Error for " << path;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(LinePlot, PngHasSignatureSizeAndDrawing) {
  const std::string path = temp_dir() + "/accuracy.png";
  testing::internal::CaptureStdout();
  write_line_plot(accuracy_by_bits(), path);
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "");  // PLplot may not chat on stdout
  const std::string bytes = read_bytes(path);
  ASSERT_GT(bytes.size(), 24u);
  EXPECT_EQ(bytes.substr(0, 8), "\x89PNG\r\n\x1a\n");
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  EXPECT_EQ(big_endian(bytes, 16), 900u);
  EXPECT_EQ(big_endian(bytes, 20), 600u);
  const Pixels pixels = decode(path);
  EXPECT_GT(pixels.distinct_colours, 20);  // anti-aliased curves in several colours
  EXPECT_GT(pixels.non_white_fraction, 0.01);
  EXPECT_LT(pixels.non_white_fraction, 0.5);  // the background is white
  EXPECT_EQ(files_named_like(temp_dir(), "accuracy.png"), 1);  // no temp file left
}

TEST(LinePlot, SvgIsTextWithTitle) {
  const std::string path = temp_dir() + "/accuracy.svg";
  write_line_plot(accuracy_by_bits(), path);
  const std::string svg = read_bytes(path);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("FC_NN on MNIST: test accuracy by bit width"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

TEST(LinePlot, ManyPlotsInOneProcess) {
  for (const char* name : {"/again.png", "/again.svg", "/again2.png"})
    EXPECT_NO_THROW(write_line_plot(accuracy_by_bits(), temp_dir() + name));
  EXPECT_TRUE(fs::exists(temp_dir() + "/again2.png"));
}

TEST(LinePlot, SinglePointAndEqualRangeAreWidened) {
  LinePlot plot;
  plot.x_min = plot.x_max = 4;
  plot.series = {{"one", {4}, {0.5}}};
  EXPECT_NO_THROW(write_line_plot(plot, temp_dir() + "/single.png"));
}

TEST(LinePlot, BadInputThrowsNamingPathAndLeavesNoFile) {
  const std::string dir = temp_dir();
  const std::string bad_extension = dir + "/chart.jpg";
  expect_error_naming([&] { write_line_plot(accuracy_by_bits(), bad_extension); }, bad_extension);
  EXPECT_EQ(files_named_like(dir, "chart.jpg"), 0);

  const std::string no_series = dir + "/empty.png";
  LinePlot empty = accuracy_by_bits();
  empty.series.clear();
  expect_error_naming([&] { write_line_plot(empty, no_series); }, no_series);
  EXPECT_EQ(files_named_like(dir, "empty.png"), 0);

  const std::string with_nan = dir + "/nan.png";
  LinePlot nan = accuracy_by_bits();
  nan.series[0].y[3] = std::nan("");
  expect_error_naming([&] { write_line_plot(nan, with_nan); }, with_nan);
  EXPECT_EQ(files_named_like(dir, "nan.png"), 0);

  const std::string reversed = dir + "/reversed.png";
  LinePlot backwards = accuracy_by_bits();
  backwards.y_min = 100, backwards.y_max = 0;
  expect_error_naming([&] { write_line_plot(backwards, reversed); }, reversed);
  EXPECT_EQ(files_named_like(dir, "reversed.png"), 0);
}

TEST(LinePlot, UnwritableDirectoryThrowsNamingPath) {
  // Runs as root in CI, so permissions cannot make a directory unwritable: use a missing one
  // and one whose "directory" is a regular file.
  const std::string missing = temp_dir() + "/no/such/dir/chart.png";
  expect_error_naming([&] { write_line_plot(accuracy_by_bits(), missing); }, missing);
  const std::string file_as_dir = temp_dir() + "/plain_file";
  std::ofstream(file_as_dir) << "x";
  const std::string under_file = file_as_dir + "/chart.svg";
  expect_error_naming([&] { write_line_plot(accuracy_by_bits(), under_file); }, under_file);
}

TEST(Histogram, PngWithMarkers) {
  const std::string path = temp_dir() + "/weights.png";
  write_histogram(weight_histogram(), path);
  const std::string bytes = read_bytes(path);
  ASSERT_GT(bytes.size(), 24u);
  EXPECT_EQ(big_endian(bytes, 16), 900u);
  EXPECT_EQ(big_endian(bytes, 20), 600u);
  EXPECT_GT(decode(path).non_white_fraction, 0.05);  // filled bars
}

// A sweep of nine methods plus its two reference lines: no two series share a colour.
TEST(LinePlot, ElevenSeriesGetElevenColours) {
  LinePlot plot;
  plot.title = "eleven series";
  plot.x_min = 0, plot.x_max = 1, plot.y_min = 0, plot.y_max = 12;
  for (int i = 0; i < 11; ++i)
    plot.series.push_back({"series " + std::to_string(i), {0, 1}, {i + 0.5, i + 0.5}, false, false});
  const std::string path = temp_dir() + "/eleven.svg";
  write_line_plot(plot, path);
  const std::string svg = read_bytes(path);
  std::set<std::string> strokes;
  for (size_t at = svg.find("stroke:rgb("); at != std::string::npos; at = svg.find("stroke:rgb(", at + 1))
    strokes.insert(svg.substr(at, svg.find(')', at) - at));
  EXPECT_GE(strokes.size(), 11u + 2u);  // the series, the ink and the grid
}

// Counts in the hundred thousands: PLplot's "(x10^5)" would sit above the axis, where the title
// goes; counts are printed in full, and nothing but the title is drawn above the axes.
TEST(Histogram, LargeCountsDrawNothingAboveTheAxes) {
  Histogram big{"", "value", std::vector<double>(300000, 1.0), 4, {}};
  big.values.push_back(0.0);
  const std::string path = temp_dir() + "/big_counts.png";
  write_histogram(big, path);
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  ASSERT_TRUE(png_image_begin_read_from_file(&image, path.c_str())) << image.message;
  image.format = PNG_FORMAT_GRAY;
  std::vector<png_byte> gray(PNG_IMAGE_SIZE(image));
  ASSERT_TRUE(png_image_finish_read(&image, nullptr, gray.data(), 0, nullptr)) << image.message;
  int marked = 0;
  for (int y = 0; y < 50; ++y)  // the axes start 60 pixels down (top 0.90 of 600)
    for (int x = 0; x < 900; ++x) marked += gray[y * 900 + x] < 200;
  EXPECT_EQ(marked, 0);
}

TEST(Histogram, SvgAndConstantValues) {
  Histogram constant{"constant", "value", {2.0, 2.0, 2.0}, 8, {}};
  EXPECT_NO_THROW(write_histogram(constant, temp_dir() + "/constant.svg"));
}

TEST(Histogram, BadInputThrowsNamingPathAndLeavesNoFile) {
  const std::string dir = temp_dir();
  const std::string no_values = dir + "/no_values.png";
  expect_error_naming([&] { write_histogram(Histogram{}, no_values); }, no_values);
  const std::string no_bins = dir + "/no_bins.png";
  Histogram zero_bins = weight_histogram();
  zero_bins.bins = 0;
  expect_error_naming([&] { write_histogram(zero_bins, no_bins); }, no_bins);
  const std::string with_nan = dir + "/hist_nan.svg";
  Histogram nan = weight_histogram();
  nan.values[7] = std::nan("");
  expect_error_naming([&] { write_histogram(nan, with_nan); }, with_nan);
  for (const char* name : {"no_values.png", "no_bins.png", "hist_nan.svg"})
    EXPECT_EQ(files_named_like(dir, name), 0) << name;
}

}  // namespace
}  // namespace lowbit
