// Conv2d's convolutions through oneDNN: one thread per call, blocked layouts inside, NCHW outside.
//
// Why one thread: oneDNN's kernels split work (and the weight gradient's reduction) by the thread
// count they run with, so two threads would sum in another order than one. The trainer already
// runs one 32-image shard per thread; each call here pins oneDNN to its own thread (OpenMP's
// nthreads ICV belongs to the calling task, so pinning one thread leaves the others alone) and
// oneDNN's result is then a function of the shapes and the CPU's instruction set only.
#include <omp.h>

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "lowbit/error.h"
#include "nn/conv2d_backend.h"

namespace lowbit {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Scratch = std::vector<float, AlignedAllocator<float>>;

// Sets this thread's OpenMP thread count to 1 for oneDNN's primitive creation and execution.
class OneThread {
 public:
  OneThread() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~OneThread() { omp_set_num_threads(saved_); }
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;

 private:
  int saved_;
};

// A layout change, or none when both sides agree (and the result is not accumulated).
struct Reorder {
  std::optional<dnnl::reorder> primitive;
  memory::desc to, scratchpad;
};

// Every primitive takes its scratchpad from the caller (a per-thread buffer, below): with oneDNN's
// own, page faults and memset on fresh pages took 8 % of a resnet20 shard step.
dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

Reorder make_reorder(const dnnl::engine& engine, const memory::desc& from, const memory::desc& to,
                     bool accumulate = false) {
  Reorder r{std::nullopt, to, {}};
  if (from == to && !accumulate) return r;
  dnnl::primitive_attr attr = user_scratchpad();
  if (accumulate) {
    dnnl::post_ops sum;
    sum.append_sum(1.0f);  // to += from
    attr.set_post_ops(sum);
  }
  const dnnl::reorder::primitive_desc pd(engine, from, engine, to, attr);
  r.primitive = dnnl::reorder(pd);
  r.scratchpad = pd.scratchpad_desc();
  return r;
}

// Everything one convolution shape needs, created once per thread and shape; the backward parts on
// the first backward call.
struct Plan {
  memory::desc user_src, user_weights, user_dst;  // NCHW, OIHW (GOIHW with groups), NCHW
  memory::dims strides, padding;
  std::optional<dnnl::convolution_forward::primitive_desc> forward_pd;
  std::optional<dnnl::convolution_forward> forward;
  Reorder forward_src, forward_weights, forward_dst;
  std::optional<dnnl::convolution_backward_data> data;
  Reorder data_weights, data_dst, data_src;  // weights and dy in, dx out
  std::optional<dnnl::convolution_backward_weights> weights;
  Reorder weights_src, weights_dst, weights_out;  // x and dy in, dweight out (accumulated)
  memory::desc forward_scratchpad, data_scratchpad, weights_scratchpad;
};

// Plans one thread keeps: one per convolution shape and batch size (resnet20 has 8 shapes; training
// and evaluation use a few batch sizes).
constexpr size_t kMaxPlans = 128;

// Per-thread oneDNN state: engine and stream, plans by shape, scratch for the blocked tensors.
struct Context {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<std::array<int64_t, 12>, std::unique_ptr<Plan>> plans;
  Scratch scratch[5], pad;
};

Context& context() {
  thread_local Context c;
  return c;
}

memory::desc any(const memory::dims& dims) { return {dims, memory::data_type::f32, Tag::any}; }

Plan& plan_for(Context& c, const ConvGeometry& g) {
  const Window2d& w = g.window;
  const std::array<int64_t, 12> key = {g.batch, g.channels, g.h, g.w, g.out, g.groups,
                                       w.kernel_h, w.kernel_w, w.stride_h, w.stride_w, w.pad_h, w.pad_w};
  if (const auto found = c.plans.find(key); found != c.plans.end()) return *found->second;
  // Each batch size is a shape of its own: a caller that feeds many sizes (evaluation of ragged
  // chunks, the Python module) must not grow the cache without end.
  if (c.plans.size() >= kMaxPlans) c.plans.clear();
  std::unique_ptr<Plan>& slot = c.plans[key];
  auto plan = std::make_unique<Plan>();
  const memory::dims src = {g.batch, g.channels, g.h, g.w}, dst = {g.batch, g.out, g.out_h, g.out_w};
  const memory::dims weights =
      g.groups == 1 ? memory::dims{g.out, g.channels, w.kernel_h, w.kernel_w}
                    : memory::dims{g.groups, g.out / g.groups, g.channels / g.groups, w.kernel_h, w.kernel_w};
  plan->user_src = {src, memory::data_type::f32, Tag::nchw};
  plan->user_dst = {dst, memory::data_type::f32, Tag::nchw};
  plan->user_weights = {weights, memory::data_type::f32, g.groups == 1 ? Tag::oihw : Tag::goihw};
  plan->strides = {w.stride_h, w.stride_w};
  plan->padding = {w.pad_h, w.pad_w};  // floor division makes the right padding the same
  // forward_training for evaluation too, so that both give the same bits.
  plan->forward_pd.emplace(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                      any(src), any(weights), any(dst), plan->strides, plan->padding,
                                      plan->padding),
      user_scratchpad(), c.engine);
  plan->forward.emplace(*plan->forward_pd);
  plan->forward_scratchpad = plan->forward_pd->scratchpad_desc();
  plan->forward_src = make_reorder(c.engine, plan->user_src, plan->forward_pd->src_desc());
  plan->forward_weights = make_reorder(c.engine, plan->user_weights, plan->forward_pd->weights_desc());
  plan->forward_dst = make_reorder(c.engine, plan->forward_pd->dst_desc(), plan->user_dst);
  slot = std::move(plan);
  return *slot;
}

