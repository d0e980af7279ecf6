// Pixel kernels (pixel_linear.h): map-then-qlinear over any qlinear kernel, the sparse AVX2 kernel's
// weight layout and row loop (dispatch.cc chooses among them). No ISA flags here.
#include "kernels/pixel_linear.h"

#include <algorithm>
#include <string>

#include "kernels/call_constants.h"
#include "kernels/qlinear_impl.h"
#include "kernels/qlinear_ukernel.h"
#include "lowbit/error.h"

namespace lowbit::kernels {
namespace {

// Rows per OpenMP work item; smaller batches run on the calling thread with no parallel region.
constexpr int64_t kChunkRows = 64;
// Output features per block of the sparse layout: 8 ymm accumulators.
constexpr int64_t kSparseBlock = 64;

void check_table(const PackedWeights& w, int act_bits, const PixelTable& table) {
  if (table.codes.empty() || table.codes.size() % 256 != 0 || table.per_channel <= 0 ||
      table.channels() * table.per_channel != w.cols)
    throw Error("pixel_linear: the pixel table needs 256 codes per channel and channels * per_channel = K (" +
                std::to_string(w.cols) + ")");
  const int max_code = (1 << act_bits) - 1;
  for (uint8_t code : table.codes)
    if (code > max_code)
      throw Error("pixel_linear: pixel table code " + std::to_string(code) + " exceeds " +
                  std::to_string(act_bits) + " bits");
}

// Runs body(begin, rows) over chunks of kChunkRows, on OpenMP threads when there are several.
template <typename Body>
void for_each_chunk(int64_t batch, const Body& body) {
  const int64_t chunks = (batch + kChunkRows - 1) / kChunkRows;
  if (chunks < 2) {
    body(0, batch);
    return;
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) body(c * kChunkRows, std::min(kChunkRows, batch - c * kChunkRows));
}

// ---------------------------------------------------------------------------------------------
// Map every pixel, then run a qlinear kernel.

struct MappedWeights final : PreparedWeights {
  PixelTable table;
  std::unique_ptr<PreparedWeights> inner;
};

// dst[j] = table[src[j]]. Byte stores may alias anything, so without restrict the compiler
// reloads every pointer after each store (it cost 45 % of FC_NN inference time). GCC's
// vectorized byte gather is slower than plain loads here, hence no-tree-vectorize.
__attribute__((optimize("no-tree-vectorize"))) void map_pixels(const uint8_t* __restrict src,
                                                               uint8_t* __restrict dst,
                                                               const uint8_t* __restrict table,
                                                               int64_t count) {
  for (int64_t j = 0; j < count; ++j) dst[j] = table[src[j]];
}

// Rows [begin, begin + rows) of a.x mapped through the table, then run by a dense qlinear kernel.
void run_mapped_rows(const PixelTable& table, const QLinearKernel& kernel, const PreparedWeights& prepared,
                     const QLinearArgs& a, int64_t begin, int64_t rows) {
  const int64_t K = prepared.cols;
  thread_local std::vector<uint8_t> codes;
  if (codes.size() < static_cast<size_t>(rows * K)) codes.resize(static_cast<size_t>(rows * K));
  for (int64_t m = 0; m < rows; ++m)
    for (int64_t c = 0; c < table.channels(); ++c)
      map_pixels(a.x + (begin + m) * a.x_stride + c * table.per_channel, codes.data() + m * K + c * table.per_channel,
                 table.codes.data() + c * 256, table.per_channel);
  QLinearArgs chunk = a;
  chunk.batch = rows;
  chunk.x = codes.data();
  chunk.x_stride = K;
  if (a.y_u8) chunk.y_u8 = a.y_u8 + begin * a.y_stride;
  if (a.y_i32) chunk.y_i32 = a.y_i32 + begin * a.y_stride;
  kernel.run(prepared, chunk);  // at most kChunkRows rows: runs on this thread
}

class MappedKernel final : public PixelLinearKernel {
 public:
  MappedKernel(const QLinearKernel& inner, const char* name) : inner_(inner), name_(name) {}
  const char* name() const override { return name_; }
  bool available() const override { return inner_.available(); }

