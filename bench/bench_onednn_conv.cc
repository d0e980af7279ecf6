// Conv2d's convolutions on ResNet-20's and cifar_small's layer shapes, forward, backward data and
// backward weights apart, four ways: im2col + the fixed-order GEMM (the reference), the layer's
// oneDNN path (one thread, NCHW in and out, reorders to the blocked layouts timed), oneDNN's
// primitives alone on tensors already in their blocked layouts (what keeping activations blocked
// through the graph could give), and oneDNN on a whole 128-image batch with 2 OpenMP threads
// (the alternative to one shard per thread). Counters: GFLOP/s (2 x MACs per pass), ms_per_32
// (time per 32 images), max_abs_diff (the layer's oneDNN result against im2col, checked first).
#include <benchmark/benchmark.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <unordered_map>

#include "lowbit/layers.h"
#include "nn/conv2d_backend.h"

namespace lowbit {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;

struct ConvShape {
  const char* model;
  int64_t in, out, size, kernel, stride;
};

// The distinct convolutions of the two presets (input size, kernel, stride).
const ConvShape kShapes[] = {
    {"resnet20", 3, 16, 32, 3, 1},     {"resnet20", 16, 16, 32, 3, 1},   {"resnet20", 16, 32, 32, 3, 2},
    {"resnet20", 16, 32, 32, 1, 2},    {"resnet20", 32, 32, 16, 3, 1},   {"resnet20", 32, 64, 16, 3, 2},
    {"resnet20", 32, 64, 16, 1, 2},    {"resnet20", 64, 64, 8, 3, 1},    {"cifar_small", 3, 32, 32, 3, 1},
    {"cifar_small", 32, 32, 16, 3, 1}, {"cifar_small", 32, 64, 16, 3, 1}, {"cifar_small", 64, 64, 8, 3, 1},
    {"cifar_small", 64, 128, 8, 3, 1}, {"cifar_small", 128, 128, 4, 3, 1},
};

enum class Pass { forward, data, weights };
const char* pass_name(Pass p) { return p == Pass::forward ? "fwd" : p == Pass::data ? "bwd_data" : "bwd_weights"; }

ConvGeometry geometry(const ConvShape& s, int64_t batch) {
  const Window2d win{s.kernel, s.kernel, s.stride, s.stride, s.kernel / 2, s.kernel / 2};
  const auto [oh, ow] = win.output_size(s.size, s.size);
  return {batch, s.in, s.size, s.size, s.out, oh, ow, 1, win};
}

struct Problem {
  ConvGeometry g;
  Tensor x, weight, y, dy, dx, dw;
  Problem(const ConvShape& s, int64_t batch)
      : g(geometry(s, batch)),
        x(Shape{batch, s.in, s.size, s.size}),
        weight(Shape{s.out, s.in, s.kernel, s.kernel}),
        y(Shape{batch, s.out, g.out_h, g.out_w}),
        dy(y.shape()),
        dx(x.shape()),
        dw(weight.shape()) {
    std::mt19937_64 rng(3);
    for (Tensor* t : {&x, &weight, &dy}) for (float& v : t->values()) v = uniform_float(rng, -1, 1);
  }
  double flops() const { return 2.0 * static_cast<double>(g.batch * g.out * g.out_h * g.out_w * g.channels * g.window.kernel_h * g.window.kernel_w); }
  void run(Pass p, bool onednn) {
    if (p == Pass::forward) (onednn ? conv2d_forward_onednn : conv2d_forward_im2col)(g, x.data(), weight.data(), y.data());
    if (p == Pass::data) (onednn ? conv2d_backward_data_onednn : conv2d_backward_data_im2col)(g, weight.data(), dy.data(), dx.data());
    if (p == Pass::weights) (onednn ? conv2d_backward_weights_onednn : conv2d_backward_weights_im2col)(g, x.data(), dy.data(), dw.data());
  }
  const Tensor& result(Pass p) const { return p == Pass::forward ? y : p == Pass::data ? dx : dw; }
};

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double worst = 0;
  for (int64_t i = 0; i < a.size(); ++i) worst = std::max(worst, double{std::fabs(a[i] - b[i])});
  return worst;
}

