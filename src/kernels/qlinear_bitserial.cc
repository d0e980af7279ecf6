// qlinear_u8_bitserial_{popcnt, avx2, avx512vpopcnt}: the bit-serial kernels for weights and
// activations of 1..4 bits (qlinear_bitserial.h). Bit-plane weight preparation, the portable
// kernel (64-bit words, __builtin_popcountll: POPCNT is part of the x86-64-v2 baseline) and the tile
// loop that packs activation planes per 4 rows and drives the SIMD micro-kernels. No ISA flags here.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/call_constants.h"
#include "kernels/qlinear_bitserial.h"
#include "kernels/qlinear_impl.h"
#include "kernels/requantize.h"
#include "lowbit/error.h"

namespace lowbit::kernels {
namespace {

// Batches smaller than this run on the calling thread with no OpenMP region (as qlinear_tiled.cc).
constexpr int64_t kMinParallelBatch = 64;

enum class Isa { kPortable, kAvx2, kAvx512Vpopcnt };

struct BitserialWeights final : PreparedWeights {
  int act_bits = 1;
  // Bit planes below `low` are zero in every code (sign-binary weights run as codes {0, 2}): the
  // planes hold w >> low, bits - low of them, and the dot product is shifted back by `low`.
  int low = 0;
  int64_t kw = 0;                 // words per plane: 32 k (SIMD) or 64 k (portable)
  int64_t np = 0;                 // N rounded up to kTileCols (SIMD), N (portable)
  std::vector<uint32_t> planes32; // SIMD: [np / 16][kw][bits][16] (qlinear_bitserial.h)
  std::vector<uint64_t> planes64; // portable: [N][bits][kw]
  std::vector<int32_t> w_sum;     // [N], sum_k w[n][k] of the raw codes
  BitserialUkernel ukernel = nullptr;
};

bool serves(int bits, int act_bits) {
  return bits >= 1 && bits <= kMaxBitserialBits && act_bits >= 1 && act_bits <= kMaxBitserialBits;
}

std::unique_ptr<BitserialWeights> make_planes(const char* name, const PackedWeights& packed, int act_bits, Isa isa) {
  check_prepare(packed, act_bits);
  if (!serves(packed.bits, act_bits))
    throw Error(std::string(name) + ": runs weights and activations of 1.." + std::to_string(kMaxBitserialBits) +
                " bits only, not " + std::to_string(packed.bits) + "-bit weights with " + std::to_string(act_bits) +
                "-bit activations");
  const int64_t N = packed.rows, K = packed.cols;
  const int B = packed.bits;
  auto w = std::make_unique<BitserialWeights>();
  w->rows = N, w->cols = K, w->bits = B, w->act_bits = act_bits;
  std::vector<uint8_t> codes(static_cast<size_t>(N * K));
  unpack_weights(packed, codes.data());
  w->w_sum.assign(static_cast<size_t>(N), 0);
  unsigned any = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) w->w_sum[n] += codes[n * K + k], any |= codes[n * K + k];
  while (w->low < B - 1 && !(any & (1u << w->low))) ++w->low;
  for (uint8_t& c : codes) c = static_cast<uint8_t>(c >> w->low);
  const int planes = B - w->low;
  if (isa == Isa::kPortable) {
    w->kw = (K + 63) / 64, w->np = N;
    w->planes64.assign(static_cast<size_t>(N * planes * w->kw), 0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k)
        for (int j = 0; j < planes; ++j)
          w->planes64[(n * planes + j) * w->kw + k / 64] |= static_cast<uint64_t>((codes[n * K + k] >> j) & 1) << (k % 64);
    return w;
  }
  w->kw = (K + 31) / 32, w->np = (N + kTileCols - 1) / kTileCols * kTileCols;
  w->planes32.assign(static_cast<size_t>(w->np * w->kw * planes), 0);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t block = n / kTileCols, lane = n % kTileCols;
    for (int64_t k = 0; k < K; ++k)
      for (int j = 0; j < planes; ++j)
        w->planes32[((block * w->kw + k / 32) * planes + j) * kTileCols + lane] |=
            static_cast<uint32_t>((codes[n * K + k] >> j) & 1) << (k % 32);
  }
  w->ukernel = isa == Isa::kAvx2 ? qlinear_bitserial_ukernel_4x16__avx2(planes, act_bits)
                                 : qlinear_bitserial_ukernel_4x16__avx512vpopcnt(planes, act_bits);
  return w;
}

