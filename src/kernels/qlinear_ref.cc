// qlinear_u8_ref: the plain C++ specification of the quantized linear layer (qlinear.h).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/qlinear_impl.h"
#include "kernels/requantize.h"
#include "lowbit/error.h"

namespace lowbit::kernels {

void check_prepare(const PackedWeights& packed, int act_bits) {
  if (act_bits < 1 || act_bits > 8)
    throw Error("qlinear: act_bits must be in 1..8, got " + std::to_string(act_bits));
  if (packed.bits < 1 || packed.bits > 8)
    throw Error("qlinear: weight bits must be in 1..8, got " + std::to_string(packed.bits));
  if (packed.cols > kMaxInFeatures)
    throw Error("qlinear: K = " + std::to_string(packed.cols) + " exceeds kMaxInFeatures = " +
                std::to_string(kMaxInFeatures));
  if (packed.rows < 0 || packed.cols < 0 ||
      static_cast<int64_t>(packed.data.size()) != packed.rows * packed.row_bytes())
    throw Error("qlinear: packed weights hold " + std::to_string(packed.data.size()) +
                " bytes, not rows * ceil(cols * bits / 8)");
}

void check_qlinear_args(const PreparedWeights& w, const QLinearArgs& a) {
  if (a.batch < 0) throw Error("qlinear: negative batch");
  if (a.batch == 0) return;
  if (!a.x || !a.bias || !a.w_zero_point || !a.multiplier || !a.shift)
    throw Error("qlinear: x, bias, w_zero_point, multiplier and shift must all be set");
  if ((a.y_u8 == nullptr) == (a.y_i32 == nullptr))
    throw Error("qlinear: set exactly one of y_u8 and y_i32");
  if (a.x_stride < w.cols || a.y_stride < w.rows)
    throw Error("qlinear: x_stride must be >= K and y_stride >= N");
  if (a.y_u8 && (a.out_min < 0 || a.out_max > 255 || a.out_min > a.out_max))
    throw Error("qlinear: need 0 <= out_min <= out_max <= 255 for y_u8");
  if (a.acc_shift < 0 || a.acc_shift > kMaxAccShift)
    throw Error("qlinear: acc_shift must be in 0.." + std::to_string(kMaxAccShift) + ", got " +
                std::to_string(a.acc_shift));
}

namespace {

struct RefWeights final : PreparedWeights {
  std::vector<uint8_t> codes;  // [N, K], unpacked
};

class RefKernel final : public QLinearKernel {
 public:
  const char* name() const override { return "qlinear_u8_ref"; }
  bool available() const override { return true; }

  std::unique_ptr<PreparedWeights> prepare(const PackedWeights& packed, int act_bits) const override {
    check_prepare(packed, act_bits);
    auto w = std::make_unique<RefWeights>();
    w->rows = packed.rows;
    w->cols = packed.cols;
    w->bits = packed.bits;
    w->codes.resize(static_cast<size_t>(packed.rows * packed.cols));
    unpack_weights(packed, w->codes.data());
    return w;
  }

  // x: [batch, x_stride], y: [batch, y_stride]. acc is summed modulo 2^32: that is its exact value
  // whenever the bound of docs/kernels.md holds, and what every kernel's int32 arithmetic gives
  // otherwise, so kernels agree bit for bit even on inputs outside the contract.
  void run(const PreparedWeights& prepared, const QLinearArgs& a) const override {
    check_qlinear_args(prepared, a);
    const auto* ref = dynamic_cast<const RefWeights*>(&prepared);
    if (!ref) throw Error("qlinear_u8_ref: weights were prepared by another kernel");
    const RefWeights& w = *ref;
    const int64_t N = w.rows, K = w.cols;
    for (int64_t m = 0; m < a.batch; ++m) {
      const uint8_t* x = a.x + m * a.x_stride;
      for (int64_t n = 0; n < N; ++n) {
        const uint8_t* wrow = w.codes.data() + n * K;
        uint32_t sum = 0;
        for (int64_t k = 0; k < K; ++k)
          sum += static_cast<uint32_t>(wrow[k] - a.w_zero_point[n]) *
                 static_cast<uint32_t>(x[k] - a.x_zero_point);
        const int32_t acc = static_cast<int32_t>(static_cast<uint32_t>(a.bias[n]) + (sum << a.acc_shift));
        const int32_t r = requantize(acc, a.multiplier[n], a.shift[n]);
        if (a.y_i32)
          a.y_i32[m * a.y_stride + n] = add_saturate(r, a.out_zero_point);
        else
          a.y_u8[m * a.y_stride + n] = clamp_to_u8(r, a.out_zero_point, a.out_min, a.out_max);
      }
    }
  }
};

}  // namespace

const QLinearKernel& qlinear_u8_ref() {
  static const RefKernel kernel;
  return kernel;
}

}  // namespace lowbit::kernels
