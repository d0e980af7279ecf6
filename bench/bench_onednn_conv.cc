// Conv2d as lowbit runs it (im2col + one fixed-order GEMM per image) against oneDNN's convolution,
// forward and backward, on ResNet-20's and cifar_small's layer shapes, one 32-image shard, one
// thread. oneDNN runs in plain NCHW / OIHW (what the layer would hand it) and, for the forward
// pass, in the blocked layouts it picks itself (format_tag::any, reorders not timed). Each
// oneDNN result is checked against lowbit's before timing (counter max_abs_diff).
#include <benchmark/benchmark.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "lowbit/layers.h"

namespace lowbit {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;

constexpr int64_t kShard = 32;

struct ConvShape {
  const char* model;
  int64_t in, out, size, kernel, stride;
};

// The distinct convolutions of the two presets (input size, kernel, stride).
const ConvShape kShapes[] = {
    {"resnet20", 3, 16, 32, 3, 1},    {"resnet20", 16, 16, 32, 3, 1},
    {"resnet20", 16, 32, 32, 3, 2},   {"resnet20", 16, 32, 32, 1, 2},
    {"resnet20", 32, 32, 16, 3, 1},   {"resnet20", 64, 64, 8, 3, 1},
    {"cifar_small", 3, 32, 32, 3, 1}, {"cifar_small", 32, 32, 16, 3, 1},
    {"cifar_small", 32, 64, 16, 3, 1}, {"cifar_small", 64, 128, 8, 3, 1},
    {"cifar_small", 128, 128, 4, 3, 1},
};

struct Problem {
  Conv2d conv;
  Tensor x, y, dy;
  int64_t out_size;
  explicit Problem(const ConvShape& s)
      : conv({s.in, s.size, s.size},
             Conv2dOptions{s.out, {s.kernel, s.kernel, s.stride, s.stride, s.kernel / 2, s.kernel / 2}, 1, false}),
        x(Shape{kShard, s.in, s.size, s.size}) {
    std::mt19937_64 rng(3);
    conv.init(rng);
    for (float& v : x.values()) v = uniform_float(rng, -1, 1);
    conv.forward(x, y);
    out_size = y.dim(2);
    dy = Tensor(y.shape());
    for (float& v : dy.values()) v = uniform_float(rng, -1, 1);
  }
  double flops() const { return 2.0 * static_cast<double>(conv.multiply_adds({}) * kShard); }
};

double max_abs_diff(const float* a, const float* b, int64_t n) {
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) worst = std::max(worst, double{std::fabs(a[i] - b[i])});
  return worst;
}

