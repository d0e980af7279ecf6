// `lowbit quantize` writes an integer model; `lowbit infer` classifies a user's own images.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli_common.h"
#include "cli_progress.h"
#include "commands.h"
#include "float_model_input.h"
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
    if (colon == std::string::npos) throw FlagError("--layer-bits: \"" + pair + "\" is not W:A");
    try {
      options.layer_weight_bits.push_back(std::stoi(pair.substr(0, colon)));
      options.layer_act_bits.push_back(std::stoi(pair.substr(colon + 1)));
    } catch (const std::exception&) {
      throw FlagError("--layer-bits: \"" + pair + "\" is not W:A");
    }
  }
}

// The library's parse error, as a usage error naming the flag.
template <class Parse>
auto parse_flag(const std::string& flag, const std::string& value, Parse parse) {
  try {
    return parse(value);
  } catch (const Error& e) {
    throw FlagError(flag + ": " + e.what());
  }
}

template <class Flags>
void apply_quantize_flags(const Flags& f, QuantOptions& options) {
  if (!f.act_calibration.empty())
    options.calibration = parse_flag("--calibration", f.act_calibration, parse_calibration);
  if (!f.weight_calibration.empty())
    options.weight_calibration =
        parse_flag("--weight-calibration", f.weight_calibration, parse_calibration);
  if (f.percentile > 0) {
    options.percentile = f.percentile;
    options.calibration = Calibration::percentile;
  }
  options.per_channel |= f.per_channel;
  options.symmetric |= f.symmetric;
  options.bias_correction |= f.bias_correction;
  if (!f.rounding.empty()) options.rounding = parse_flag("--rounding", f.rounding, parse_rounding);
  if (!f.layer_bits.empty()) parse_layer_bits(f.layer_bits, options);
}

}  // namespace

