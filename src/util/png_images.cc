// PNG input through libpng's simplified API, which does every colour and depth conversion.
#include "lowbit/png_images.h"

#include <png.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "lowbit/error.h"

namespace lowbit {
namespace {

std::string describe_format(png_uint_32 format) {
  const bool alpha = format & PNG_FORMAT_FLAG_ALPHA;
  if (format & PNG_FORMAT_FLAG_COLORMAP) return alpha ? "palette with transparency" : "palette";
  std::string kind = (format & PNG_FORMAT_FLAG_COLOR) ? (alpha ? "RGBA" : "RGB")
                                                      : (alpha ? "gray+alpha" : "gray");
  return (format & PNG_FORMAT_FLAG_LINEAR) ? "16-bit " + kind : kind;
}

}  // namespace

bool is_png_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char signature[8] = {};
  in.read(reinterpret_cast<char*>(signature), sizeof signature);
  return in.gcount() == 8 && png_sig_cmp(signature, 0, 8) == 0;
}

Picture read_png(const std::string& path, int64_t channels) {
  if (channels != 1 && channels != 3)
    throw Error(path + ": PNG input is gray or RGB, not " + std::to_string(channels) + " channels");
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str()))
    throw Error(path + ": cannot read PNG: " + image.message);
  Picture picture;
  picture.kind = describe_format(image.format);
  picture.channels = channels;
  picture.height = image.height;
  picture.width = image.width;
  // libpng limits a PNG to 2^31-1 pixels a side; the product still needs a bound.
  if (static_cast<uint64_t>(image.height) * image.width > (uint64_t{1} << 28)) {
    png_image_free(&image);
    throw Error(path + ": " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                " pixels is more than lowbit reads (2^28)");
  }
  image.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  // With no background given, libpng composites transparent pixels onto what the buffer holds.
  std::vector<uint8_t> interleaved(PNG_IMAGE_SIZE(image), 255);
  if (!png_image_finish_read(&image, nullptr, interleaved.data(), 0, nullptr))
    throw Error(path + ": cannot decode PNG: " + image.message);
  const int64_t plane = picture.height * picture.width;
  picture.pixels.resize(static_cast<size_t>(channels * plane));
  for (int64_t i = 0; i < plane; ++i)
    for (int64_t c = 0; c < channels; ++c) picture.pixels[c * plane + i] = interleaved[i * channels + c];
  return picture;
}

Picture resize_area(const Picture& picture, int64_t height, int64_t width) {
  // Per output index along one axis: the input pixels it covers and how much of each.
  struct Tap {
    int64_t index;
    double weight;
  };
  auto taps = [](int64_t from, int64_t to) {
    std::vector<std::vector<Tap>> out(static_cast<size_t>(to));
    const double scale = static_cast<double>(from) / static_cast<double>(to);
    for (int64_t o = 0; o < to; ++o) {
      const double begin = o * scale, end = (o + 1) * scale;
      for (int64_t i = static_cast<int64_t>(std::floor(begin)); i < from && i < end; ++i) {
        const double covered = std::min<double>(end, i + 1) - std::max<double>(begin, i);
        if (covered > 0) out[o].push_back({i, covered / scale});
      }
    }
    return out;
  };
  const auto rows = taps(picture.height, height), cols = taps(picture.width, width);
  Picture out = picture;
  out.height = height;
  out.width = width;
  out.pixels.assign(static_cast<size_t>(picture.channels * height * width), 0);
  const int64_t in_plane = picture.height * picture.width;
  for (int64_t c = 0; c < picture.channels; ++c)
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x) {
        double sum = 0;
        for (const Tap& r : rows[y])
          for (const Tap& k : cols[x])
            sum += r.weight * k.weight *
                   picture.pixels[c * in_plane + r.index * picture.width + k.index];
        out.pixels[(c * height + y) * width + x] =
            static_cast<uint8_t>(std::lround(std::min(255.0, std::max(0.0, sum))));
      }
  return out;
}

ImageSet read_png_images(const std::vector<std::string>& paths, int64_t height, int64_t width) {
  ImageSet set;
  set.channels = 1;
  set.height = height;
  set.width = width;
  for (const std::string& path : paths) {
    const Picture picture = read_png(path, 1);
    if (picture.height != height || picture.width != width)
      throw Error(path + ": expected a " + std::to_string(width) + "x" + std::to_string(height) +
                  " PNG, got " + std::to_string(picture.width) + "x" +
                  std::to_string(picture.height));
    set.pixels.insert(set.pixels.end(), picture.pixels.begin(), picture.pixels.end());
    set.labels.push_back(0);
    ++set.count;
  }
  return set;
}

}  // namespace lowbit