void bm_lowbit_forward(benchmark::State& state, ConvShape s) {
  Problem p(s);
  Tensor y;
  for (auto _ : state) {
    p.conv.forward(p.x, y);
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(p.flops() * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

// Input and weight gradients: twice the forward pass's multiply-adds.
void bm_lowbit_backward(benchmark::State& state, ConvShape s) {
  Problem p(s);
  Tensor dx;
  std::vector<Tensor> grads = {Tensor(p.conv.weight().shape())};
  for (auto _ : state) {
    p.conv.backward(p.x, p.y, p.dy, &dx, grads);
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2 * p.flops() * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

struct Dnnl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  memory::dims src, weights, dst, strides, padding;
  explicit Dnnl(const ConvShape& s, int64_t out_size)
      : src{kShard, s.in, s.size, s.size},
        weights{s.out, s.in, s.kernel, s.kernel},
        dst{kShard, s.out, out_size, out_size},
        strides{s.stride, s.stride},
        padding{s.kernel / 2, s.kernel / 2} {}
  memory::desc md(const memory::dims& d, Tag tag) const { return {d, memory::data_type::f32, tag}; }
};

void bm_onednn_forward(benchmark::State& state, ConvShape s, bool blocked) {
  Problem p(s);
  Dnnl d(s, p.out_size);
  const Tag act = blocked ? Tag::any : Tag::nchw, wei = blocked ? Tag::any : Tag::oihw;
  const dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.md(d.src, act),
      d.md(d.weights, wei), d.md(d.dst, act), d.strides, d.padding, d.padding);
  const dnnl::convolution_forward::primitive_desc pd(desc, d.engine);
  // Our NCHW tensors, reordered into whatever layout the primitive chose (not timed).
  memory user_src(d.md(d.src, Tag::nchw), d.engine, p.x.data());
  memory user_weights(d.md(d.weights, Tag::oihw), d.engine, p.conv.weight().data());
  memory src(pd.src_desc(), d.engine), weights(pd.weights_desc(), d.engine), dst(pd.dst_desc(), d.engine);
  dnnl::reorder(user_src, src).execute(d.stream, user_src, src);
  dnnl::reorder(user_weights, weights).execute(d.stream, user_weights, weights);
  dnnl::convolution_forward conv(pd);
  auto run = [&] {
    conv.execute(d.stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}});
    d.stream.wait();
  };
  run();
  Tensor y(p.y.shape());
  memory user_dst(d.md(d.dst, Tag::nchw), d.engine, y.data());
  dnnl::reorder(dst, user_dst).execute(d.stream, dst, user_dst);
  d.stream.wait();
  state.counters["max_abs_diff"] = max_abs_diff(y.data(), p.y.data(), y.size());
  for (auto _ : state) run();
  state.counters["GFLOP/s"] = benchmark::Counter(p.flops() * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

// Backward data and backward weights in plain layouts, as one step (lowbit's backward does both).
void bm_onednn_backward(benchmark::State& state, ConvShape s) {
  Problem p(s);
  Dnnl d(s, p.out_size);
  const auto src_md = d.md(d.src, Tag::nchw), wei_md = d.md(d.weights, Tag::oihw), dst_md = d.md(d.dst, Tag::nchw);
  const dnnl::convolution_forward::primitive_desc hint(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                      src_md, wei_md, dst_md, d.strides, d.padding, d.padding),
      d.engine);
  const dnnl::convolution_backward_data::primitive_desc data_pd(
      dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, src_md, wei_md, dst_md,
                                            d.strides, d.padding, d.padding),
      d.engine, hint);
  const dnnl::convolution_backward_weights::primitive_desc weights_pd(
      dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src_md, wei_md, dst_md,
                                               d.strides, d.padding, d.padding),
      d.engine, hint);
  Tensor dx(p.x.shape()), dw(p.conv.weight().shape());
  memory src(src_md, d.engine, p.x.data()), weights(wei_md, d.engine, p.conv.weight().data());
  memory diff_dst(dst_md, d.engine, p.dy.data()), diff_src(src_md, d.engine, dx.data());
  memory diff_weights(wei_md, d.engine, dw.data());
  dnnl::convolution_backward_data data(data_pd);
  dnnl::convolution_backward_weights wgrad(weights_pd);
  auto run = [&] {
    data.execute(d.stream, {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DIFF_SRC, diff_src}});
    wgrad.execute(d.stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, diff_weights}});
    d.stream.wait();
  };
  run();
  Tensor our_dx;
  std::vector<Tensor> our_dw = {Tensor(dw.shape())};
  p.conv.backward(p.x, p.y, p.dy, &our_dx, our_dw);
  state.counters["max_abs_diff"] = std::max(max_abs_diff(dx.data(), our_dx.data(), dx.size()),
                                            max_abs_diff(dw.data(), our_dw[0].data(), dw.size()));
  for (auto _ : state) run();
  state.counters["GFLOP/s"] = benchmark::Counter(2 * p.flops() * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void register_all() {
  for (const ConvShape& s : kShapes) {
    const std::string name = std::string(s.model) + "/" + std::to_string(s.in) + "to" + std::to_string(s.out) +
                             "_" + std::to_string(s.size) + "px_k" + std::to_string(s.kernel) + "s" +
                             std::to_string(s.stride);
    benchmark::RegisterBenchmark(("lowbit_forward/" + name).c_str(), bm_lowbit_forward, s)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("onednn_forward_nchw/" + name).c_str(), bm_onednn_forward, s, false)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("onednn_forward_blocked/" + name).c_str(), bm_onednn_forward, s, true)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("lowbit_backward/" + name).c_str(), bm_lowbit_backward, s)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("onednn_backward_nchw/" + name).c_str(), bm_onednn_backward, s)->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace
}  // namespace lowbit

int main(int argc, char** argv) {
  omp_set_num_threads(1);  // one shard's work, as one trainer thread does it
  lowbit::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
