// The first layer of an image model straight from raw pixels: each pixel becomes an input code
// through a per-channel table, then the layer is the qlinear operation of qlinear.h.
//
// For pixels p: [batch, x_stride] (first K used), channel c(k) = k / per_channel and
//   x[m][k] = table[c(k) * 256 + p[m][k]]
// the kernel writes exactly what qlinear_u8_ref writes for x (QLinearArgs with x = the pixels).
//
// "pixel_linear_<qlinear kernel>" maps every pixel, then runs that qlinear kernel. The sparse kernel
// ("pixel_linear_sparse_only_avx2") uses that a pixel of value 0 has the background code
// bg[k] = table[c(k) * 256] and contributes a constant: with d[k] = x[k] - bg[k],
//   dot(wc[n], x) = dot(wc[n], bg) + sum over k with p[k] != 0 of wc[n][k] * d[k]
// where dot(wc, bg) is computed once at prepare time. On MNIST 19 % of pixels (88 of 392 pixel
// pairs) are not 0, so the first layer costs a quarter of a dense one. Bit-exact: the identity
// holds in integers and every term fits int32 (docs/kernels.md, "Sparse first layer").
// "pixel_linear_sparse_avx2", the default, runs one-channel images sparse; with several channels it
// runs each chunk of 64 rows sparse unless more than 60 % of its pixel pairs hold ink, and then maps
// it and runs the dense kernel (CIFAR-like images).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/qlinear.h"

namespace lowbit::kernels {

// Pixel value -> input code, per channel.
struct PixelTable {
  int64_t per_channel = 0;     // features per channel; K = channels * per_channel
  std::vector<uint8_t> codes;  // [channels][256]
  int64_t channels() const { return static_cast<int64_t>(codes.size() / 256); }
};

class PixelLinearKernel {
 public:
  virtual ~PixelLinearKernel() = default;
  virtual const char* name() const = 0;
  virtual bool available() const = 0;
  // Codes in table must be < 2^act_bits; K = table.channels() * table.per_channel.
  virtual std::unique_ptr<PreparedWeights> prepare(const PackedWeights& w, int act_bits,
                                                   const PixelTable& table) const = 0;
  // args.x holds raw pixels; everything else as for QLinearKernel::run.
  virtual void run(const PreparedWeights& w, const QLinearArgs& args) const = 0;
};

// Every pixel kernel compiled in: the reference (map + qlinear_u8_ref) first.
const std::vector<const PixelLinearKernel*>& all_pixel_linear_kernels();
// The kernel that maps every pixel, then runs `qlinear` (one of all_qlinear_kernels()).
const PixelLinearKernel& pixel_linear_mapped(const QLinearKernel& qlinear);
// The one to use: LOWBIT_PIXEL_KERNEL ("ref", "avx2", "avx512vnni", "amx", "sparse_only_avx2",
// "sparse_avx2") if set;
// otherwise the sparse kernel when AVX2 is there and best_qlinear_kernel() is not the reference
// (LOWBIT_KERNEL=ref gives the reference everywhere), else map + best_qlinear_kernel().
const PixelLinearKernel& best_pixel_linear_kernel();

}  // namespace lowbit::kernels