  std::unique_ptr<PreparedWeights> prepare(const PackedWeights& packed, int act_bits,
                                           const PixelTable& table) const override {
    check_prepare(packed, act_bits);
    check_table(packed, act_bits, table);
    auto w = std::make_unique<MappedWeights>();
    w->rows = packed.rows;
    w->cols = packed.cols;
    w->bits = packed.bits;
    w->table = table;
    w->inner = inner_.prepare(packed, act_bits);
    return w;
  }

  void run(const PreparedWeights& prepared, const QLinearArgs& a) const override {
    check_qlinear_args(prepared, a);
    if (a.batch == 0) return;
    const auto* mapped = dynamic_cast<const MappedWeights*>(&prepared);
    if (!mapped) throw Error(std::string(name()) + ": weights were prepared by another kernel");
    for_each_chunk(a.batch, [&](int64_t begin, int64_t rows) {
      run_mapped_rows(mapped->table, inner_, *mapped->inner, a, begin, rows);
    });
  }

 private:
  const QLinearKernel& inner_;
  const char* name_;
};

// ---------------------------------------------------------------------------------------------
// Sparse: skip pixels of value 0.

struct SparseWeights final : PreparedWeights {
  PixelTable table;
  int64_t np = 0;       // N rounded up to kTileCols
  int64_t pairs = 0;    // ceil(K / 2)
  int32_t centre = 0;   // wc = w - centre
  std::vector<int8_t> w;                // qlinear_ukernel.h, PixelRowsArgs
  int64_t byte_chunk = 0;               // pairs summed in int16 on the vpmaddubsw path, or 0
  std::vector<int16_t> delta_table;     // [channels][256]: qlinear_ukernel.h, PixelRowsArgs
  std::vector<int32_t> pair_delta_low;  // [256], one channel (qlinear_ukernel.h)
  std::vector<int32_t> pair_delta_high; // [256], one channel
  bool identity_deltas = false;         // one channel, delta_table[p] = p
  int ink_from = 1;                     // codes of pixels below it are background codes
  std::vector<int32_t> wc_sum;          // [N]
  std::vector<int32_t> background_dot;  // [np], dot(wc[n], bg) mod 2^32
  int32_t background_sum = 0;           // sum_k bg[k]
  std::unique_ptr<PreparedWeights> dense;  // best_qlinear_kernel()'s layout, for dense chunks
};

// With several channels (pass 2 of the listing finds each pixel's channel), a chunk of rows whose
// pixel pairs are more than this share non-zero runs through the dense kernel instead (adaptive
// kernel only); measured on FC_NN's first layer before the listing lost its branches, sparse rows
// cost about 0.3 us + 6 ns per active pair at 8 bits, map-then-dense about 1.8 us. With one channel
// the sparse kernel now matches or beats map-then-dense even on random pixels (bench_pixel_linear,
// 2026-11-28 02:40 UTC: 8 bits 1.40-1.89M images/s against 0.97-1.39M at batch 10,000, 1.2-1.5 us
// against 1.7-1.8 us at batch 1; 4 bits level), so one channel always runs sparse.
constexpr int64_t kDenseAbovePercent = 60;
constexpr int64_t kDensitySample = 32;  // rows of a chunk that decide: 0 and 32

class SparseKernel final : public PixelLinearKernel {
 public:
  // adaptive: with several channels, chunks with more than kDenseAbovePercent active pixel pairs go
  // to the dense kernel.
  SparseKernel(bool adaptive, const char* name) : adaptive_(adaptive), name_(name) {}
  const char* name() const override { return name_; }
  bool available() const override { return cpu_has_avx2(); }

