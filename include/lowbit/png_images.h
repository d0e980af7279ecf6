// Reading a user's own images (PNG of any colour type and depth) for `lowbit infer`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/dataset.h"

namespace lowbit {

// One decoded picture: pixels [channels, height, width], 8 bits each.
struct Picture {
  int64_t channels = 1, height = 0, width = 0;
  std::vector<uint8_t> pixels;
  std::string kind;  // what the file held, e.g. "16-bit gray", "RGBA", "palette"
};

// True when the file starts with the 8-byte PNG signature (format by content, not by name).
bool is_png_file(const std::string& path);

// Reads any PNG libpng reads (gray, gray+alpha, RGB, RGBA, palette; 1 to 16 bits a sample) as
// `channels` planes (1: gray, 3: RGB). libpng's simplified API converts: colour to gray by its
// sRGB luminance weights, 16-bit to 8-bit sRGB, palettes expanded; transparent pixels are
// composited onto white, as a viewer shows them on a white page. Throws lowbit::Error naming
// the file.
Picture read_png(const std::string& path, int64_t channels);

// Area (box) resampling, [C, h, w] -> [C, height, width]: each output pixel is the mean of the
// input rectangle it covers, pixels cut by its edges weighted by the part covered
// (docs/cli.md says why this filter).
Picture resize_area(const Picture& picture, int64_t height, int64_t width);

// Reads each PNG (any type, as read_png) as one gray image; all must be width x height. Labels
// are 0 (unknown). Throws lowbit::Error naming the file on anything else.
ImageSet read_png_images(const std::vector<std::string>& paths, int64_t height, int64_t width);

}  // namespace lowbit