Action add_quantize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("quantize", "quantize a float model into an integer model file");
  struct Flags {
    DataFlags data;
    std::string model, out, method = "minmax", act_calibration, weight_calibration, rounding, layer_bits;
    std::string bias_grid = "fine";
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
                  "preset (flags below override it): " + method_names())
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
  cmd->add_option("--bias-grid", f->bias_grid,
                  "fine: biases up to 2^16 finer than s_x*s_w (most precise); onnx: at most 2^(8-b) finer, "
                  "what ONNX Runtime can add, so `lowbit export` runs the engine's exact model there")
      ->capture_default_str()->check(CLI::IsMember({"fine", "onnx"}));
  cmd->add_option("--layer-bits", f->layer_bits, "weight:act bits per Linear layer, e.g. 8:8,4:4,8:8");
  add_calibration_flag(*cmd, f->calibration);
  return [f] {
    apply_threads(f->threads);
    check_method(f->method, "--method");
    const int weight_bits = f->bits.weight();
    const int act_bits = f->bits.act();
    QuantOptions options = preset_options(f->method, weight_bits ? weight_bits : 8,
                                          act_bits ? act_bits : 8);
    apply_quantize_flags(*f, options);
    options.onnx_bias_grid = f->bias_grid == "onnx";
    if ((!weight_bits || !act_bits) && options.layer_weight_bits.empty())
      throw FlagError("--bits (or both --weight-bits and --act-bits, or --layer-bits) is required");
    ensure_writable_dir(parent_dir(f->out), "--out");
    const Model model = load_float_model(f->model, f->data.dataset);
    check_quantizable(model, f->model);
    const Dataset data = load_data_for(f->data, model.metadata, f->model, shape_numel(model.output_shape()));
    const int64_t count = std::min<int64_t>(f->calibration, data.train.count);
    const Tensor calibration = normalized_images(data.train, data.mean, data.std, 0, count);
    StepProgress progress("quantize " + options.method + ": layers and trials");
    const QuantPlan plan = plan_quantization(model, calibration, options,
                                             [&progress](size_t d, size_t t) { progress(d, t); });
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

namespace {

// The datasets whose images are light strokes on a black background.
bool light_on_dark(const std::string& dataset) {
  return dataset == "mnist" || dataset == "mnist-10k" || dataset == "fashion-mnist";
}

// Mean of the outermost ring of pixels (two wide) of a [C, H, W] picture, 0..255.
double border_mean(const Picture& p) {
  const int64_t ring = std::min<int64_t>(2, std::min(p.height, p.width) / 2 + 1);
  double sum = 0;
  int64_t count = 0;
  for (int64_t c = 0; c < p.channels; ++c)
    for (int64_t y = 0; y < p.height; ++y)
      for (int64_t x = 0; x < p.width; ++x)
        if (y < ring || x < ring || y >= p.height - ring || x >= p.width - ring) {
          sum += p.pixels[(c * p.height + y) * p.width + x];
          ++count;
        }
  return count ? sum / static_cast<double>(count) : 0;
}

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

Action add_infer_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("infer", "predict the class of each image (IDX file or PNGs)");
  struct Flags {
    std::string model;
    std::vector<std::string> inputs;
    int top = 3, threads = 0;
    int64_t limit = 20;
    bool resize = false, invert = false, json = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model", f->model, "quantized model file")->required();
  cmd->add_option("--top", f->top, "probabilities to show per image")->check(CLI::Range(1, 10));
  cmd->add_option("--limit", f->limit, "images of an IDX file to show")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_flag("--resize", f->resize,
                "scale PNGs of another size to the model's input (area filter; aspect not kept)");
  cmd->add_flag("--invert", f->invert, "use 255 - pixel: for dark digits on a light background");
  cmd->add_flag("--json", f->json, "print the predictions as JSON");
  add_threads_flag(*cmd, f->threads);
  add_quiet_flag(*cmd);
  cmd->add_option("inputs", f->inputs,
                  "one IDX images file (raw or gzip), or PNG files (any colour type and depth); "
                  "told apart by their first bytes")
      ->required();
  return [f] {
    apply_threads(f->threads);
    const QuantizedModel model = QuantizedModel::load(f->model);
    const Shape& shape = model.input_shape();
    const int64_t height = shape.size() >= 2 ? shape[shape.size() - 2] : 1;
    const int64_t width = shape.back();
    const int64_t channels = model.input_size() / (height * width);
    const std::string trained_on = model.metadata.is_object()
                                       ? model.metadata.value("dataset", "an unrecorded dataset")
                                       : "an unrecorded dataset";
    ImageSet images;
    images.channels = channels;
    images.height = height;
    images.width = width;
    int64_t idx_count = 0;  // images in the IDX file
    int failed = 0;         // PNG files reported and left out
    std::vector<std::string> names;
    const bool png = f->inputs.size() > 1 || is_png_file(f->inputs.front());
    if (png) {
      if (channels != 1 && channels != 3)
        throw Error(f->model + ": PNG input needs a gray or RGB model, this one takes " +
                    shape_string(shape));
      // One bad file is reported on its own line and the others still run; the exit code says
      // that something failed.
      for (const std::string& path : f->inputs) {
        try {
          if (!is_png_file(path))
            throw Error(path + ": not a PNG file");
          Picture picture = read_png(path, channels);
          if (picture.height != height || picture.width != width) {
            if (!f->resize)
              throw Error(path + ": " + std::to_string(picture.width) + "x" +
                          std::to_string(picture.height) + " pixels, the model takes " +
                          std::to_string(width) + "x" + std::to_string(height) +
                          "; --resize scales it");
            picture = resize_area(picture, height, width);
          }
          if (f->invert)
            for (uint8_t& p : picture.pixels) p = static_cast<uint8_t>(255 - p);
          const double border = border_mean(picture);
          if (light_on_dark(trained_on) && border > 127)
            std::fprintf(stderr, "lowbit: note: %s looks inverted: its border is bright (mean %.0f "
                         "of 255)%s, while %s images are light on a dark background%s\n",
                         path.c_str(), border, f->invert ? " after --invert" : "",
                         trained_on.c_str(), f->invert ? "; leave out --invert" : "; try --invert");
          images.pixels.insert(images.pixels.end(), picture.pixels.begin(), picture.pixels.end());
          images.labels.push_back(0);
          ++images.count;
          names.push_back(path);
        } catch (const Error& e) {
          std::fprintf(stderr, "lowbit: error: %s\n", e.what());
          ++failed;
        }
      }
      if (images.count == 0) return 1;  // each failure has had its line
    } else {
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
    if (quiet()) {
    } else if (png) {
      std::fprintf(stderr, "images: %lld of %zu PNG files; model trained on %s\n",
                   static_cast<long long>(images.count), f->inputs.size(), trained_on.c_str());
    } else if (images.count < idx_count) {
      std::fprintf(stderr, "images: showing the first %s of %s in %s (--limit N for more); model "
                   "trained on %s\n", with_commas(images.count).c_str(),
                   with_commas(idx_count).c_str(), f->inputs.front().c_str(), trained_on.c_str());
    } else {
      std::fprintf(stderr, "images: all %s in %s; model trained on %s\n",
                   with_commas(idx_count).c_str(), f->inputs.front().c_str(), trained_on.c_str());
    }
    const int64_t classes = model.num_classes();
    std::vector<int32_t> logits(images.count * classes);
    if (images.count) model.logits(images.pixels.data(), images.count, logits.data());
    const Tensor log_probs = images.count ? model.log_probabilities(logits.data(), images.count)
                                          : Tensor();
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t i = 0; i < images.count; ++i) {
      std::vector<int> order(classes);
      for (int c = 0; c < classes; ++c) order[c] = c;
      const int32_t* row = logits.data() + i * classes;
      std::stable_sort(order.begin(), order.end(), [row](int a, int b) { return row[a] > row[b]; });
      const int top = std::min<int>(f->top, static_cast<int>(classes));
      if (f->json) {
        nlohmann::json best = nlohmann::json::array();
        for (int t = 0; t < top; ++t)
          best.push_back({{"class", order[t]},
                          {"probability", std::exp(log_probs[i * classes + order[t]])}});
        rows.push_back({{"image", names[i]}, {"class", order[0]}, {"top", best}});
        continue;
      }
      std::printf("%s: class %d", names[i].c_str(), order[0]);
      for (int t = 0; t < top; ++t)
        std::printf("%s%d %.1f%%", t ? ", " : "  (", order[t],
                    100 * std::exp(log_probs[i * classes + order[t]]));
      std::printf(")\n");
    }
    if (f->json) {
      nlohmann::json out = {{"model", f->model}, {"trained_on", trained_on}, {"predictions", rows}};
      if (png) out["failed"] = failed;
      else out["total"] = idx_count;
      std::printf("%s\n", out.dump(2).c_str());
    }
    return failed ? 1 : 0;
  };
}

}  // namespace lowbit::cli