// The per-thread scratchpad, large enough for `desc`.
memory scratchpad(Context& c, const memory::desc& desc) {
  c.pad.resize((desc.get_size() + sizeof(float) - 1) / sizeof(float) + 1);
  return memory(desc, c.engine, c.pad.data());
}

void run_reorder(Context& c, const Reorder& r, memory& from, memory& to) {
  r.primitive->execute(c.stream, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}, {DNNL_ARG_SCRATCHPAD, scratchpad(c, r.scratchpad)}});
}

// `data` in the plain layout `user` as a memory in the reorder's layout: the data itself when no
// reorder is needed, else reordered into `scratch`.
memory reordered(Context& c, const Reorder& r, const memory::desc& user, const float* data, Scratch& scratch) {
  memory plain(user, c.engine, const_cast<float*>(data));
  if (!r.primitive) return plain;
  scratch.resize((r.to.get_size() + sizeof(float) - 1) / sizeof(float));
  memory out(r.to, c.engine, scratch.data());
  run_reorder(c, r, plain, out);
  return out;
}

// A memory in `desc` for a primitive to write: `data` itself when `desc` is the plain layout.
memory output(Context& c, const memory::desc& desc, const memory::desc& user, float* data, Scratch& scratch) {
  if (desc == user) return memory(user, c.engine, data);
  scratch.resize((desc.get_size() + sizeof(float) - 1) / sizeof(float));
  return memory(desc, c.engine, scratch.data());
}

void write_back(Context& c, const Reorder& r, memory result, const memory::desc& user, float* data) {
  if (!r.primitive) return;
  memory plain(user, c.engine, data);
  run_reorder(c, r, result, plain);
}

template <typename Run>
void guarded(Run&& run) {
  try {
    OneThread one;
    run(context());
  } catch (const dnnl::error& e) {
    throw Error(std::string("conv2d: oneDNN failed: ") + e.what());
  }
}

}  // namespace

void conv2d_forward_onednn(const ConvGeometry& g, const float* x, const float* weight, float* y) {
  if (g.batch == 0) return;
  guarded([&](Context& c) {
    Plan& p = plan_for(c, g);
    memory src = reordered(c, p.forward_src, p.user_src, x, c.scratch[0]);
    memory weights = reordered(c, p.forward_weights, p.user_weights, weight, c.scratch[1]);
    memory dst = output(c, p.forward_pd->dst_desc(), p.user_dst, y, c.scratch[2]);
    p.forward->execute(c.stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst},
                                  {DNNL_ARG_SCRATCHPAD, scratchpad(c, p.forward_scratchpad)}});
    write_back(c, p.forward_dst, dst, p.user_dst, y);
    c.stream.wait();
  });
}

namespace {

void prepare_backward_data(Context& c, Plan& p) {
  if (p.data) return;
  const dnnl::convolution_backward_data::primitive_desc pd(
      dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, any(p.user_src.dims()),
                                            any(p.user_weights.dims()), any(p.user_dst.dims()), p.strides,
                                            p.padding, p.padding),
      user_scratchpad(), c.engine, *p.forward_pd);
  p.data.emplace(pd);
  p.data_scratchpad = pd.scratchpad_desc();
  p.data_weights = make_reorder(c.engine, p.user_weights, pd.weights_desc());
  p.data_dst = make_reorder(c.engine, p.user_dst, pd.diff_dst_desc());
  p.data_src = make_reorder(c.engine, pd.diff_src_desc(), p.user_src);
  p.data_src.to = pd.diff_src_desc();  // the layout the primitive writes
}

