// The two ways Conv2d computes: oneDNN's convolution primitives (the layer's) and im2col + the
// fixed-order GEMM (the reference the tests compare it with).
#pragma once

#include <cstdint>

#include "lowbit/layers.h"

namespace lowbit {

// One convolution call's shapes, batch included. x: [batch, channels, h, w],
// weight: [out, channels / groups, kh, kw], y: [batch, out, out_h, out_w]. No bias: the layer
// adds it itself, so that both backends share that code.
struct ConvGeometry {
  int64_t batch, channels, h, w, out, out_h, out_w, groups;
  Window2d window;
};

// oneDNN (nn/conv2d_onednn.cc). Every call runs on the calling thread alone, whatever the OpenMP
// settings, in oneDNN's blocked layouts with reorders from and to NCHW at the call's edges;
// primitives are cached per thread and shape. One thread and one shape give one summation order,
// so results do not depend on the thread count or on which thread ran a shard.
// y = conv(x, weight), written.
void conv2d_forward_onednn(const ConvGeometry& g, const float* x, const float* weight, float* y);
// dx = dLoss/dx, written.
void conv2d_backward_data_onednn(const ConvGeometry& g, const float* weight, const float* dy, float* dx);
// dweight += dLoss/dweight.
void conv2d_backward_weights_onednn(const ConvGeometry& g, const float* x, const float* dy, float* dweight);
// Both backward passes (dx skipped when null), dy reordered once: what the layer calls.
void conv2d_backward_onednn(const ConvGeometry& g, const float* x, const float* weight, const float* dy,
                            float* dx, float* dweight);

// im2col + gemm() (nn/conv2d_im2col.cc), one image and group at a time; same contracts.
void conv2d_forward_im2col(const ConvGeometry& g, const float* x, const float* weight, float* y);
void conv2d_backward_data_im2col(const ConvGeometry& g, const float* weight, const float* dy, float* dx);
void conv2d_backward_weights_im2col(const ConvGeometry& g, const float* x, const float* dy, float* dweight);

}  // namespace lowbit
