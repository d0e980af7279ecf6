// normalized_images: 8-bit pixels to normalized floats through a 256-entry table per channel, so
// the per-pixel work is one load; called on the whole training set every run.
#include <array>

#include "lowbit/dataset.h"
#include "lowbit/error.h"

namespace lowbit {

Tensor normalized_images(const ImageSet& images, const std::vector<float>& mean,
                         const std::vector<float>& std, int64_t begin, int64_t count,
                         bool flatten) {
  if (begin < 0 || count < 0 || begin > images.count || count > images.count - begin)
    throw Error("normalized_images: images [" + std::to_string(begin) + ", " +
                std::to_string(begin + count) + ") outside a set of " +
                std::to_string(images.count));
  const int64_t channels = images.channels;
  if (static_cast<int64_t>(mean.size()) != channels || static_cast<int64_t>(std.size()) != channels)
    throw Error("normalized_images: " + std::to_string(mean.size()) + " means and " +
                std::to_string(std.size()) + " stds for " + std::to_string(channels) +
                " channels");
  const int64_t image_size = images.image_size();
  if (static_cast<int64_t>(images.pixels.size()) < (begin + count) * image_size)
    throw Error("normalized_images: image set holds fewer pixels than its count says");

  std::vector<std::array<float, 256>> table(channels);
  for (int64_t c = 0; c < channels; ++c) {
    if (!(std[c] > 0.0f)) throw Error("normalized_images: std of channel " + std::to_string(c) + " is not positive");
    for (int p = 0; p < 256; ++p) table[c][p] = (p / 255.0f - mean[c]) / std[c];
  }

  Tensor out(flatten ? Shape{count, image_size}
                     : Shape{count, channels, images.height, images.width});
  const int64_t plane = images.height * images.width;
  const uint8_t* in = images.pixels.data() + begin * image_size;
  float* dst = out.data();
  for (int64_t i = 0; i < count; ++i)
    for (int64_t c = 0; c < channels; ++c) {
      const float* lookup = table[c].data();
      for (int64_t k = 0; k < plane; ++k) *dst++ = lookup[*in++];
    }
  return out;
}

}  // namespace lowbit
