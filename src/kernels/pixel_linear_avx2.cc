// The sparse first layer on AVX2 (pixel_linear.h): pixel pairs with a non-zero pixel, vpmaddwd on
// int16 code deltas and weights (vpmaddubsw on byte deltas when act_bits <= 7). Compiled with -mavx2 -mfma -mbmi2.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/qlinear_simd256.h"
#include "kernels/qlinear_ukernel.h"

namespace lowbit::kernels {
namespace {

constexpr int64_t kBlock = 64;  // output features per weight block: 8 ymm accumulators

// Two int16 deltas d = code - background code in one int32, low half first.
inline int32_t pack_deltas(int32_t d0, int32_t d1) {
  return static_cast<int32_t>((static_cast<uint32_t>(d0) & 0xFFFFu) | (static_cast<uint32_t>(d1) << 16));
}

// Lists the pixel pairs of one row that hold a non-zero pixel: their index j (pixels 2j, 2j + 1)
// and packed deltas. Returns the count; *delta_sum gets the sum of all deltas.
int64_t list_pairs(const PixelRowsArgs& r, const uint8_t* px, int32_t* delta_sum) {
  const uint8_t* table = r.table;
  const int64_t K = r.K;
  int64_t count = 0;
  int32_t sum = 0;
  auto add_pair = [&](int64_t j) {
    const int64_t k = 2 * j;
    const int32_t p0 = px[k], p1 = k + 1 < K ? px[k + 1] : 0;
    int32_t d0, d1;
    if (r.one_channel) {
      d0 = table[p0] - table[0];
      d1 = table[p1] - table[0];
    } else {
      const uint8_t* t0 = table + (k / r.per_channel) * 256;
      d0 = t0[p0] - t0[0];
      d1 = 0;
      if (k + 1 < K) {
        const uint8_t* t1 = table + ((k + 1) / r.per_channel) * 256;
        d1 = t1[p1] - t1[0];
      }
    }
    r.pair_index[count] = static_cast<int32_t>(j);
    r.pair_delta[count] = pack_deltas(d0, d1);
    ++count;
    sum += d0 + d1;
  };
  // Adds the pairs marked in `pairs` (bit 2i: pixels k0 + 2i, k0 + 2i + 1, both inside the row).
  auto add_marked = [&](int64_t k0, uint64_t pairs) {
    if (!r.one_channel) {
      for (; pairs; pairs &= pairs - 1) add_pair((k0 + static_cast<int64_t>(_tzcnt_u64(pairs))) / 2);
      return;
    }
    // One channel: one 16-bit load and two delta-table reads a pair.
    const int16_t* delta = r.delta_table;
    for (; pairs; pairs &= pairs - 1) {
      const int64_t k = k0 + static_cast<int64_t>(_tzcnt_u64(pairs));
      uint16_t two;
      std::memcpy(&two, px + k, sizeof two);
      const int32_t d0 = delta[two & 0xFF], d1 = delta[two >> 8];
      r.pair_index[count] = static_cast<int32_t>(k / 2);
      r.pair_delta[count] = pack_deltas(d0, d1);
      ++count;
      sum += d0 + d1;
    }
  };
  // Bit i set when pixel k0 + i is not 0.
  auto nonzero32 = [px](int64_t k0) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(px + k0));
    return ~static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_setzero_si256())));
  };
  // 64 pixels a step: one loop exit (and its branch miss) per 32 pairs rather than per 16.
  int64_t k0 = 0;
  for (; k0 + 64 <= K; k0 += 64) {
    const uint64_t nonzero = nonzero32(k0) | (uint64_t{nonzero32(k0 + 32)} << 32);
    add_marked(k0, (nonzero | (nonzero >> 1)) & 0x5555555555555555u);
  }
  if (k0 + 32 <= K) {
    const uint64_t nonzero = nonzero32(k0);
    add_marked(k0, (nonzero | (nonzero >> 1)) & 0x55555555u);
    k0 += 32;
  }
  for (int64_t j = k0 / 2; j < r.pairs; ++j)
    if (px[2 * j] || (2 * j + 1 < K && px[2 * j + 1])) add_pair(j);
  *delta_sum = sum;
  return count;
}

// acc += vpmaddwd(d, w[0..15]) in place. As asm because GCC 12 otherwise computes all eight products
// into fresh registers first and, one register short, spills an accumulator to the stack.
inline void madd_accumulate(__m256i& acc, __m256i d, const int16_t* w) {
  __m256i product;
  __asm__("vpmaddwd %[w], %[d], %[p]\n\tvpaddd %[p], %[acc], %[acc]"
          : [acc] "+x"(acc), [p] "=&x"(product)
          : [d] "x"(d), [w] "m"(*reinterpret_cast<const __m256i*>(w)));
}

// acc[v] = dot(wc, bg) of features n0 + 8v .. n0 + 8v + 7: where every row's sum starts.
template <int V>
inline void start_at_background(const PixelRowsArgs& r, int64_t n0, __m256i (&acc)[V]) {
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v)
    acc[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.background_dot + n0 + 8 * v));
}

// The output stage for features [n0, n0 + 8V), 16 at a time.
template <int V>
inline void finish(const QLinearTile& t, int64_t n0, const __m256i (&acc)[V]) {
#pragma GCC unroll 4
  for (int g = 0; g < V / 2; ++g) {
    const __m256i pair_acc[1][2] = {{acc[2 * g], acc[2 * g + 1]}};
    output_stage<1>(t, n0 + g * kTileCols, pair_acc);
  }
}