// Portable: one row's planes at a time, then every feature; the scalar output stage of requantize.h.
void run_rows_portable(const BitserialWeights& w, const QLinearArgs& a, const CallConstants& c, int64_t begin,
                       int64_t end) {
  const int A = w.act_bits, B = w.bits - w.low;
  const int64_t kw = w.kw, K = w.cols;
  thread_local std::vector<uint64_t> xp;
  if (xp.size() < static_cast<size_t>(A * kw)) xp.resize(static_cast<size_t>(A * kw));
  for (int64_t m = begin; m < end; ++m) {
    const uint8_t* row = a.x + m * a.x_stride;
    std::fill(xp.begin(), xp.begin() + A * kw, uint64_t{0});
    uint32_t x_sum = 0;
    for (int64_t k = 0; k < K; ++k) {
      const uint32_t code = row[k];
      x_sum += code;
      for (int i = 0; i < A; ++i) xp[i * kw + k / 64] |= static_cast<uint64_t>((code >> i) & 1) << (k % 64);
    }
    for (int64_t n = 0; n < w.rows; ++n) {
      const uint64_t* wp = w.planes64.data() + n * B * kw;
      uint32_t dot = 0;
      for (int j = 0; j < B; ++j)
        for (int i = 0; i < A; ++i) {
          uint32_t count = 0;
          for (int64_t k = 0; k < kw; ++k)
            count += static_cast<uint32_t>(__builtin_popcountll(wp[j * kw + k] & xp[i * kw + k]));
          dot += count << (i + j + w.low);
        }
      // As the micro-kernels' output stage (qlinear_ukernel.h), mod 2^32.
      const uint32_t acc = (dot << a.acc_shift) + static_cast<uint32_t>(c.col_const[n]) +
                           static_cast<uint32_t>(c.row_factor[n]) * x_sum;
      const int32_t r = requantize(static_cast<int32_t>(acc), c.multiplier[n], c.shift[n]);
      if (a.y_i32)
        a.y_i32[m * a.y_stride + n] = add_saturate(r, a.out_zero_point);
      else
        a.y_u8[m * a.y_stride + n] = clamp_to_u8(r, a.out_zero_point, a.out_min, a.out_max);
    }
  }
}

// SIMD: tiles [first, end) of kTileRows rows; each tile's activation planes serve every feature.
using PackPlanes = void (*)(const uint8_t*, int64_t, int64_t, int64_t, int, int64_t, uint32_t*, int32_t*);

void run_tiles_simd(const BitserialWeights& w, const QLinearArgs& a, const CallConstants& c, int64_t first,
                    int64_t end, PackPlanes pack) {
  thread_local std::vector<uint32_t> buffer;
  const size_t size = static_cast<size_t>(kTileRows * w.act_bits * w.kw);
  if (buffer.size() < size) buffer.resize(size);
  int32_t x_sum[kTileRows];
  BitserialTile tile;
  tile.kw = w.kw;
  tile.x_planes = buffer.data();
  tile.w_planes = w.planes32.data();
  for (int64_t i = first; i < end; ++i) {
    const int64_t m0 = i * kTileRows;
    const int64_t mr = std::min<int64_t>(kTileRows, a.batch - m0);
    pack(a.x + m0 * a.x_stride, a.x_stride, mr, w.cols, w.act_bits, w.kw, buffer.data(), x_sum);
    set_output_stage(a, w.rows, c, m0, tile.out);
    tile.out.acc_shift += w.low;  // (dot << low) << acc_shift, mod 2^32: at most 24 + 3 bits
    tile.out.mr = mr;
    tile.out.x_sum = x_sum;
    w.ukernel(tile);
  }
}

