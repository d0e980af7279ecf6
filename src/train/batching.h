// What every training loop shares: the seeded shuffle, fixed shards of a batch, and the NLL loss.
#pragma once

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

// A uniform integer in [0, n) by rejection, identical on every standard library
// (std::uniform_int_distribution is not).
uint64_t uniform_index(std::mt19937_64& rng, uint64_t n);

// Fisher-Yates shuffle of `order` with uniform_index.
void shuffle(std::vector<int64_t>& order, std::mt19937_64& rng);

// Copies images and labels of rows order[begin .. begin+count) into batch [count, ...] and
// batch_labels [count].
void gather(const Tensor& images, std::span<const uint8_t> labels, const std::vector<int64_t>& order,
            int64_t begin, int64_t count, Tensor& batch, std::vector<uint8_t>& batch_labels);

// NLL over log-probabilities [n, classes]; returns the summed loss. When d_logp is given it gets
// -scale at each label (dLoss/dlogp of a mean over 1/scale samples). Counts correct argmaxes
// (first index on ties) and writes them to `predictions` when given.
double nll(const Tensor& log_probs, const uint8_t* labels, Tensor* d_logp, float scale,
           int64_t* correct, uint8_t* predictions = nullptr);

}  // namespace lowbit
