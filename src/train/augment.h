// Training-image augmentation (crop with padding, flip, cutout) and the mirror image for
// test-time flip averaging. Every draw comes from a per-image seed, never from a shared stream.
#pragma once

#include <cstdint>

#include "lowbit/tensor.h"
#include "lowbit/train.h"

namespace lowbit {

// The seed of image `index`'s augmentation in `epoch` of a run seeded `seed`.
uint64_t augmentation_seed(uint64_t seed, int epoch, int64_t index);

// image: one [channels, height, width] image, changed in place; scratch: any buffer (resized).
// Draws, in this order from `image_seed`: the crop offsets dy, dx in [0, 2 padding], the flip
// bit, the cutout centre cy, cx in [0, height) x [0, width).
void augment_image(float* image, int64_t channels, int64_t height, int64_t width,
                   const Augmentation& augmentation, uint64_t image_seed, std::vector<float>& scratch);

// images: [n, ...] with each row a [channels, height, width] image -> the same, mirrored
// left to right.
Tensor mirror_images(const Tensor& images, int64_t channels, int64_t height, int64_t width);

}  // namespace lowbit