  std::unique_ptr<PreparedWeights> prepare(const PackedWeights& packed, int act_bits,
                                           const PixelTable& table) const override {
    check_prepare(packed, act_bits);
    check_table(packed, act_bits, table);
    auto w = std::make_unique<SparseWeights>();
    const int64_t N = packed.rows, K = packed.cols;
    w->rows = N;
    w->cols = K;
    w->bits = packed.bits;
    w->table = table;
    w->np = (N + kTileCols - 1) / kTileCols * kTileCols;
    w->pairs = (K + 1) / 2;
    w->centre = 1 << (packed.bits - 1);
    std::vector<uint8_t> codes(static_cast<size_t>(N * K));
    unpack_weights(packed, codes.data());
    std::vector<int32_t> background(static_cast<size_t>(K));
    w->background_sum = 0;
    for (int64_t k = 0; k < K; ++k) {
      background[k] = table.codes[(k / table.per_channel) * 256];
      w->background_sum += background[k];
    }
    std::vector<int16_t> delta;  // [channels][256]: code - background code
    for (int64_t c = 0; c < table.channels(); ++c)
      for (int p = 0; p < 256; ++p) delta.push_back(static_cast<int16_t>(table.codes[c * 256 + p] - table.codes[c * 256]));
    w->identity_deltas = table.channels() == 1;
    for (int p = 0; p < 256 && w->identity_deltas; ++p) w->identity_deltas = delta[p] == p;
    // Pixels below ink_from have the background code in every channel (at 2-bit activations min/max
    // quantization maps MNIST's pixels 0..75 there), so the listing subtracts ink_from - 1 with
    // saturation and skips what becomes 0: delta_table is indexed by that shifted pixel.
    while (w->ink_from < 255) {
      bool background = true;
      for (int64_t c = 0; c < table.channels(); ++c) background = background && delta[c * 256 + w->ink_from] == 0;
      if (!background) break;
      ++w->ink_from;
    }
    for (int64_t c = 0; c < table.channels(); ++c)
      for (int q = 0; q < 256; ++q) {
        const int p = q + w->ink_from - 1;
        w->delta_table.push_back(q > 0 && p < 256 ? delta[c * 256 + p] : 0);
      }
    // vpmaddubsw takes unsigned deltas: every code at least its channel's background code (true for
    // the increasing tables min/max quantization of pixels gives). Each int16 lane gains at most
    // 2 * (2^a - 1) * 2^(b-1) per pair (|wc| <= 2^(b-1)), so byte_chunk pairs stay exact in int16;
    // at 8-bit activations and weights not even one pair is (2 * 255 * 128 > 32767), at 8x3 bits 16.
    bool unsigned_deltas = true;
    for (int16_t d : w->delta_table) unsigned_deltas = unsigned_deltas && d >= 0;
    const int64_t lane_bound = 2 * ((int64_t{1} << act_bits) - 1) * w->centre;
    const bool bytes = unsigned_deltas && lane_bound <= 32767;
    w->byte_chunk = bytes ? 32767 / lane_bound : 0;
    // Pass 2 of the listing adds pair_delta_low[q0] + pair_delta_high[q1]: d0 | d1 << 16, or for
    // bytes d0 | d1 << 8 | (d0 + d1) << 16 (qlinear_ukernel.h).
    if (table.channels() == 1)
      for (int p = 0; p < 256; ++p) {
        const uint32_t d = static_cast<uint16_t>(w->delta_table[p]);
        w->pair_delta_low.push_back(static_cast<int32_t>(bytes ? d | d << 16 : d));
        w->pair_delta_high.push_back(static_cast<int32_t>(bytes ? d << 8 | d << 16 : d << 16));
      }
    w->w.assign(static_cast<size_t>(w->np * w->pairs * 2), 0);
    w->wc_sum.assign(static_cast<size_t>(N), 0);
    w->background_dot.assign(static_cast<size_t>(w->np), 0);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t block = n / kSparseBlock, lane = n % kSparseBlock;
      const int64_t width = std::min(kSparseBlock, w->np - block * kSparseBlock);
      const int64_t block_start = block * kSparseBlock * w->pairs * 2;
      uint32_t background_dot = 0;
      for (int64_t k = 0; k < K; ++k) {
        const int32_t wc = codes[n * K + k] - w->centre;
        w->wc_sum[n] += wc;
        background_dot += static_cast<uint32_t>(wc) * static_cast<uint32_t>(background[k]);
        const int64_t at = block_start + ((k / 2) * width + lane) * 2 + k % 2;
        w->w[at] = static_cast<int8_t>(wc);
      }
      w->background_dot[n] = static_cast<int32_t>(background_dot);
    }
    if (adaptive_ && table.channels() > 1) w->dense = best_qlinear_kernel().prepare(packed, act_bits);
    return w;
  }

