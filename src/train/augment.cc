// Crop, flip and cutout of one image from its own seed; mirroring for test-time averaging.
#include "train/augment.h"

#include <algorithm>
#include <random>

#include "lowbit/layers.h"
#include "train/batching.h"

namespace lowbit {

uint64_t augmentation_seed(uint64_t seed, int epoch, int64_t index) {
  constexpr uint64_t kAugmentationStream = 0x6175676d656e74ULL;  // "augment"
  return mix_seed(mix_seed(mix_seed(seed, kAugmentationStream), static_cast<uint64_t>(epoch)),
                  static_cast<uint64_t>(index));
}

void augment_image(float* image, int64_t channels, int64_t height, int64_t width,
                   const Augmentation& augmentation, uint64_t image_seed, std::vector<float>& scratch) {
  std::mt19937_64 rng(image_seed);
  const int64_t pad = augmentation.crop_padding, plane = height * width;
  int64_t dy = 0, dx = 0;
  if (pad > 0) {
    dy = static_cast<int64_t>(uniform_index(rng, 2 * pad + 1)) - pad;
    dx = static_cast<int64_t>(uniform_index(rng, 2 * pad + 1)) - pad;
  }
  const bool flip = augmentation.flip && (rng() >> 63) != 0;
  if (dy != 0 || dx != 0 || flip) {
    scratch.assign(image, image + channels * plane);
    for (int64_t c = 0; c < channels; ++c) {
      const float fill = augmentation.fill.empty() ? 0.0f : augmentation.fill[c];
      const float* src = scratch.data() + c * plane;
      float* dst = image + c * plane;
      for (int64_t y = 0; y < height; ++y) {
        const int64_t sy = y + dy;
        for (int64_t x = 0; x < width; ++x) {
          // Output column x shows the crop's column x, or its mirror W-1-x when flipped.
          const int64_t sx = (flip ? width - 1 - x : x) + dx;
          dst[y * width + x] =
              sy >= 0 && sy < height && sx >= 0 && sx < width ? src[sy * width + sx] : fill;
        }
      }
    }
  }
  if (augmentation.cutout > 0) {
    const int64_t cy = static_cast<int64_t>(uniform_index(rng, static_cast<uint64_t>(height)));
    const int64_t cx = static_cast<int64_t>(uniform_index(rng, static_cast<uint64_t>(width)));
    const int64_t half = augmentation.cutout / 2;
    const int64_t y0 = std::max<int64_t>(0, cy - half), y1 = std::min(height, cy - half + augmentation.cutout);
    const int64_t x0 = std::max<int64_t>(0, cx - half), x1 = std::min(width, cx - half + augmentation.cutout);
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t y = y0; y < y1; ++y)
        std::fill(image + c * plane + y * width + x0, image + c * plane + y * width + x1, 0.0f);
  }
}

Tensor mirror_images(const Tensor& images, int64_t channels, int64_t height, int64_t width) {
  Tensor out(images.shape());
  const int64_t rows = images.dim(0) * channels * height;
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = images.data() + r * width;
    float* dst = out.data() + r * width;
    for (int64_t x = 0; x < width; ++x) dst[x] = src[width - 1 - x];
  }
  return out;
}

}  // namespace lowbit
