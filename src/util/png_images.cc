// PNG input through libpng's simplified API.
#include "lowbit/png_images.h"

#include <png.h>

#include <cstring>

#include "lowbit/error.h"

namespace lowbit {

ImageSet read_png_images(const std::vector<std::string>& paths, int64_t height, int64_t width) {
  ImageSet set;
  set.channels = 1;
  set.height = height;
  set.width = width;
  for (const std::string& path : paths) {
    png_image image;
    std::memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&image, path.c_str()))
      throw Error(path + ": cannot read PNG: " + image.message);
    const bool gray8 = (image.format & PNG_FORMAT_FLAG_COLOR) == 0 &&
                       (image.format & PNG_FORMAT_FLAG_LINEAR) == 0 &&
                       (image.format & PNG_FORMAT_FLAG_ALPHA) == 0;
    if (!gray8 || image.width != width || image.height != height) {
      png_image_free(&image);
      throw Error(path + ": expected an 8-bit grayscale " + std::to_string(width) + "x" +
                  std::to_string(height) + " PNG, got " + std::to_string(image.width) + "x" +
                  std::to_string(image.height) + (gray8 ? "" : " (not 8-bit grayscale)"));
    }
    image.format = PNG_FORMAT_GRAY;
    const size_t begin = set.pixels.size();
    set.pixels.resize(begin + PNG_IMAGE_SIZE(image));
    if (!png_image_finish_read(&image, nullptr, set.pixels.data() + begin, 0, nullptr))
      throw Error(path + ": cannot decode PNG: " + image.message);
    set.labels.push_back(0);
    ++set.count;
  }
  return set;
}

}  // namespace lowbit
