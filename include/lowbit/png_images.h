// Reading a user's own images (8-bit grayscale PNG) for `lowbit infer`.
#pragma once

#include <string>
#include <vector>

#include "lowbit/dataset.h"

namespace lowbit {

// Reads each PNG as one image; all must be 8-bit grayscale of width x height. Labels are 0
// (unknown). Throws lowbit::Error naming the file on anything else.
ImageSet read_png_images(const std::vector<std::string>& paths, int64_t height, int64_t width);

}  // namespace lowbit
