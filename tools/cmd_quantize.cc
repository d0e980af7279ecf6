// `lowbit quantize` writes an integer model; `lowbit infer` classifies a user's own images.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/idx.h"
#include "lowbit/model_file.h"
#include "lowbit/png_images.h"
#include "lowbit/quantize.h"
#include "lowbit/quantized_model.h"

namespace lowbit::cli {
namespace {

// "8:8,4:4,8:8" -> weight bits {8, 4, 8}, activation bits {8, 4, 8}.
void parse_layer_bits(const std::string& text, QuantOptions& options) {
  for (const std::string& pair : CLI::detail::split(text, ',')) {
    const auto colon = pair.find(':');
    if (colon == std::string::npos) throw Error("--layer-bits: \"" + pair + "\" is not W:A");
    try {
      options.layer_weight_bits.push_back(std::stoi(pair.substr(0, colon)));
      options.layer_act_bits.push_back(std::stoi(pair.substr(colon + 1)));
    } catch (const std::exception&) {
      throw Error("--layer-bits: \"" + pair + "\" is not W:A");
    }
  }
}

template <class Flags>
void apply_quantize_flags(const Flags& f, QuantOptions& options) {
  if (!f.act_calibration.empty()) options.calibration = parse_calibration(f.act_calibration);
  if (!f.weight_calibration.empty())
    options.weight_calibration = parse_calibration(f.weight_calibration);
  if (f.percentile > 0) {
    options.percentile = f.percentile;
    options.calibration = Calibration::percentile;
  }
  options.per_channel |= f.per_channel;
  options.symmetric |= f.symmetric;
  options.bias_correction |= f.bias_correction;
  if (!f.rounding.empty()) options.rounding = parse_rounding(f.rounding);
  if (!f.layer_bits.empty()) parse_layer_bits(f.layer_bits, options);
}

}  // namespace

Action add_quantize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("quantize", "quantize a float model into an integer model file");
  struct Flags {
    DataFlags data;
    std::string model, out, method = "minmax", act_calibration, weight_calibration, rounding, layer_bits;
    BitFlags bits;
    int threads = 0;
    double percentile = 0;
    bool per_channel = false, symmetric = false, bias_correction = false;
    int64_t calibration = 1024;
  };
  auto f = std::make_shared<Flags>();
  f->data.dataset.clear();
  add_data_flags(*cmd, f->data);
  add_threads_flag(*cmd, f->threads);
  cmd->add_option("--model", f->model, "float model file")->required();
  cmd->add_option("--out", f->out, "quantized model file to write")->required();
  add_bit_flags(*cmd, f->bits);
  cmd->add_option("--method", f->method,
                  "preset: minmax, percentile, mse, kl, mse_pc, gptq, adaround, best, loss_aware (flags below override it)")
      ->capture_default_str();
  cmd->add_option("--calibration", f->act_calibration, "activation ranges: minmax, percentile, mse, kl, output_mse");
  cmd->add_option("--weight-calibration", f->weight_calibration, "weight ranges: minmax, mse or output_mse");
  cmd->add_option("--percentile", f->percentile, "percentile P for percentile calibration "
                  "(implies --calibration percentile)")->check(CLI::Range(50.0, 100.0));
  cmd->add_flag("--per-channel", f->per_channel, "weights: one range per output channel");
  cmd->add_flag("--symmetric", f->symmetric, "weights: symmetric range [-a, a]");
  cmd->add_flag("--bias-correction", f->bias_correction, "fold each layer's mean output error "
                "into its bias");
  cmd->add_option("--rounding", f->rounding, "weight rounding: nearest, gptq or adaround");
  cmd->add_option("--layer-bits", f->layer_bits, "weight:act bits per Linear layer, e.g. 8:8,4:4,8:8");
  add_calibration_flag(*cmd, f->calibration);
  return [f] {
    apply_threads(f->threads);
    const int weight_bits = f->bits.weight();
    const int act_bits = f->bits.act();
    QuantOptions options = preset_options(f->method, weight_bits ? weight_bits : 8,
                                          act_bits ? act_bits : 8);
    apply_quantize_flags(*f, options);
    if ((!weight_bits || !act_bits) && options.layer_weight_bits.empty())
      throw Error("--bits (or both --weight-bits and --act-bits, or --layer-bits) is required");
    ensure_writable_dir(parent_dir(f->out), "--out");
    const Model model = load_model(f->model);
    check_quantizable(model, f->model);
    const Dataset data = load_data_for(f->data, model.metadata, f->model, shape_numel(model.output_shape()));
    const int64_t count = std::min<int64_t>(f->calibration, data.train.count);
    const Tensor calibration = normalized_images(data.train, data.mean, data.std, 0, count);
    const QuantPlan plan = plan_quantization(model, calibration, options);
    const QuantizedModel quantized = QuantizedModel::build(model, plan);
    quantized.save(f->out);
    const auto float_bytes = std::filesystem::file_size(f->model);
    const auto quantized_bytes = std::filesystem::file_size(f->out);
    std::printf("wrote %s: %d-bit weights, %d-bit activations (first layer; %s), %lld bytes of packed "
                "weights; file %llu bytes vs float %llu bytes (%.1fx smaller); calibrated on %s\n",
                f->out.c_str(), quantized.weight_bits(), quantized.act_bits(), options.method.c_str(),
                static_cast<long long>(quantized.weight_bytes()),
                static_cast<unsigned long long>(quantized_bytes),
                static_cast<unsigned long long>(float_bytes),
                static_cast<double>(float_bytes) / static_cast<double>(quantized_bytes),
                describe_split(data, Split::train, SplitPart::first, count).c_str());
    return 0;
  };
}

