// The sparse first layer on AVX2 (pixel_linear.h): lists the pixel pairs with ink, then vpmaddwd on
// their int16 code deltas and sign-extended int8 weights (vpmaddubsw on byte deltas where exact).
// Compiled with -mavx2 -mfma -mbmi2.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/qlinear.h"
#include "kernels/qlinear_simd256.h"
#include "kernels/qlinear_ukernel.h"

namespace lowbit::kernels {
namespace {

constexpr int64_t kBlock = 64;  // output features per weight block: 8 ymm accumulators

// Two int16 deltas d = code - background code in one int32, low half first.
inline int32_t pack_deltas(int32_t d0, int32_t d1) {
  return static_cast<int32_t>((static_cast<uint32_t>(d0) & 0xFFFFu) | (static_cast<uint32_t>(d1) << 16));
}

// kLeftPack[m] lists the set bits of the 8-bit mask m, lowest first, as vpermd lane numbers (the
// rest 0): permuting 8 lanes by it moves the lanes m selects to the front, in order.
struct LeftPackTable {
  alignas(64) uint8_t lanes[256][8] = {};
  constexpr LeftPackTable() {
    for (int m = 0; m < 256; ++m)
      for (int lane = 0, out = 0; lane < 8; ++lane)
        if (m >> lane & 1) lanes[m][out++] = static_cast<uint8_t>(lane);
  }
};
constexpr LeftPackTable kLeftPack;

// Sum of the 8 int32 lanes of v.
inline int32_t sum_lanes(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// Calls step(pixels k0 .. k0 + 15) for k0 = 0, 16, ... < K; the last step gets zeros (background)
// after pixel K - 1.
template <typename Step>
inline void for_each_16_pixels(const uint8_t* px, int64_t K, const Step& step) {
  int64_t k0 = 0;
  for (; k0 + 16 <= K; k0 += 16) step(_mm_loadu_si128(reinterpret_cast<const __m128i*>(px + k0)));
  if (k0 < K) {
    alignas(16) uint8_t tail[16] = {};
    std::memcpy(tail, px + k0, static_cast<size_t>(K - k0));
    step(_mm_load_si128(reinterpret_cast<const __m128i*>(tail)));
  }
}

// The pairs among 8 int32 lanes that are not 0, as a mask, and the vpermd order that moves them to
// the front.
inline uint32_t ink_mask(__m256i lanes) {
  const __m256i zero = _mm256_cmpeq_epi32(lanes, _mm256_setzero_si256());
  return ~static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(zero))) & 0xFFu;
}
inline __m256i left_pack_order(uint32_t mask) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(kLeftPack.lanes[mask])));
}

// How list_pairs finds a pixel's delta d = code - background code.
enum class Deltas {
  kIdentity,    // d = p: 8-bit codes of 8-bit pixels over their full range
  kOneTable,    // one channel: pair_delta_low / pair_delta_high
  kPerChannel,  // delta_table[channel of the pixel][p]
};

