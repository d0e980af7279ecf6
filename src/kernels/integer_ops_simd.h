// Internal to src/kernels: the AVX2 and AVX-512 versions of the integer_ops.h operators.
//
// Plain functions over raw pointers (no STL, no inline templates shared with other files), so the
// ISA flags of their files cannot leak into code the rest of the program links to. Each has the
// contract of its integer_ops.h namesake and gives the same bytes (the probe and the tests check);
// outputs must not overlap inputs.
#pragma once

#include <cstdint>

#include "kernels/integer_ops.h"

namespace lowbit::kernels {

bool cpu_has_avx512bw();  // AVX-512 F/BW/VL (dispatch.cc)

void pixels_to_codes_u8__avx2(const uint8_t* pixels, int64_t batch, const ImageShape& shape,
                              const uint8_t* table, uint8_t* codes);
void im2col_u8__avx2(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& window,
                     const ImageShape& out, uint8_t pad_code, uint8_t* cols);
void max_pool_u8__avx2(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& window,
                       const ImageShape& out, uint8_t* y);
void avg_pool_u8__avx2(const uint8_t* x, int64_t batch, const ImageShape& in, const ImageShape& out,
                       const AvgPoolArgs& args, uint8_t* y);
void add_u8__avx2(const AddArgs& args, int64_t n, uint8_t* y);
void relu_u8__avx2(const uint8_t* x, int64_t n, uint8_t zero_point, uint8_t* y);

void pixels_to_codes_u8__avx512(const uint8_t* pixels, int64_t batch, const ImageShape& shape,
                                const uint8_t* table, uint8_t* codes);
void im2col_u8__avx512(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& window,
                       const ImageShape& out, uint8_t pad_code, uint8_t* cols);
void max_pool_u8__avx512(const uint8_t* x, int64_t batch, const ImageShape& in, const Window& window,
                         const ImageShape& out, uint8_t* y);
void avg_pool_u8__avx512(const uint8_t* x, int64_t batch, const ImageShape& in, const ImageShape& out,
                         const AvgPoolArgs& args, uint8_t* y);
void add_u8__avx512(const AddArgs& args, int64_t n, uint8_t* y);
void relu_u8__avx512(const uint8_t* x, int64_t n, uint8_t zero_point, uint8_t* y);

}  // namespace lowbit::kernels