  void run(const PreparedWeights& prepared, const QLinearArgs& a) const override {
    check_qlinear_args(prepared, a);
    if (a.batch == 0 || prepared.rows == 0) return;
    const auto* sparse = dynamic_cast<const SparseWeights*>(&prepared);
    if (!sparse) throw Error(std::string(name()) + ": weights were prepared by another kernel");
    const SparseWeights& w = *sparse;
    thread_local CallConstants constants;
    fill_call_constants(a, w.rows, w.np, w.cols, w.centre, w.wc_sum.data(), constants);
    const CallConstants& c = constants;
    for_each_chunk(a.batch, [&](int64_t begin, int64_t rows) {
      // The density of every kDensitySample-th row decides: counting every row cost 6 % of the engine.
      const int64_t sampled = (rows + kDensitySample - 1) / kDensitySample;
      if (w.dense && pixel_pairs_active__avx2(a.x + begin * a.x_stride, a.x_stride * kDensitySample, sampled,
                                              w.cols) * 100 > kDenseAbovePercent * sampled * w.pairs) {
        run_mapped_rows(w.table, best_qlinear_kernel(), *w.dense, a, begin, rows);
        return;
      }
      thread_local std::vector<int32_t> scratch;
      const size_t scratch_size = static_cast<size_t>(2 * (w.pairs + 8));  // 8 spare entries each
      if (scratch.size() < scratch_size) scratch.resize(scratch_size);
      PixelRowsArgs r;
      r.rows = rows;
      r.pixels = a.x + begin * a.x_stride;
      r.pixel_stride = a.x_stride;
      r.K = w.cols;
      r.channels = w.table.channels();
      r.per_channel = w.table.per_channel;
      r.delta_table = w.delta_table.data();
      r.pair_delta_low = w.pair_delta_low.data();
      r.pair_delta_high = w.pair_delta_high.data();
      r.identity_deltas = w.identity_deltas;
      r.ink_from = w.ink_from;
      r.w = w.w.data();
      r.byte_chunk = w.byte_chunk;
      r.pairs = w.pairs;
      r.background_dot = w.background_dot.data();
      r.background_sum = w.background_sum;
      r.pair_index = scratch.data();
      r.pair_delta = scratch.data() + w.pairs + 8;
      set_output_stage(a, w.rows, c, begin, r.tile);
      pixel_linear_rows__avx2_sparse(r);
    });
  }

 private:
  bool adaptive_;
  const char* name_;
};

}  // namespace

const std::vector<const PixelLinearKernel*>& all_pixel_linear_kernels() {
  static const SparseKernel sparse_only(false, "pixel_linear_sparse_only_avx2");
  static const SparseKernel sparse(true, "pixel_linear_sparse_avx2");
  // The adaptive sparse kernel last: dispatch.cc picks it by default.
  static const std::vector<const PixelLinearKernel*> kernels = {
      &pixel_linear_mapped(qlinear_u8_ref()), &pixel_linear_mapped(qlinear_u8_avx2()),
      &pixel_linear_mapped(qlinear_u8_avx512vnni()), &pixel_linear_mapped(qlinear_u8_amx()), &sparse_only,
      &sparse};
  return kernels;
}

const PixelLinearKernel& pixel_linear_mapped(const QLinearKernel& qlinear) {
  static const MappedKernel ref(qlinear_u8_ref(), "pixel_linear_ref");
  static const MappedKernel avx2(qlinear_u8_avx2(), "pixel_linear_avx2");
  static const MappedKernel vnni(qlinear_u8_avx512vnni(), "pixel_linear_avx512vnni");
  static const MappedKernel amx(qlinear_u8_amx(), "pixel_linear_amx");
  if (&qlinear == &qlinear_u8_amx()) return amx;
  if (&qlinear == &qlinear_u8_avx512vnni()) return vnni;
  if (&qlinear == &qlinear_u8_avx2()) return avx2;
  if (&qlinear == &qlinear_u8_ref()) return ref;
  throw Error(std::string("pixel_linear: no mapped kernel for ") + qlinear.name());
}

}  // namespace lowbit::kernels