// Features [n0, n0 + 8V) of one row: start at dot(wc, bg), add vpmaddwd(deltas, weights) for each
// listed pair, then the output stage, 16 features at a time.
template <int V>
void block(const PixelRowsArgs& r, const QLinearTile& t, int64_t n0, int64_t count) {
  constexpr int64_t width = 8 * V;
  const int16_t* w = r.w + n0 * r.pairs * 2;
  __m256i acc[V];
  start_at_background(r, n0, acc);
  for (int64_t i = 0; i < count; ++i) {
    const __m256i d = _mm256_set1_epi32(r.pair_delta[i]);
    const int16_t* pair = w + static_cast<int64_t>(r.pair_index[i]) * (2 * width);
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) madd_accumulate(acc[v], d, pair + 16 * v);
  }
  finish(t, n0, acc);
}

// sum16 += vpmaddubsw(d, w[0..31]) in place (d unsigned bytes, w signed), as madd_accumulate.
inline void maddubs_accumulate(__m256i& sum16, __m256i d, const int8_t* w) {
  __m256i product;
  __asm__("vpmaddubsw %[w], %[d], %[p]\n\tvpaddw %[p], %[sum], %[sum]"
          : [sum] "+x"(sum16), [p] "=&x"(product)
          : [d] "x"(d), [w] "m"(*reinterpret_cast<const __m256i*>(w)));
}

// As block(), for G groups of 16 features on int8 weights: vpmaddubsw with the pair's deltas as two
// bytes, summed in int16 over byte_chunk pairs, then sign-extended into the int32 accumulators.
template <int G>
void block_bytes(const PixelRowsArgs& r, const QLinearTile& t, int64_t n0, int64_t count) {
  constexpr int64_t width = 16 * G;
  const int8_t* w = r.w8 + n0 * r.pairs * 2;
  __m256i acc[2 * G];
  start_at_background(r, n0, acc);
  for (int64_t i0 = 0; i0 < count; i0 += r.byte_chunk) {
    const int64_t i_end = count - i0 < r.byte_chunk ? count : i0 + r.byte_chunk;
    __m256i sum16[G];
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) sum16[g] = _mm256_setzero_si256();
    for (int64_t i = i0; i < i_end; ++i) {
      const uint32_t words = static_cast<uint32_t>(r.pair_delta[i]);  // d0 | d1 << 16, both >= 0
      const __m256i d = _mm256_set1_epi16(static_cast<int16_t>((words & 0xFFu) | ((words >> 8) & 0xFF00u)));
      const int8_t* pair = w + static_cast<int64_t>(r.pair_index[i]) * (2 * width);
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) maddubs_accumulate(sum16[g], d, pair + 32 * g);
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      acc[2 * g] = _mm256_add_epi32(acc[2 * g], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(sum16[g])));
      acc[2 * g + 1] =
          _mm256_add_epi32(acc[2 * g + 1], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(sum16[g], 1)));
    }
  }
  finish(t, n0, acc);
}

}  // namespace

void pixel_linear_rows__avx2_sparse(const PixelRowsArgs& r) {
  QLinearTile t = r.tile;
  t.mr = 1;
  const int64_t np = (t.n + kTileCols - 1) / kTileCols * kTileCols;
  for (int64_t m = 0; m < r.rows; ++m) {
    int32_t delta_sum = 0;
    const int64_t count = list_pairs(r, r.pixels + m * r.pixel_stride, &delta_sum);
    const int32_t x_sum = static_cast<int32_t>(static_cast<uint32_t>(r.background_sum) + static_cast<uint32_t>(delta_sum));
    t.x_sum = &x_sum;
    t.y_u8 = r.tile.y_u8 ? r.tile.y_u8 + m * t.y_stride : nullptr;
    t.y_i32 = r.tile.y_i32 ? r.tile.y_i32 + m * t.y_stride : nullptr;
    for (int64_t n0 = 0; n0 < np; n0 += kBlock) {
      const int64_t groups = (np - n0 < kBlock ? np - n0 : kBlock) / kTileCols;  // of 16 features
      if (r.w8) {
        switch (groups) {
          case 1: block_bytes<1>(r, t, n0, count); break;
          case 2: block_bytes<2>(r, t, n0, count); break;
          case 3: block_bytes<3>(r, t, n0, count); break;
          default: block_bytes<4>(r, t, n0, count); break;
        }
        continue;
      }
      switch (groups) {
        case 1: block<2>(r, t, n0, count); break;
        case 2: block<4>(r, t, n0, count); break;
        case 3: block<6>(r, t, n0, count); break;
        default: block<8>(r, t, n0, count); break;
      }
    }
  }
}

int64_t pixel_pairs_active__avx2(const uint8_t* pixels, int64_t stride, int64_t rows, int64_t K) {
  int64_t active = 0;
  for (int64_t m = 0; m < rows; ++m) {
    const uint8_t* px = pixels + m * stride;
    int64_t k0 = 0;
    for (; k0 + 32 <= K; k0 += 32) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(px + k0));
      const uint32_t nonzero = ~static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_setzero_si256())));
      active += _mm_popcnt_u32((nonzero | (nonzero >> 1)) & 0x55555555u);
    }
    for (int64_t k = k0; k < K; k += 2) active += px[k] || (k + 1 < K && px[k + 1]);
  }
  return active;
}

}  // namespace lowbit::kernels
