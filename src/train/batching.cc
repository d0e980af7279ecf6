// Seeded shuffling, gradient clipping and the NLL loss shared by float training and QAT.
#include "train/batching.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "lowbit/error.h"

namespace lowbit {

uint64_t uniform_index(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t r;
  do r = rng(); while (r >= limit);
  return r % n;
}

double clip_gradient_norm(std::vector<Tensor>& gradients, float max_norm) {
  double sum = 0;
  for (const Tensor& g : gradients)
    for (float v : g.values()) sum += static_cast<double>(v) * v;
  const double norm = std::sqrt(sum);
  if (norm <= max_norm) return norm;
  const float factor = static_cast<float>(max_norm / (norm + 1e-6));
  for (Tensor& g : gradients)
    for (int64_t j = 0; j < g.size(); ++j) g[j] *= factor;
  return norm;
}

void shuffle(std::vector<int64_t>& order, std::mt19937_64& rng) {
  for (int64_t i = static_cast<int64_t>(order.size()) - 1; i > 0; --i)
    std::swap(order[i], order[uniform_index(rng, static_cast<uint64_t>(i) + 1)]);
}

void gather(const Tensor& images, std::span<const uint8_t> labels, const std::vector<int64_t>& order,
            int64_t begin, int64_t count, Tensor& batch, std::vector<uint8_t>& batch_labels) {
  const int64_t features = images.row_size();
  Shape shape = images.shape();
  shape[0] = count;
  batch.resize(shape);
  batch_labels.resize(count);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t row = order[begin + i];
    std::memcpy(batch.data() + i * features, images.data() + row * features,
                sizeof(float) * features);
    batch_labels[i] = labels[row];
  }
}

void check_labels(int64_t classes, std::span<const uint8_t> labels) {
  if (labels.empty()) return;
  const uint8_t largest = *std::max_element(labels.begin(), labels.end());
  if (largest >= classes)
    throw Error("the model has " + std::to_string(classes) + " outputs (classes), but the data has label " +
                std::to_string(largest) + ": it needs at least " + std::to_string(largest + 1));
}

double nll(const Tensor& log_probs, const uint8_t* labels, Tensor* d_logp, float scale,
           int64_t* correct, uint8_t* predictions, float smoothing) {
  const int64_t n = log_probs.dim(0), classes = log_probs.row_size();
  if (d_logp) {
    d_logp->resize(log_probs.shape());
    d_logp->fill(0.0f);
  }
  double loss = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = log_probs.data() + i * classes;
    const int64_t best = std::max_element(row, row + classes) - row;
    if (best == labels[i]) ++*correct;
    if (predictions) predictions[i] = static_cast<uint8_t>(best);
    if (smoothing == 0.0f) {
      loss -= row[labels[i]];
      if (d_logp) (*d_logp)[i * classes + labels[i]] = -scale;
      continue;
    }
    double sum = 0;
    for (int64_t k = 0; k < classes; ++k) sum += row[k];
    const double share = static_cast<double>(smoothing) / static_cast<double>(classes);
    loss -= (1.0 - smoothing) * row[labels[i]] + share * sum;
    if (d_logp) {
      float* d = d_logp->data() + i * classes;
      const float spread = -scale * smoothing / static_cast<float>(classes);
      for (int64_t k = 0; k < classes; ++k) d[k] = spread;
      d[labels[i]] -= scale * (1.0f - smoothing);
    }
  }
  return loss;
}

}  // namespace lowbit
