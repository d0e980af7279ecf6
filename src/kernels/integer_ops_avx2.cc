// AVX2 versions of the integer engine's operators besides the GEMM (contracts in integer_ops.h).
// Compiled with -mavx2 -mfma -mbmi2; everything here except the exported functions has internal linkage.
#include "kernels/integer_ops_simd.h"
#include "kernels/integer_ops_simd256.h"

namespace lowbit::kernels {

void pixels_to_codes_u8__avx2(const uint8_t* pixels, int64_t batch, const ImageShape& shape,
                              const uint8_t* table, uint8_t* codes) {
  pixels_to_codes_u8_256(pixels, batch, shape, table, codes);
}

void im2col_u8__avx2(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& window,
                     const ImageShape& out, uint8_t pad_code, uint8_t* cols) {
  im2col_u8_256(x, batch, in, window, out, pad_code, cols);
}

void max_pool_u8__avx2(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& window,
                       const ImageShape& out, uint8_t* y) {
  max_pool_u8_256(x, batch, in, window, out, y);
}

void avg_pool_u8__avx2(const uint8_t* x, int64_t batch, const ImageShape& in, const ImageShape& out,
                       const AvgPoolArgs& args, uint8_t* y) {
  avg_pool_u8_256(x, batch, in, out, args, y);
}

void add_u8__avx2(const AddArgs& args, int64_t n, uint8_t* y) { add_u8_256(args, n, y); }

void relu_u8__avx2(const uint8_t* x, int64_t n, uint8_t zero_point, uint8_t* y) { relu_u8_256(x, n, zero_point, y); }

}  // namespace lowbit::kernels
