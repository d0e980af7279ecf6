// `lowbit qat` fine-tunes a float model with fake quantization (LSQ) and writes an integer model.
#include <chrono>
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "float_model_input.h"
#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/model_file.h"
#include "lowbit/qat.h"
#include "lowbit/quantize.h"
#include "lowbit/quantized_model.h"
#include "lowbit/simulated.h"

namespace lowbit::cli {

Action add_qat_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "qat", "quantization-aware training (LSQ) of a float model into an integer model file");
  struct Flags {
    DataFlags data;
    QatOptions qat;
    std::string model, out;
    BitFlags bits;
    int threads = 0;
  };
  auto f = std::make_shared<Flags>();
  f->data.dataset.clear();
  add_data_flags(*cmd, f->data);
  add_threads_flag(*cmd, f->threads);
  cmd->add_option("--model", f->model, "float model file")->required();
  cmd->add_option("--out", f->out, "quantized model file to write")->required();
  add_bit_flags(*cmd, f->bits);
  cmd->add_flag("--ternary", f->qat.ternary, "weights {-s, 0, s} in 2-bit codes");
  cmd->add_option("--epochs", f->qat.epochs, "QAT epochs")->capture_default_str()
      ->check(CLI::Range(0, 1000));
  cmd->add_option("--lr", f->qat.learning_rate, "Adam learning rate of the weights (decays to 0)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--step-lr", f->qat.step_learning_rate, "Adam learning rate of the steps")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--distill", f->qat.distill,
                  "weight of KL(float model || quantized) in the loss, 0..1 (0: labels only)")
      ->capture_default_str()->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--sign-ste-range", f->qat.sign_ste_range,
                  "1-bit (sign) weights: the STE passes while |w| < range * step")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--batch-size", f->qat.batch_size, "minibatch size")->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--seed", f->qat.seed, "shuffling seed")->capture_default_str();
  cmd->add_flag("!--no-progress", f->qat.progress, "no progress bar");
  return [f] {
    apply_threads(f->threads);
    QatOptions options = f->qat;
    if (quiet()) options.progress = false;
    options.weight_bits = f->bits.weight();
    options.act_bits = f->bits.act();
    if (options.ternary && !options.weight_bits) options.weight_bits = 2;
    if (!options.weight_bits || !options.act_bits)
      throw FlagError("--bits (or both --weight-bits and --act-bits) is required");
    ensure_writable_dir(parent_dir(f->out), "--out");
    const Model model = load_float_model(f->model, f->data.dataset);
    check_linear_chain(model, f->model, "lowbit qat");
    const Dataset data = load_data_for(f->data, model.metadata, f->model, shape_numel(model.output_shape()));
    const Tensor train_images = normalize_all(data, data.train);
    const auto start = std::chrono::steady_clock::now();
    const QatResult result =
        quantization_aware_training(model, train_images, data.train.labels, options);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    QuantizedModel quantized = QuantizedModel::build(model, result.plan);
    quantized.metadata["qat"] = {{"epochs", options.epochs},
                                 {"learning_rate", options.learning_rate},
                                 {"step_learning_rate", options.step_learning_rate},
                                 {"seed", options.seed},
                                 {"ternary", options.ternary},
                                 {"distill", options.distill},
                                 {"sign_ste_range", options.sign_ste_range}};
    quantized.save(f->out);
    const Tensor test_images = normalize_all(data, data.test);
    const SimulatedModel simulated(result.model, result.plan);
    const Evaluation sim = evaluate_with(
        [&simulated](const Tensor& x, Tensor& y) { simulated.forward(x, y); }, test_images,
        data.test.labels);
    const Evaluation integer = quantized.evaluate(data.test);
    int64_t same = 0;
    for (int64_t i = 0; i < data.test.count; ++i) same += integer.predictions[i] == sim.predictions[i];
    std::printf("wrote %s: %d-bit weights%s, %d-bit activations, %lld bytes of packed weights\n"
                "QAT %d epochs in %.1fs on %s; accuracy on %s: integer engine %.2f%%, "
                "simulated %.2f%%, same prediction on %.2f%%\n",
                f->out.c_str(), options.weight_bits,
                options.ternary ? " (ternary)" : options.weight_bits == 1 ? " (sign, ±s)" : "",
                options.act_bits, static_cast<long long>(quantized.weight_bytes()),
                options.epochs, seconds, describe_split(data, Split::train).c_str(),
                describe_split(data, Split::test).c_str(), 100 * integer.accuracy, 100 * sim.accuracy,
                data.test.count ? 100.0 * static_cast<double>(same) / static_cast<double>(data.test.count)
                                : 0.0);
    return 0;
  };
}

}  // namespace lowbit::cli