Action add_infer_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("infer", "predict the class of each image (IDX file or PNGs)");
  struct Flags {
    std::string model;
    std::vector<std::string> inputs;
    int top = 3;
    int64_t limit = 20;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model", f->model, "quantized model file")->required();
  cmd->add_option("--top", f->top, "probabilities to show per image")->check(CLI::Range(1, 10));
  cmd->add_option("--limit", f->limit, "images of an IDX file to show")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_option("inputs", f->inputs, "an IDX images file, or 8-bit grayscale PNG files")
      ->required();
  return [f] {
    const QuantizedModel model = QuantizedModel::load(f->model);
    const Shape& shape = model.input_shape();
    const int64_t height = shape.size() >= 2 ? shape[shape.size() - 2] : 1;
    const int64_t width = shape.back();
    ImageSet images;
    int64_t idx_count = 0;  // images in the IDX file
    std::vector<std::string> names;
    const bool png = f->inputs.front().size() > 4 &&
                     f->inputs.front().compare(f->inputs.front().size() - 4, 4, ".png") == 0;
    if (png) {
      if (model.input_size() != height * width)
        throw Error(f->model + ": PNG input needs a one-channel model, this one takes " +
                    shape_string(shape));
      images = read_png_images(f->inputs, height, width);
      names = f->inputs;
    } else {
      if (f->inputs.size() != 1) throw Error("give one IDX file, or PNG files");
      const IdxImages idx = read_idx_images(f->inputs.front());
      if (idx.rows * idx.cols != model.input_size())
        throw Error(f->inputs.front() + ": images are " + std::to_string(idx.rows) + "x" +
                    std::to_string(idx.cols) + ", the model expects " +
                    std::to_string(model.input_size()) + " pixels");
      idx_count = idx.count;
      images.count = std::min(idx.count, f->limit);
      images.height = idx.rows;
      images.width = idx.cols;
      images.pixels.assign(idx.pixels.begin(), idx.pixels.begin() + images.count * idx.rows * idx.cols);
      for (int64_t i = 0; i < images.count; ++i) names.push_back("image " + std::to_string(i));
    }
    // The per-image lines name each image by file or index; this line, beside the data lines
    // other commands print on stderr, says which images those are and whose model it is.
    const std::string trained_on = model.metadata.is_object()
                                       ? model.metadata.value("dataset", "an unrecorded dataset")
                                       : "an unrecorded dataset";
    if (png)
      std::fprintf(stderr, "images: %zu PNG files; model trained on %s\n",
                   f->inputs.size(), trained_on.c_str());
    else
      std::fprintf(stderr, "images: first %lld of %lld in %s; model trained on %s\n",
                   static_cast<long long>(images.count), static_cast<long long>(idx_count),
                   f->inputs.front().c_str(), trained_on.c_str());
    const int64_t classes = model.num_classes();
    std::vector<int32_t> logits(images.count * classes);
    model.logits(images.pixels.data(), images.count, logits.data());
    const Tensor log_probs = model.log_probabilities(logits.data(), images.count);
    for (int64_t i = 0; i < images.count; ++i) {
      std::vector<int> order(classes);
      for (int c = 0; c < classes; ++c) order[c] = c;
      const int32_t* row = logits.data() + i * classes;
      std::stable_sort(order.begin(), order.end(), [row](int a, int b) { return row[a] > row[b]; });
      std::printf("%s: class %d", names[i].c_str(), order[0]);
      for (int t = 0; t < std::min<int>(f->top, classes); ++t)
        std::printf("%s%d %.1f%%", t ? ", " : "  (", order[t],
                    100 * std::exp(log_probs[i * classes + order[t]]));
      std::printf(")\n");
    }
    return 0;
  };
}

}  // namespace lowbit::cli