// Lists the pixel pairs of one row with ink (a pixel at least ink_from, whose code may differ from the
// background's): their index j (pixels 2j, 2j + 1) in pair_index and packed deltas in pair_delta
// (as bytes when `bytes`: PixelRowsArgs). Returns the count; *delta_sum gets the sum of all deltas.
// Needs 8 spare entries after pair_index[pairs] and pair_delta[pairs].
//
// No data-dependent branch: 8 pairs a step, a compare against 0 gives the mask of pairs with ink,
// and vpermd by kLeftPack[mask] stores their lanes contiguously. The loop over set bits this
// replaced cost about 10 cycles a pair, most of them mispredicted loop exits (docs/performance.md).
// kIdentity: zero-extending 16 pixels to int16 (to int32 per pair for bytes) gives 8 packed delta
// pairs directly, and the sum of deltas is the sum of pixels. Otherwise pass 1
// lists each pair's shifted pixels q0 | q1 << 8 (PixelRowsArgs::ink_from) with its index j << 16, and
// pass 2 looks up the deltas of the listed pairs (independent iterations).
template <Deltas kind, bool bytes>
int64_t list_pairs(const PixelRowsArgs& r, const uint8_t* px, int32_t* delta_sum) {
  static_assert(kMaxInFeatures / 2 < 65536, "pass 1 holds pair indices in 16 bits");
  int64_t count = 0;
  int32_t* const delta_list = r.pair_delta;  // locals: stores through r's pointers would reload them
  int32_t* const list = r.pair_index;
  if constexpr (kind == Deltas::kIdentity) {
    __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m128i pixel_sum = _mm_setzero_si128();
    for_each_16_pixels(px, r.K, [&](__m128i pixels) {
      // d0 | d1 << 16 a pair, or d0 | d1 << 8 for bytes.
      const __m256i deltas = bytes ? _mm256_cvtepu16_epi32(pixels) : _mm256_cvtepu8_epi16(pixels);
      const uint32_t ink = ink_mask(deltas);
      const __m256i order = left_pack_order(ink);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(delta_list + count), _mm256_permutevar8x32_epi32(deltas, order));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(list + count), _mm256_permutevar8x32_epi32(index, order));
      count += _mm_popcnt_u32(ink);
      index = _mm256_add_epi32(index, _mm256_set1_epi32(8));
      pixel_sum = _mm_add_epi64(pixel_sum, _mm_sad_epu8(pixels, _mm_setzero_si128()));
    });
    *delta_sum = static_cast<int32_t>(_mm_cvtsi128_si64(pixel_sum) + _mm_extract_epi64(pixel_sum, 1));
    return count;
  }
  __m256i index = _mm256_setr_epi32(0 << 16, 1 << 16, 2 << 16, 3 << 16, 4 << 16, 5 << 16, 6 << 16, 7 << 16);
  const __m128i below_ink = _mm_set1_epi8(static_cast<char>(r.ink_from - 1));
  for_each_16_pixels(px, r.K, [&](__m128i pixels) {
    // q0 | q1 << 8 a pair, q = p - (ink_from - 1) saturated at 0: faint pixels at low widths become 0.
    const __m256i lanes = _mm256_cvtepu16_epi32(_mm_subs_epu8(pixels, below_ink));
    const uint32_t ink = ink_mask(lanes);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(list + count),
                        _mm256_permutevar8x32_epi32(_mm256_or_si256(lanes, index), left_pack_order(ink)));
    count += _mm_popcnt_u32(ink);
    index = _mm256_add_epi32(index, _mm256_set1_epi32(8 << 16));
  });
  // Pass 2: the deltas, and the index in place of the listed lane.
  const int32_t* const low = r.pair_delta_low;
  const int32_t* const high = r.pair_delta_high;
  uint32_t byte_sum = 0;
  for (int64_t i = 0; i < count; ++i) {
    const uint32_t e = static_cast<uint32_t>(list[i]);
    const uint32_t q0 = e & 0xFF, q1 = (e >> 8) & 0xFF, j = e >> 16;
    uint32_t packed;
    if constexpr (kind == Deltas::kOneTable) {
      packed = static_cast<uint32_t>(low[q0]) + static_cast<uint32_t>(high[q1]);
    } else {
      // Pixel 2j + 1 past the row's end is background (q1 = 0, delta 0) in the last channel.
      const int64_t k = 2 * int64_t{j}, last = r.channels - 1;
      const int64_t c0 = k / r.per_channel, c1 = std::min((k + 1) / r.per_channel, last);
      const int32_t d0 = r.delta_table[c0 * 256 + q0], d1 = r.delta_table[c1 * 256 + q1];
      packed = bytes ? static_cast<uint32_t>(d0 | d1 << 8 | (d0 + d1) << 16) : static_cast<uint32_t>(pack_deltas(d0, d1));
    }
    if constexpr (bytes) byte_sum += packed >> 16;
    delta_list[i] = static_cast<int32_t>(packed);
    list[i] = static_cast<int32_t>(j);
  }
  if constexpr (bytes) {
    *delta_sum = static_cast<int32_t>(byte_sum);
    return count;
  }
  // Sum of all deltas: vpmaddwd by ones adds each pair's two int16 deltas; zeros pad the last step.
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i sum = _mm256_setzero_si256();
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(delta_list + count), _mm256_setzero_si256());
  for (int64_t i = 0; i < count; i += 8)
    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(delta_list + i)), ones));
  *delta_sum = sum_lanes(sum);
  return count;
}

