// How the engine spreads a batch over threads: fixed-size chunks handed out one at a time.
#pragma once

#include <algorithm>
#include <cstdint>

namespace lowbit {

// Calls run_chunk(begin, rows) over [0, batch) in chunks of `chunk` rows. Small batches run on the
// calling thread with no parallel region; larger ones go to OpenMP threads one chunk at a time, so
// on a shared machine a descheduled thread leaves its work to the other. Integer results do not
// depend on the partition.
template <typename RunChunk>
void for_each_chunk(int64_t batch, int64_t chunk, const RunChunk& run_chunk) {
  if (batch <= chunk) {
    run_chunk(int64_t{0}, batch);
    return;
  }
  const int64_t chunks = (batch + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) run_chunk(c * chunk, std::min(chunk, batch - c * chunk));
}

}  // namespace lowbit
