// Internal to src/kernels: the kernel objects dispatch.cc chooses among, and shared argument checks.
#pragma once

#include "kernels/qlinear.h"

namespace lowbit::kernels {

const QLinearKernel& qlinear_u8_ref();
const QLinearKernel& qlinear_u8_avx2();
const QLinearKernel& qlinear_u8_avx512vnni();
const QLinearKernel& qlinear_u8_amx();
// Bit-serial, weights and activations of 1..4 bits only (qlinear_bitserial.h).
const QLinearKernel& qlinear_u8_bitserial_popcnt();
const QLinearKernel& qlinear_u8_bitserial_avx2();
const QLinearKernel& qlinear_u8_bitserial_avx512vpopcnt();

// Throws lowbit::Error when args cannot be run against w (null pointers, both or no outputs,
// strides shorter than the row, out_min/out_max outside [0, 255]).
void check_qlinear_args(const PreparedWeights& w, const QLinearArgs& args);
// Throws lowbit::Error unless bits and act_bits are in 1..8, K <= kMaxInFeatures and the packed
// data has rows * row_bytes() bytes.
void check_prepare(const PackedWeights& packed, int act_bits);

}  // namespace lowbit::kernels

namespace lowbit::kernels {
bool cpu_has_avx2();        // AVX2 + FMA + BMI2 (dispatch.cc)
bool cpu_has_avx512vnni();  // AVX-512 F/BW/VL + VNNI (dispatch.cc)
// AMX-TILE + AMX-INT8 + the above, and Linux granted this process the tile data state (asked once,
// thread-safely, on the first call; dispatch.cc).
bool cpu_has_amx();
bool cpu_has_popcnt();      // POPCNT (dispatch.cc)
bool cpu_has_avx512vpopcnt();  // AVX2 + AVX-512 F/BW/VL + VPOPCNTDQ (dispatch.cc)
}  // namespace lowbit::kernels