void counters(benchmark::State& state, const Problem& p) {
  state.counters["GFLOP/s"] = benchmark::Counter(p.flops() * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  // CPU milliseconds per 32 images (all threads' CPU time for the 2-thread runs).
  state.counters["ms_per_32"] = benchmark::Counter(static_cast<double>(p.g.batch) / 32.0 * 1e-3,
                                                   benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// The layer's two implementations, one thread, one 32-image shard.
void bm_layer(benchmark::State& state, ConvShape s, Pass pass, bool onednn) {
  omp_set_num_threads(1);
  Problem p(s, 32);
  if (onednn) {
    Problem reference(s, 32);
    reference.run(pass, false);
    p.run(pass, true);
    state.counters["max_abs_diff"] = max_abs_diff(p.result(pass), reference.result(pass));
  }
  for (auto _ : state) {
    p.run(pass, onednn);
    benchmark::ClobberMemory();
  }
  counters(state, p);
}

// oneDNN's primitives alone, every tensor already in the layout the primitive picked.
void bm_blocked(benchmark::State& state, ConvShape s, Pass pass, int64_t batch, int threads) {
  omp_set_num_threads(threads);
  const Problem p(s, batch);
  const ConvGeometry& g = p.g;
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  auto any = [](memory::dims d) { return memory::desc(d, memory::data_type::f32, Tag::any); };
  const memory::dims src = {g.batch, g.channels, g.h, g.w}, dst = {g.batch, g.out, g.out_h, g.out_w};
  const memory::dims wei = {g.out, g.channels, g.window.kernel_h, g.window.kernel_w};
  const memory::dims strides = {g.window.stride_h, g.window.stride_w}, pad = {g.window.pad_h, g.window.pad_w};
  const dnnl::convolution_forward::primitive_desc fwd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                      any(src), any(wei), any(dst), strides, pad, pad),
      engine);
  // Memories in the chosen layouts, filled from the plain tensors (not timed).
  auto filled = [&](const memory::desc& d, const Tensor& t, Tag tag) {
    memory plain({d.dims(), memory::data_type::f32, tag}, engine, const_cast<float*>(t.data()));
    memory m(d, engine);
    dnnl::reorder(plain, m).execute(stream, plain, m);
    stream.wait();
    return m;
  };
  dnnl::primitive prim;
  std::unordered_map<int, memory> args;
  if (pass == Pass::forward) {
    prim = dnnl::convolution_forward(fwd);
    args = {{DNNL_ARG_SRC, filled(fwd.src_desc(), p.x, Tag::nchw)},
            {DNNL_ARG_WEIGHTS, filled(fwd.weights_desc(), p.weight, Tag::oihw)},
            {DNNL_ARG_DST, memory(fwd.dst_desc(), engine)}};
  } else if (pass == Pass::data) {
    const dnnl::convolution_backward_data::primitive_desc pd(
        dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, any(src), any(wei), any(dst),
                                              strides, pad, pad),
        engine, fwd);
    prim = dnnl::convolution_backward_data(pd);
    args = {{DNNL_ARG_DIFF_DST, filled(pd.diff_dst_desc(), p.dy, Tag::nchw)},
            {DNNL_ARG_WEIGHTS, filled(pd.weights_desc(), p.weight, Tag::oihw)},
            {DNNL_ARG_DIFF_SRC, memory(pd.diff_src_desc(), engine)}};
  } else {
    const dnnl::convolution_backward_weights::primitive_desc pd(
        dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, any(src), any(wei), any(dst),
                                                 strides, pad, pad),
        engine, fwd);
    prim = dnnl::convolution_backward_weights(pd);
    args = {{DNNL_ARG_SRC, filled(pd.src_desc(), p.x, Tag::nchw)},
            {DNNL_ARG_DIFF_DST, filled(pd.diff_dst_desc(), p.dy, Tag::nchw)},
            {DNNL_ARG_DIFF_WEIGHTS, memory(pd.diff_weights_desc(), engine)}};
  }
  for (auto _ : state) {
    prim.execute(stream, args);
    stream.wait();
  }
  counters(state, p);
}

std::string shape_name(const ConvShape& s) {
  return std::string(s.model) + "/" + std::to_string(s.in) + "to" + std::to_string(s.out) + "_" +
         std::to_string(s.size) + "px_k" + std::to_string(s.kernel) + "s" + std::to_string(s.stride);
}

void register_all() {
  for (const ConvShape& s : kShapes)
    for (Pass pass : {Pass::forward, Pass::data, Pass::weights}) {
      const std::string tail = std::string("/") + pass_name(pass) + "/" + shape_name(s);
      benchmark::RegisterBenchmark(("im2col" + tail).c_str(), bm_layer, s, pass, false)->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("conv2d_onednn" + tail).c_str(), bm_layer, s, pass, true)->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("onednn_blocked_1t_b32" + tail).c_str(), bm_blocked, s, pass, 32, 1)->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("onednn_blocked_2t_b128" + tail).c_str(), bm_blocked, s, pass, 128, 2)
          ->Unit(benchmark::kMicrosecond)
          ->MeasureProcessCPUTime();
    }
}

}  // namespace
}  // namespace lowbit

int main(int argc, char** argv) {
  lowbit::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
