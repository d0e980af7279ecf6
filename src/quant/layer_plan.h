// Pieces of planning one weighted layer that the chain planner (quantize.cc) and the graph
// planner (plan_graph.cc) share.
#pragma once

#include <vector>

#include <Eigen/Core>

#include "lowbit/quantize.h"

namespace lowbit {

// The weight grids of weight [out, in] at `bits` as `o` says (per tensor or per channel; minmax,
// mse or output_mse, the last against inputs [count, in], the layer's quantized inputs).
std::vector<QuantParams> weight_params(const Tensor& weight, int bits, const QuantOptions& o,
                                       const Tensor& inputs);
// The parameters whose range is s times the one `p` covers (loss-aware search).
QuantParams scaled_params(const QuantParams& p, float s, bool symmetric);
// The plan's weights dequantized: [out, in].
Tensor dequantized_weight(const QuantizedLinearPlan& q);

// Eigen picks its GEMM blocking, and so its summation order, from the thread count; one thread
// for the whole plan keeps the plan independent of --threads.
class SingleThreadedEigen {
 public:
  SingleThreadedEigen() : saved_(Eigen::nbThreads()) { Eigen::setNbThreads(1); }
  ~SingleThreadedEigen() { Eigen::setNbThreads(saved_); }
  SingleThreadedEigen(const SingleThreadedEigen&) = delete;
  SingleThreadedEigen& operator=(const SingleThreadedEigen&) = delete;

 private:
  int saved_;
};

// The graph planner (plan_graph.cc): plan_quantization for models that are not linear chains.
QuantPlan plan_graph_quantization(const Model& model, const Tensor& calibration_images,
                                  const QuantOptions& options,
                                  const std::function<void(size_t done, size_t total)>& progress);

}  // namespace lowbit