// acc += vpmaddwd(d, int16(w[0..15])) in place: the weights are read as int8 and sign-extended, so the
// weights of MNIST's ink fit L1 (int16 weights measured 9-18 % slower). As asm because GCC 12 otherwise
// computes all eight products into fresh registers first and, one register short, spills an
// accumulator to the stack.
inline void madd_accumulate(__m256i& acc, __m256i d, const int8_t* w) {
  __m256i product;
  __asm__("vpmovsxbw %[w], %[p]\n\tvpmaddwd %[p], %[d], %[p]\n\tvpaddd %[p], %[acc], %[acc]"
          : [acc] "+x"(acc), [p] "=&x"(product)
          : [d] "x"(d), [w] "m"(*reinterpret_cast<const __m128i*>(w)));
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
// Not inlined, so the eight accumulators keep their registers whatever the row loop around it
// holds: a larger listing inlined next to it made GCC 12 spill them to the stack on every pair
// (+1,200 instructions an image, seen with callgrind while trying 32-pixel listing steps).
template <int V>
[[gnu::noinline]] void block(const PixelRowsArgs& r, const QLinearTile& t, int64_t n0, int64_t count) {
  constexpr int64_t width = 8 * V;
  const int8_t* w = r.w + n0 * r.pairs * 2;
  __m256i acc[V];
  start_at_background(r, n0, acc);
  for (int64_t i = 0; i < count; ++i) {
    const __m256i d = _mm256_set1_epi32(r.pair_delta[i]);
    const int8_t* pair = w + static_cast<int64_t>(r.pair_index[i]) * (2 * width);
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
[[gnu::noinline]] void block_bytes(const PixelRowsArgs& r, const QLinearTile& t, int64_t n0, int64_t count) {
  constexpr int64_t width = 16 * G;
  const int8_t* w = r.w + n0 * r.pairs * 2;
  __m256i acc[2 * G];
  start_at_background(r, n0, acc);
  for (int64_t i0 = 0; i0 < count; i0 += r.byte_chunk) {
    const int64_t i_end = count - i0 < r.byte_chunk ? count : i0 + r.byte_chunk;
    __m256i sum16[G];
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) sum16[g] = _mm256_setzero_si256();
    for (int64_t i = i0; i < i_end; ++i) {
      const __m256i d = _mm256_set1_epi16(static_cast<int16_t>(r.pair_delta[i]));  // d0 | d1 << 8
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

// The list_pairs variant for these tables and this multiply path.
using ListPairs = int64_t (*)(const PixelRowsArgs&, const uint8_t*, int32_t*);
ListPairs choose_list_pairs(const PixelRowsArgs& r) {
  const bool bytes = r.byte_chunk > 0;
  if (r.identity_deltas) return bytes ? list_pairs<Deltas::kIdentity, true> : list_pairs<Deltas::kIdentity, false>;
  if (r.channels == 1) return bytes ? list_pairs<Deltas::kOneTable, true> : list_pairs<Deltas::kOneTable, false>;
  return bytes ? list_pairs<Deltas::kPerChannel, true> : list_pairs<Deltas::kPerChannel, false>;
}

}  // namespace

void pixel_linear_rows__avx2_sparse(const PixelRowsArgs& r) {
  const ListPairs list = choose_list_pairs(r);
  QLinearTile t = r.tile;
  t.mr = 1;
  const int64_t np = (t.n + kTileCols - 1) / kTileCols * kTileCols;
  for (int64_t m = 0; m < r.rows; ++m) {
    int32_t delta_sum = 0;
    const uint8_t* px = r.pixels + m * r.pixel_stride;
    const int64_t count = list(r, px, &delta_sum);
    const int32_t x_sum = static_cast<int32_t>(static_cast<uint32_t>(r.background_sum) + static_cast<uint32_t>(delta_sum));
    t.x_sum = &x_sum;
    t.y_u8 = r.tile.y_u8 ? r.tile.y_u8 + m * t.y_stride : nullptr;
    t.y_i32 = r.tile.y_i32 ? r.tile.y_i32 + m * t.y_stride : nullptr;
    for (int64_t n0 = 0; n0 < np; n0 += kBlock) {
      const int64_t groups = (np - n0 < kBlock ? np - n0 : kBlock) / kTileCols;  // of 16 features
      if (r.byte_chunk > 0) {
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