class BitserialKernel final : public QLinearKernel {
 public:
  BitserialKernel(const char* name, Isa isa) : name_(name), isa_(isa) {}
  const char* name() const override { return name_; }
  bool available() const override {
    switch (isa_) {
      case Isa::kPortable: return cpu_has_popcnt();
      case Isa::kAvx2: return cpu_has_avx2();
      case Isa::kAvx512Vpopcnt: return cpu_has_avx512vpopcnt();
    }
    return false;
  }
  bool supports(int bits, int act_bits) const override { return serves(bits, act_bits); }
  std::unique_ptr<PreparedWeights> prepare(const PackedWeights& packed, int act_bits) const override {
    return make_planes(name_, packed, act_bits, isa_);
  }

  void run(const PreparedWeights& prepared, const QLinearArgs& a) const override {
    check_qlinear_args(prepared, a);
    if (a.batch == 0 || prepared.rows == 0) return;
    const auto* planes = dynamic_cast<const BitserialWeights*>(&prepared);
    if (!planes || (isa_ == Isa::kPortable) != planes->planes32.empty() ||
        (isa_ != Isa::kPortable && planes->ukernel != prepare_ukernel(planes->bits - planes->low, planes->act_bits)))
      throw Error(std::string(name_) + ": weights were prepared by another kernel");
    const BitserialWeights& w = *planes;
    thread_local CallConstants constants;
    // Raw codes: centre 0, so call_constants' sum(wc) is the sum of the codes.
    fill_call_constants(a, w.rows, w.np, w.cols, 0, w.w_sum.data(), constants);
    // Only the 512-bit output stage (qlinear_simd512.h) has the threshold form.
    fill_thresholds(a, w.rows, w.np, isa_ == Isa::kAvx512Vpopcnt ? kMaxThresholdLevels : -1, constants);
    // A lambda does not capture a thread_local: name this thread's copy for the OpenMP threads.
    const CallConstants& c = constants;
    // Chunks of 64 rows handed out dynamically (as qlinear_tiled.cc); results do not depend on it.
    constexpr int64_t kChunkRows = 64;
    const int64_t chunks = (a.batch + kChunkRows - 1) / kChunkRows;
    auto run_chunk = [&](int64_t chunk) {
      const int64_t begin = chunk * kChunkRows, end = std::min(a.batch, begin + kChunkRows);
      if (isa_ == Isa::kPortable)
        run_rows_portable(w, a, c, begin, end);
      else
        run_tiles_simd(w, a, c, begin / kTileRows, (end + kTileRows - 1) / kTileRows,
                       isa_ == Isa::kAvx2 ? qlinear_pack_x_planes__avx2 : qlinear_pack_x_planes__avx512);
    };
    if (a.batch < kMinParallelBatch || chunks < 2) {
      for (int64_t chunk = 0; chunk < chunks; ++chunk) run_chunk(chunk);
      return;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) run_chunk(chunk);
  }

 private:
  BitserialUkernel prepare_ukernel(int bits, int act_bits) const {
    return isa_ == Isa::kAvx2 ? qlinear_bitserial_ukernel_4x16__avx2(bits, act_bits)
                              : qlinear_bitserial_ukernel_4x16__avx512vpopcnt(bits, act_bits);
  }
  const char* name_;
  Isa isa_;
};

}  // namespace

const QLinearKernel& qlinear_u8_bitserial_popcnt() {
  static const BitserialKernel kernel("qlinear_u8_bitserial_popcnt", Isa::kPortable);
  return kernel;
}

const QLinearKernel& qlinear_u8_bitserial_avx2() {
  static const BitserialKernel kernel("qlinear_u8_bitserial_avx2", Isa::kAvx2);
  return kernel;
}

const QLinearKernel& qlinear_u8_bitserial_avx512vpopcnt() {
  static const BitserialKernel kernel("qlinear_u8_bitserial_avx512vpopcnt", Isa::kAvx512Vpopcnt);
  return kernel;
}

}  // namespace lowbit::kernels
