// The bit-width study: quantize one float model at each bit width and measure test accuracy.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/dataset.h"
#include "lowbit/model.h"
#include "lowbit/tensor.h"

namespace lowbit {

struct SweepOptions {
  std::vector<int> bits;                      // e.g. 1..8; weights and activations alike
  std::vector<std::string> methods{"minmax"};
  int64_t calibration_count = 1024;           // first images of the training set
  // Called after each (method, bits) row, from whichever thread measured it, one call at a time.
  std::function<void(size_t rows_done, size_t rows)> progress;
};

struct SweepRow {
  std::string method;
  int weight_bits = 0, act_bits = 0;
  double accuracy = 0;            // what lowbit reports: the integer engine's accuracy
  double simulated_accuracy = 0;  // float fake-quant, the study's measurement
  double agreement = 0;           // fraction of test images where both predict the same class
  int64_t weight_bytes = 0;       // weights packed at weight_bits (biases not counted)
};

struct SweepResult {
  std::string dataset;            // as loaded, e.g. "mnist" or "mnist-10k"
  std::string data_source;
  int64_t train_size = 0, test_size = 0;
  double float_accuracy = 0;
  int64_t float_weight_bytes = 0;
  std::string kernel, input_kernel;  // the engine's kernels that ran (first layer: input_kernel)
  std::string model;                 // the description's name ("fc_nn" for a nameless chain)
  int64_t multiply_adds = 0;         // per image, convolutions and Linear layers
  std::vector<SweepRow> results;

  nlohmann::json to_json() const;  // schema: docs/sweep-json.md
};

// calibration: normalized training images (the first calibration_count are used);
// test: the raw test set (for the integer engine) and the same images normalized
// ([count, features], for the float and simulated models). Fills everything but the dataset
// fields and train_size.
SweepResult run_sweep(const Model& model, const Tensor& calibration, const ImageSet& test,
                      const Tensor& test_images, const SweepOptions& options);

// Writes DIR/sweep.json, DIR/accuracy_vs_bits.png and .svg (each atomically).
void write_sweep_report(const SweepResult& result, const std::string& out_dir);

// The accuracies (percent) the original FC_NN study reported for 1..8 bits.
const std::vector<double>& study_reference_accuracy();

}  // namespace lowbit
