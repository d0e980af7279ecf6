// Test helpers for quantization tests: a tiny seeded FC_NN and random 4x4 images for it.
#pragma once

#include <cstdint>
#include <random>

#include "lowbit/dataset.h"
#include "lowbit/model.h"

namespace lowbit::testing_models {

// FC_NN on 1x4x4 inputs, 3 classes, initialized from `seed`, with normalization metadata.
inline Model tiny_model(uint64_t seed) {
  Model model = Model::from_description(Model::fc_nn_description({1, 4, 4}, 3));
  model.init(seed);
  model.metadata = {{"mean", {0.5}}, {"std", {0.25}}};
  return model;
}

// `count` random 4x4 one-channel images with random labels in 0..2.
inline ImageSet random_images(int64_t count, uint32_t seed) {
  ImageSet images;
  images.count = count;
  images.height = images.width = 4;
  std::mt19937 gen(seed);
  for (int64_t i = 0; i < count * 16; ++i) images.pixels.push_back(static_cast<uint8_t>(gen()));
  for (int64_t i = 0; i < count; ++i) images.labels.push_back(static_cast<uint8_t>(gen() % 3));
  return images;
}

}  // namespace lowbit::testing_models
