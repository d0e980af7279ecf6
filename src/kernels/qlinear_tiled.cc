// qlinear_u8_avx2, qlinear_u8_avx512vnni and qlinear_u8_amx: blocked weight preparation and the loops
// that drive their micro-kernels (qlinear_avx2.cc, qlinear_avx512vnni.cc, qlinear_amx.cc). No ISA
// flags here.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/call_constants.h"
#include "kernels/qlinear_impl.h"
#include "kernels/qlinear_ukernel.h"
#include "lowbit/error.h"

namespace lowbit::kernels {
namespace {

// Batches smaller than this run on the calling thread with no OpenMP region at all.
constexpr int64_t kMinParallelBatch = 64;
// Per-core L2 of the machines we tune for (Zen 3: 512 KiB).
constexpr int64_t kL2Bytes = 512 * 1024;

struct TiledWeights final : PreparedWeights {
  WeightLayout layout = WeightLayout::kS8x4;
  QLinearUkernel ukernel = nullptr;
  int64_t k_chunk = 0;             // see QLinearTile
  int64_t kp = 0;                  // K rounded up to kKAlign
  int64_t np = 0;                  // N rounded up to kTileCols
  int32_t centre = 0;              // c: the layout holds wc = w - c
  std::vector<int8_t> w8;          // blocked, as the layout says
  std::vector<int32_t> wc_sum;     // [N], sum_k wc
};

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Codes wc = w - centre: [N, K] -> the blocked layout (qlinear_ukernel.h).
void block_weights(const PackedWeights& packed, TiledWeights& t) {
  const int64_t N = packed.rows, K = packed.cols;
  std::vector<uint8_t> codes(static_cast<size_t>(N * K));
  unpack_weights(packed, codes.data());
  const int centre = t.centre;
  const int group = t.layout == WeightLayout::kS8x2 ? 2 : 4;
  std::vector<int8_t>& blocked = t.w8;
  blocked.assign(static_cast<size_t>(t.np * t.kp), 0);
  t.wc_sum.assign(static_cast<size_t>(N), 0);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t block = n / kTileCols, lane = n % kTileCols;
    for (int64_t k = 0; k < K; ++k) {
      const int wc = codes[n * K + k] - centre;
      t.wc_sum[n] += wc;
      // [block][k / group][lane][k % group]
      blocked[((block * t.kp + k - k % group) * kTileCols) + lane * group + k % group] =
          static_cast<int8_t>(wc);
    }
  }
  if (t.layout == WeightLayout::kU4x8) {
    // Two consecutive 64-byte k-quad blocks share one: the first in the low nibbles.
    std::vector<int8_t> nibbles(blocked.size() / 2);
    for (size_t pair = 0; pair < nibbles.size() / 64; ++pair)
      for (size_t i = 0; i < 64; ++i)
        nibbles[pair * 64 + i] = static_cast<int8_t>(blocked[pair * 128 + i] | (blocked[pair * 128 + 64 + i] << 4));
    blocked = std::move(nibbles);
  }
}

// max_levels: the threshold output stage's limit (call_constants.h), -1 for kernels without it.
void fill_constants(const TiledWeights& w, const QLinearArgs& a, int32_t max_levels, CallConstants& c) {
  fill_call_constants(a, w.rows, w.np, w.cols, w.centre, w.wc_sum.data(), c);
  fill_thresholds(a, w.rows, w.np, max_levels, c);
}

// Rows [m0, m0 + mr) of x into the zero-padded tile buffer, with their sums.
void pack_rows(const QLinearArgs& a, int64_t m0, int64_t mr, int64_t K, int64_t kp, uint8_t* buffer,
               int32_t* x_sum) {
  qlinear_pack_x_u8__avx2(a.x + m0 * a.x_stride, a.x_stride, mr, K, kp, buffer, x_sum);
}

void pack_rows(const QLinearArgs& a, int64_t m0, int64_t mr, int64_t K, int64_t kp, int16_t* buffer,
               int32_t* x_sum) {
  qlinear_pack_x_s16__avx2(a.x + m0 * a.x_stride, a.x_stride, mr, K, kp, buffer, x_sum);
}

template <typename T>
void run_tiles(const TiledWeights& w, const QLinearArgs& a, const CallConstants& c, int64_t first_tile,
               int64_t end_tile) {
  thread_local std::vector<T> buffer;
  // Grow only: shrinking and regrowing between layers would value-initialize the buffer each call.
  if (buffer.size() < static_cast<size_t>(kTileRows * w.kp)) buffer.resize(static_cast<size_t>(kTileRows * w.kp));
  int32_t x_sum[kTileRows];
  QLinearTile tile;
  tile.kp = w.kp;
  tile.k_chunk = w.k_chunk;
  tile.x = buffer.data();
  tile.x_sum = x_sum;
  tile.w = w.w8.data();
  for (int64_t i = first_tile; i < end_tile; ++i) {
    const int64_t m0 = i * kTileRows;
    tile.mr = std::min<int64_t>(kTileRows, a.batch - m0);
    pack_rows(a, m0, tile.mr, w.cols, w.kp, buffer.data(), x_sum);
    // Large batches stream x from memory: fetch the next tile's rows while this one computes.
    if (i + 1 < end_tile)
      for (int64_t m = m0 + kTileRows; m < std::min(a.batch, m0 + 2 * kTileRows); ++m)
        for (int64_t k = 0; k < w.cols; k += 64) __builtin_prefetch(a.x + m * a.x_stride + k);
    set_output_stage(a, w.rows, c, m0, tile);
    w.ukernel(tile);
  }
}

template <typename T>
void run_all(const TiledWeights& w, const QLinearArgs& a, const CallConstants& c) {
  const int64_t tiles = (a.batch + kTileRows - 1) / kTileRows;
  // Chunks of 16 tiles (64 rows) handed out dynamically, so a thread that gets descheduled on a
  // shared machine leaves its remaining work to the others. Integer results do not depend on the
  // partition. One chunk of work gains nothing from a team, so it runs on the calling thread.
  constexpr int64_t kChunkTiles = 16;
  const int64_t chunks = (tiles + kChunkTiles - 1) / kChunkTiles;
  if (a.batch < kMinParallelBatch || chunks < 2) {
    run_tiles<T>(w, a, c, 0, tiles);
    return;
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    run_tiles<T>(w, a, c, chunk * kChunkTiles, std::min(tiles, (chunk + 1) * kChunkTiles));
}

class TiledKernel : public QLinearKernel {
 public:
  void run(const PreparedWeights& prepared, const QLinearArgs& a) const override {
    check_qlinear_args(prepared, a);
    if (a.batch == 0 || prepared.rows == 0) return;
    const auto* tiled = dynamic_cast<const TiledWeights*>(&prepared);
    if (!tiled) throw Error(std::string(name()) + ": weights were prepared by another kernel");
    const TiledWeights& w = *tiled;
    thread_local CallConstants constants;
    // Only the 512-bit output stage (qlinear_simd512.h) has the threshold form.
    const bool avx512 = w.ukernel == qlinear_ukernel_4x16c4__avx512vnni;
    fill_constants(w, a, avx512 ? kMaxThresholdLevels : -1, constants);
    if (w.layout == WeightLayout::kS8x2)
      run_all<int16_t>(w, a, constants);
    else
      run_all<uint8_t>(w, a, constants);
  }

 protected:
  std::unique_ptr<TiledWeights> blocked(const PackedWeights& packed, WeightLayout layout,
                                        QLinearUkernel ukernel, int64_t k_chunk) const {
    auto w = std::make_unique<TiledWeights>();
    w->rows = packed.rows;
    w->cols = packed.cols;
    w->bits = packed.bits;
    w->layout = layout;
    w->ukernel = ukernel;
    w->k_chunk = k_chunk;
    w->centre = layout == WeightLayout::kU4x8 ? 0 : 1 << (packed.bits - 1);
    w->kp = round_up(packed.cols, kKAlign);
    w->np = round_up(packed.rows, kTileCols);
    block_weights(packed, *w);
    return w;
  }
};

class Avx2Kernel final : public TiledKernel {
 public:
  const char* name() const override { return "qlinear_u8_avx2"; }
  bool available() const override { return cpu_has_avx2(); }
  std::unique_ptr<PreparedWeights> prepare(const PackedWeights& packed, int act_bits) const override {
    check_prepare(packed, act_bits);
    // vpmaddubsw pairs: |x0*wc0 + x1*wc1| <= 2 * (2^a - 1) * 2^(b-1) = (2^a - 1) * 2^b. Summing
    // `pairs` of them in int16 is exact while pairs * (2^a - 1) * 2^b <= 32767 (docs/kernels.md).
    const int64_t pair_bound = ((int64_t{1} << act_bits) - 1) << packed.bits;
    if (pair_bound > 32767)  // 8x8 bits: even one vpmaddubsw pair can saturate
      return blocked(packed, WeightLayout::kS8x2, qlinear_ukernel_4x16c2__avx2_s16, 0);
    if (2 * pair_bound > 32767)  // 8x7, 7x8: one pair per int16 lane, widen at once
      return blocked(packed, WeightLayout::kS8x4, qlinear_ukernel_4x16c4__avx2_widen, 4);
    // Sub-byte weights whose int8 copy would outgrow L2 stay 4-bit and are unpacked in registers:
    // that halves the bytes streamed, which is what bounds such layers. Smaller layers run from
    // cache either way, and there the pre-unpacked int8 copy measured as fast or faster
    // (docs/kernels.md has the figures).
    if (packed.bits <= 4 && round_up(packed.rows, kTileCols) * round_up(packed.cols, kKAlign) > kL2Bytes / 2) {
      // Raw codes up to 2^b - 1 instead of centred ones up to 2^(b-1): the pair bound doubles.
      const int64_t raw_pair_bound = 2 * ((int64_t{1} << act_bits) - 1) * ((int64_t{1} << packed.bits) - 1);
      const int64_t k_chunk = 8 * std::max<int64_t>(1, 32767 / raw_pair_bound / 2);
      return blocked(packed, WeightLayout::kU4x8, qlinear_ukernel_4x16c8__avx2_u4, k_chunk);
    }
    // Each int16 lane takes one pair per 4 k.
    const int64_t k_chunk = 4 * (32767 / pair_bound);
    return blocked(packed, WeightLayout::kS8x4, qlinear_ukernel_4x16c4__avx2, k_chunk);
  }
};

class Avx512VnniKernel final : public TiledKernel {
 public:
  const char* name() const override { return "qlinear_u8_avx512vnni"; }
  bool available() const override { return cpu_has_avx512vnni(); }
  std::unique_ptr<PreparedWeights> prepare(const PackedWeights& packed, int act_bits) const override {
    check_prepare(packed, act_bits);
    // vpdpbusd adds 4 products of at most 255 * 128 straight into int32: exact for every width.
    return blocked(packed, WeightLayout::kS8x4, qlinear_ukernel_4x16c4__avx512vnni, 0);
  }
};

// qlinear_u8_amx: kS8x4 weights with K padded to 64 (the B-tile layout), rows in blocks of 32, and
// the VNNI kernel's own copy for the calls where it measured faster (docs/kernels.md, "AMX-INT8"):
// fewer rows than one block (FC_NN's layers at batch 1: 2.5-10x faster on VNNI), and K = 16 or 32,
// where padding K to 64 doubles or quadruples the tile work while VNNI packs rows with whole vectors
// (32x10 and the 256x32x64 shortcut: 12-16 % faster on VNNI).
struct AmxWeights final : PreparedWeights {
  TiledWeights blocked;                  // kp a multiple of kAmxKBlock
  std::unique_ptr<PreparedWeights> vnni; // qlinear_u8_avx512vnni's layout of the same weights
  bool vnni_always = false;              // K is 16 or 32
};

class AmxKernel final : public QLinearKernel {
 public:
  const char* name() const override { return "qlinear_u8_amx"; }
  bool available() const override { return cpu_has_amx(); }
  std::unique_ptr<PreparedWeights> prepare(const PackedWeights& packed, int act_bits) const override {
    check_prepare(packed, act_bits);
    auto w = std::make_unique<AmxWeights>();
    w->rows = packed.rows, w->cols = packed.cols, w->bits = packed.bits;
    TiledWeights& t = w->blocked;
    t.rows = packed.rows, t.cols = packed.cols, t.bits = packed.bits;
    t.layout = WeightLayout::kS8x4;
    // tdpbusd adds 4 products u8 x * s8 wc straight into int32 (modulo 2^32): exact for every width.
    t.centre = 1 << (packed.bits - 1);
    t.kp = round_up(std::max<int64_t>(packed.cols, 1), kAmxKBlock);
    t.np = round_up(packed.rows, kTileCols);
    block_weights(packed, t);
    w->vnni = qlinear_u8_avx512vnni().prepare(packed, act_bits);
    w->vnni_always = packed.cols == 16 || packed.cols == 32;
    return w;
  }

  // x: [batch, x_stride], y: [batch, y_stride].
  void run(const PreparedWeights& prepared, const QLinearArgs& a) const override {
    check_qlinear_args(prepared, a);
    if (a.batch == 0 || prepared.rows == 0) return;
    const auto* amx = dynamic_cast<const AmxWeights*>(&prepared);
    if (!amx) throw Error(std::string(name()) + ": weights were prepared by another kernel");
    // Never an AMX instruction without the kernel's permission: it would kill the process (SIGILL).
    if (!cpu_has_amx()) throw Error(std::string(name()) + ": this CPU or OS does not allow AMX");
    if (a.batch < kAmxBlockRows || amx->vnni_always) return qlinear_u8_avx512vnni().run(*amx->vnni, a);
    const TiledWeights& w = amx->blocked;
    thread_local CallConstants call_constants;
    fill_constants(w, a, kMaxThresholdLevels, call_constants);
    // The calling thread's constants: inside the region `call_constants` would name each thread's own.
    const CallConstants& constants = call_constants;
    // As run_all: chunks of 64 rows handed out dynamically, none of it threaded below 64 rows.
    constexpr int64_t kChunkRows = 2 * kAmxBlockRows;
    const int64_t chunks = (a.batch + kChunkRows - 1) / kChunkRows;
    if (a.batch < kMinParallelBatch || chunks < 2) {
      run_rows(w, a, constants, 0, a.batch);
      return;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t chunk = 0; chunk < chunks; ++chunk)
      run_rows(w, a, constants, chunk * kChunkRows, std::min(a.batch, (chunk + 1) * kChunkRows));
  }

 private:
  static void run_rows(const TiledWeights& w, const QLinearArgs& a, const CallConstants& c, int64_t begin,
                       int64_t end) {
    thread_local std::vector<uint8_t> pack;
    alignas(64) thread_local int32_t dots[kAmxBlockRows * 2 * kTileCols];
    const size_t pack_bytes = static_cast<size_t>(kAmxBlockRows * w.kp);
    if (pack.size() < pack_bytes) pack.resize(pack_bytes);  // grow only, as run_tiles
    QLinearAmxRows r;
    r.rows = end - begin;
    r.x = a.x + begin * a.x_stride;
    r.x_stride = a.x_stride;
    r.k = w.cols;
    r.x_readable = (a.batch - 1 - begin) * a.x_stride + w.cols;
    r.pack = pack.data();
    r.c = dots;
    r.tile.kp = w.kp;
    r.tile.w = w.w8.data();
    set_output_stage(a, w.rows, c, begin, r.tile);
    qlinear_rows_32x32c64__amx(r);
  }
};

}  // namespace

const QLinearKernel& qlinear_u8_avx2() {
  static const Avx2Kernel kernel;
  return kernel;
}

const QLinearKernel& qlinear_u8_avx512vnni() {
  static const Avx512VnniKernel kernel;
  return kernel;
}

const QLinearKernel& qlinear_u8_amx() {
  static const AmxKernel kernel;
  return kernel;
}

}  // namespace lowbit::kernels
