// What every training loop shares: the seeded shuffle, fixed shards of a batch, and the NLL loss.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "lowbit/tensor.h"

namespace lowbit {

// A batch is split into shards of this many rows whatever the thread count; shard gradients are
// summed in shard order, so a trained model is the same bit for bit on 1 or 2 threads.
inline constexpr int64_t kShardRows = 32;

inline int64_t shard_count(int64_t rows) { return (rows + kShardRows - 1) / kShardRows; }

// Runs work(shard, first_row, rows_in_shard) for each fixed shard of the batch rows
// [begin, begin + rows), in parallel. Shards are the same whatever the thread count.
template <typename Work>
void for_each_shard(int64_t begin, int64_t rows, Work&& work) {
  const int64_t shards = shard_count(rows);
#pragma omp parallel for schedule(static)
  for (int64_t shard = 0; shard < shards; ++shard) {
    const int64_t first = begin + shard * kShardRows;
    work(shard, first, std::min(kShardRows, begin + rows - first));
  }
}

// total[p] = sum over the first `used` shards of shards[s].gradients[p], added in shard order so
// that the sum does not depend on which thread computed which shard.
template <typename Shard>
void sum_shard_gradients(const std::vector<Shard>& shards, int64_t used, std::vector<Tensor>& total) {
  for (size_t p = 0; p < total.size(); ++p) {
    float* dst = total[p].data();
    std::copy_n(shards[0].gradients[p].data(), total[p].size(), dst);
    for (int64_t s = 1; s < used; ++s) {
      const float* src = shards[s].gradients[p].data();
      for (int64_t j = 0; j < total[p].size(); ++j) dst[j] += src[j];
    }
  }
}

// Scales `gradients` so that their global L2 norm (summed in double, in parameter order) is at
// most max_norm, as torch.nn.utils.clip_grad_norm_: by max_norm / (norm + 1e-6) when larger.
// Returns the norm before clipping.
double clip_gradient_norm(std::vector<Tensor>& gradients, float max_norm);

// A uniform integer in [0, n) by rejection, identical on every standard library
// (std::uniform_int_distribution is not).
uint64_t uniform_index(std::mt19937_64& rng, uint64_t n);

// Fisher-Yates shuffle of `order` with uniform_index.
void shuffle(std::vector<int64_t>& order, std::mt19937_64& rng);

// Copies images and labels of rows order[begin .. begin+count) into batch [count, ...] and
// batch_labels [count].
void gather(const Tensor& images, std::span<const uint8_t> labels, const std::vector<int64_t>& order,
            int64_t begin, int64_t count, Tensor& batch, std::vector<uint8_t>& batch_labels);

// Throws lowbit::Error unless every label is below `classes` (the model's outputs): nll reads the
// output a label names, so a model with fewer outputs than the data has classes must be refused
// before any work starts.
void check_labels(int64_t classes, std::span<const uint8_t> labels);

// NLL over log-probabilities [n, classes]; returns the summed loss. When d_logp is given it gets
// -scale at each label (dLoss/dlogp of a mean over 1/scale samples). Counts correct argmaxes
// (first index on ties) and writes them to `predictions` when given. With label smoothing eps the
// target is (1 - eps) at the label plus eps / classes at every class (Szegedy et al. 2016, as
// PyTorch's CrossEntropyLoss(label_smoothing=eps)): loss -(1 - eps) logp[label] - eps/classes
// sum logp, and d_logp gets -scale eps / classes at every class on top.
double nll(const Tensor& log_probs, const uint8_t* labels, Tensor* d_logp, float scale,
           int64_t* correct, uint8_t* predictions = nullptr, float smoothing = 0);

}  // namespace lowbit
