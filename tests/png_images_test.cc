// PNG input for `infer`: every colour type and depth converted by libpng, and the area filter.
#include "lowbit/png_images.h"

#include <gtest/gtest.h>
#include <png.h>

#include <filesystem>
#include <fstream>

#include "data_fixtures.h"
#include "lowbit/error.h"

namespace lowbit {
namespace {

using testing_data::fresh_dir;

// Writes `pixels` (interleaved as `format` says) through libpng's simplified API.
void write_png(const std::string& path, png_uint_32 format, int height, int width,
               const void* pixels, const void* colormap = nullptr, int colormap_entries = 0) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = width;
  image.height = height;
  image.format = format;
  image.colormap_entries = colormap_entries;
  ASSERT_TRUE(png_image_write_to_file(&image, path.c_str(), 0, pixels, 0, colormap)) << image.message;
}

// A 2x3 black-and-white picture, and the same one in every PNG colour type.
const std::vector<uint8_t> kGray = {0, 255, 0, 255, 255, 0};

TEST(PngImages, EveryColourTypeAndDepthReadsAsTheSameGray) {
  const std::string dir = fresh_dir();
  write_png(dir + "/gray.png", PNG_FORMAT_GRAY, 2, 3, kGray.data());
  std::vector<uint8_t> rgb, rgba, ga;
  std::vector<uint16_t> gray16;
  std::vector<uint8_t> indices;
  for (uint8_t v : kGray) {
    rgb.insert(rgb.end(), {v, v, v});
    rgba.insert(rgba.end(), {v, v, v, 255});
    // White pixels stored as transparent black: they must come out white (composited onto white).
    ga.insert(ga.end(), {0, static_cast<uint8_t>(v == 255 ? 0 : 255)});
    gray16.push_back(v == 255 ? 65535 : 0);
    indices.push_back(v == 255 ? 1 : 0);
  }
  const uint8_t colormap[] = {0, 0, 0, 255, 255, 255};
  write_png(dir + "/rgb.png", PNG_FORMAT_RGB, 2, 3, rgb.data());
  write_png(dir + "/rgba.png", PNG_FORMAT_RGBA, 2, 3, rgba.data());
  write_png(dir + "/ga.png", PNG_FORMAT_GA, 2, 3, ga.data());
  write_png(dir + "/gray16.png", PNG_FORMAT_LINEAR_Y, 2, 3, gray16.data());
  write_png(dir + "/palette.png", PNG_FORMAT_RGB_COLORMAP, 2, 3, indices.data(), colormap, 2);
  const std::vector<std::pair<std::string, std::string>> files = {
      {"gray", "gray"}, {"rgb", "RGB"}, {"rgba", "RGBA"}, {"ga", "gray+alpha"},
      {"gray16", "16-bit gray"}, {"palette", "palette"}};
  for (const auto& [name, kind] : files) {
    SCOPED_TRACE(name);
    const std::string path = dir + "/" + name + ".png";
    EXPECT_TRUE(is_png_file(path));
    const Picture picture = read_png(path, 1);
    EXPECT_EQ(picture.kind, kind);
    EXPECT_EQ(picture.height, 2);
    EXPECT_EQ(picture.width, 3);
    EXPECT_EQ(picture.pixels, kGray);
  }
  EXPECT_EQ(read_png_images({dir + "/rgba.png", dir + "/palette.png"}, 2, 3).count, 2);
}

TEST(PngImages, RgbComesOutAsChannelPlanes) {
  const std::string dir = fresh_dir();
  const uint8_t rgb[] = {10, 20, 30, 40, 50, 60};  // two pixels, 1x2
  write_png(dir + "/c.png", PNG_FORMAT_RGB, 1, 2, rgb);
  const Picture picture = read_png(dir + "/c.png", 3);
  EXPECT_EQ(picture.channels, 3);
  EXPECT_EQ(picture.pixels, (std::vector<uint8_t>{10, 40, 20, 50, 30, 60}));
}

TEST(PngImages, NotAPngIsNamed) {
  const std::string dir = fresh_dir();
  testing_data::write_text(dir + "/fake.png", "certainly not a PNG");
  EXPECT_FALSE(is_png_file(dir + "/fake.png"));
  EXPECT_FALSE(is_png_file(dir + "/missing.png"));
  try {
    read_png(dir + "/fake.png", 1);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/fake.png: "), std::string::npos) << e.what();
  }
}

// Area filter: each output pixel averages the input span it covers, cut pixels weighted.
TEST(PngImages, AreaResizeAveragesWhatEachPixelCovers) {
  Picture row{1, 1, 3, {0, 90, 180}, "gray"};
  // 3 -> 2: [0, 1.5) holds 0 and half of 90; [1.5, 3) half of 90 and 180.
  EXPECT_EQ(resize_area(row, 1, 2).pixels, (std::vector<uint8_t>{30, 150}));
  // 2x2 blocks shrink to their means, per channel.
  Picture square{2, 2, 2, {0, 255, 255, 255, 10, 10, 10, 10}, "RGB"};
  const Picture one = resize_area(square, 1, 1);
  EXPECT_EQ(one.pixels, (std::vector<uint8_t>{191, 10}));  // (0 + 3 * 255) / 4 = 191.25
  // Enlarging by a whole factor repeats each pixel.
  EXPECT_EQ(resize_area(row, 2, 6).pixels,
            (std::vector<uint8_t>{0, 0, 90, 90, 180, 180, 0, 0, 90, 90, 180, 180}));
}

}  // namespace
}  // namespace lowbit