void prepare_backward_weights(Context& c, Plan& p) {
  if (p.weights) return;
  const dnnl::convolution_backward_weights::primitive_desc pd(
      dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, any(p.user_src.dims()),
                                               any(p.user_weights.dims()), any(p.user_dst.dims()), p.strides,
                                               p.padding, p.padding),
      user_scratchpad(), c.engine, *p.forward_pd);
  p.weights.emplace(pd);
  p.weights_scratchpad = pd.scratchpad_desc();
  p.weights_src = make_reorder(c.engine, p.user_src, pd.src_desc());
  p.weights_dst = make_reorder(c.engine, p.user_dst, pd.diff_dst_desc());
  p.weights_out = make_reorder(c.engine, pd.diff_weights_desc(), p.user_weights, true);
  p.weights_out.to = pd.diff_weights_desc();
}

// dx = W^T * dy, with dy already in the primitive's layout.
void backward_data(Context& c, Plan& p, const float* weight, memory& diff_dst, float* dx) {
  memory weights = reordered(c, p.data_weights, p.user_weights, weight, c.scratch[1]);
  memory diff_src = output(c, p.data_src.to, p.user_src, dx, c.scratch[0]);
  p.data->execute(c.stream, {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DIFF_SRC, diff_src},
                             {DNNL_ARG_SCRATCHPAD, scratchpad(c, p.data_scratchpad)}});
  write_back(c, p.data_src, diff_src, p.user_src, dx);
}

// dweight += dy * x^T, with dy already in the primitive's layout. Always into scratch, then added
// onto dweight: the primitive overwrites, the layer adds.
void backward_weights(Context& c, Plan& p, const float* x, memory& diff_dst, float* dweight) {
  memory src = reordered(c, p.weights_src, p.user_src, x, c.scratch[0]);
  c.scratch[3].resize((p.weights_out.to.get_size() + sizeof(float) - 1) / sizeof(float));
  memory diff_weights(p.weights_out.to, c.engine, c.scratch[3].data());
  p.weights->execute(c.stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, diff_weights},
                                {DNNL_ARG_SCRATCHPAD, scratchpad(c, p.weights_scratchpad)}});
  memory plain(p.user_weights, c.engine, dweight);
  run_reorder(c, p.weights_out, diff_weights, plain);
}

}  // namespace

void conv2d_backward_data_onednn(const ConvGeometry& g, const float* weight, const float* dy, float* dx) {
  if (g.batch == 0) return;
  guarded([&](Context& c) {
    Plan& p = plan_for(c, g);
    prepare_backward_data(c, p);
    memory diff_dst = reordered(c, p.data_dst, p.user_dst, dy, c.scratch[2]);
    backward_data(c, p, weight, diff_dst, dx);
    c.stream.wait();
  });
}

void conv2d_backward_weights_onednn(const ConvGeometry& g, const float* x, const float* dy, float* dweight) {
  if (g.batch == 0) return;
  guarded([&](Context& c) {
    Plan& p = plan_for(c, g);
    prepare_backward_weights(c, p);
    memory diff_dst = reordered(c, p.weights_dst, p.user_dst, dy, c.scratch[2]);
    backward_weights(c, p, x, diff_dst, dweight);
    c.stream.wait();
  });
}

void conv2d_backward_onednn(const ConvGeometry& g, const float* x, const float* weight, const float* dy,
                            float* dx, float* dweight) {
  if (g.batch == 0) return;
  guarded([&](Context& c) {
    Plan& p = plan_for(c, g);
    prepare_backward_weights(c, p);
    memory weights_dy = reordered(c, p.weights_dst, p.user_dst, dy, c.scratch[2]);
    if (dx) {
      prepare_backward_data(c, p);
      // dy is reordered once when both primitives take it in the same layout.
      memory data_dy = p.data_dst.to == p.weights_dst.to ? weights_dy
                                                         : reordered(c, p.data_dst, p.user_dst, dy, c.scratch[4]);
      backward_data(c, p, weight, data_dy, dx);
    }
    backward_weights(c, p, x, weights_dy, dweight);
    c.stream.wait();
  });
}

}  // namespace lowbit
