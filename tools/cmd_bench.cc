// `lowbit bench`: images per second and effective GOP/s of a quantized model on the integer engine.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>

#include "cli_common.h"
#include "commands.h"
#include "lowbit/error.h"
#include "lowbit/quantized_model.h"

namespace lowbit::cli {
namespace {

std::vector<int64_t> parse_list(const std::string& text, const std::string& flag, int64_t min,
                                int64_t max) {
  std::vector<int64_t> values;
  for (const std::string& part : CLI::detail::split(text, ',')) {
    char* end = nullptr;
    const long long v = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || v < min || v > max)
      throw FlagError(flag + " " + text + ": expected a comma-separated list of numbers in " +
                      std::to_string(min) + ".." + std::to_string(max));
    values.push_back(v);
  }
  return values;
}

// Per step: op, output shape, multiply-adds, and its share of the timed pass's wall time per image.
// A step's clock runs on the thread that runs it (a chunk's steps on one thread; a batch within one
// chunk on the calling thread, whose GEMM may use the others), so the shares of thread time are
// what the steps cost; spread over the wall time per image they sum to it.
nlohmann::json layer_rows(const std::vector<EngineStep>& steps, const std::vector<double>& seconds,
                          double wall_seconds, double images) {
  double total = 0;
  for (double s : seconds) total += s;
  const double us_per_image = images > 0 ? 1e6 * wall_seconds / images : 0;
  nlohmann::json rows = nlohmann::json::array();
  for (size_t s = 0; s < steps.size(); ++s) {
    const double share = total > 0 && s < seconds.size() ? seconds[s] / total : 0;
    const double us = share * us_per_image;
    rows.push_back({{"node", steps[s].node},
                    {"op", steps[s].op},
                    {"shape", steps[s].shape},
                    {"macs", steps[s].macs},
                    {"us_per_image", us},
                    {"percent", 100 * share},
                    {"gops", us > 0 ? 2.0 * static_cast<double>(steps[s].macs) / (us * 1e3) : 0.0}});
  }
  return nlohmann::json{{"images_per_s", us_per_image > 0 ? 1e6 / us_per_image : 0.0}, {"steps", rows}};
}

void print_layers(int64_t batch, int64_t threads, const nlohmann::json& row) {
  const nlohmann::json& layers = row["layers"];
  std::printf("\nsteps at batch %lld, %lld threads (timed pass: %.0f images/s)\n%6s  %-12s %-16s %12s %10s %7s %8s\n",
              static_cast<long long>(batch), static_cast<long long>(threads), layers["images_per_s"].get<double>(),
              "node", "op", "output", "MACs/image", "us/image", "%", "GOP/s");
  for (const nlohmann::json& s : layers["steps"]) {
    std::string shape = "[";
    for (const auto& d : s["shape"]) shape += (shape.size() > 1 ? ", " : "") + std::to_string(d.get<int64_t>());
    shape += "]";
    const int node = s["node"].get<int>();
    const int64_t macs = s["macs"].get<int64_t>();
    std::printf("%6s  %-12s %-16s %12lld %10.3f %7.1f", node < 0 ? "-" : std::to_string(node).c_str(),
                s["op"].get<std::string>().c_str(), shape.c_str(), static_cast<long long>(macs),
                s["us_per_image"].get<double>(), s["percent"].get<double>());
    if (macs > 0) std::printf(" %8.1f\n", s["gops"].get<double>());
    else std::printf(" %8s\n", "-");
  }
}

}  // namespace

Action add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "time a quantized model on the integer engine");
  struct Flags {
    std::string model, batches = "1,64,10000", threads = "1,2";
    std::string input = "test";
    double seconds = 1.0;
    int repeat = 1;
    bool json = false, layers = false;
    DataFlags data;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model", f->model, "quantized model file")->required();
  cmd->add_option("--batch", f->batches, "batch sizes")->capture_default_str();
  cmd->add_option("--threads", f->threads,
                  "thread counts to time, comma-separated, each 0..1024; 0 = all cores")
      ->capture_default_str();
  cmd->add_option("--seconds", f->seconds, "time per configuration")
      ->capture_default_str()->check(CLI::Range(0.01, 600.0));
  cmd->add_option("--repeat", f->repeat,
                  "time every configuration this many times, taking turns, and report the median and the "
                  "range (this VM's speed drifts by 20 % or more from one second to the next)")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--input", f->input,
                  "images to time: 'test' (the model's test set, repeated to fill the batch) or 'random' "
                  "(uniform random pixels: no pixel is background, the sparse first layer's worst case)")
      ->capture_default_str()
      ->check(CLI::IsMember({"test", "random"}));
  f->data.dataset.clear();  // default: the dataset the model was trained on
  add_data_flags(*cmd, f->data);
  cmd->add_flag("--layers", f->layers,
                "also time every step (pixel lookup, im2col, each operator) with per-step clocks, in a second "
                "pass per configuration, and print where the time goes");
  cmd->add_flag("--json", f->json, "print results as JSON");
  return [f] {
    const auto batches = parse_list(f->batches, "--batch", 1, 1 << 20);
    auto threads = parse_list(f->threads, "--threads", 0, 1024);
    for (int64_t& t : threads)
      if (t == 0) t = omp_get_num_procs();
    const QuantizedModel model = QuantizedModel::load(f->model);
    const int64_t features = model.input_size(), classes = model.num_classes();
    const double ops_per_image = 2.0 * static_cast<double>(model.macs_per_image());
    // The pixels every batch is cut from: the model's test images, or random ones.
    std::vector<uint8_t> source;
    std::string input_name = "random pixels";
    if (f->input == "test") {
      const Dataset data = load_data_for(f->data, model.metadata, f->model);
      if (data.test.image_size() != features)
        throw Error("--input test: " + data.name + " images have " + std::to_string(data.test.image_size()) +
                    " pixels, the model expects " + std::to_string(features));
      source = data.test.pixels;
      input_name = data.name + " test images";
    } else {
      std::mt19937_64 rng(1);
      source.resize(static_cast<size_t>(10000 * features));
      for (auto& p : source) p = static_cast<uint8_t>(rng());
    }
    const std::vector<EngineStep> steps = model.engine_steps();
    struct Config {
      int64_t threads, batch;
      std::vector<double> images_per_s;  // one per repeat
      // --layers: per step, seconds summed over threads and repeats; the timed pass's wall clock.
      std::vector<double> step_seconds;
      double layers_seconds = 0, layers_images = 0;
    };
    std::vector<Config> configs;
    for (int64_t t : threads)
      for (int64_t batch : batches) configs.push_back({t, batch, {}});
    // Repeats take turns over the configurations, so a slow spell of the machine hits them alike.
    for (int r = 0; r < f->repeat; ++r)
      for (Config& c : configs) {
        omp_set_num_threads(static_cast<int>(c.threads));
        std::vector<uint8_t> pixels(static_cast<size_t>(c.batch * features));
        for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = source[i % source.size()];
        std::vector<int32_t> logits(c.batch * classes);
        model.logits(pixels.data(), c.batch, logits.data());  // warm up
        int64_t runs = 0;
        const auto start = std::chrono::steady_clock::now();
        double elapsed = 0;
        do {
          model.logits(pixels.data(), c.batch, logits.data());
          ++runs;
          elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        } while (elapsed < f->seconds);
        c.images_per_s.push_back(static_cast<double>(runs * c.batch) / elapsed);
        if (!f->layers) continue;
        runs = 0;
        const auto layers_start = std::chrono::steady_clock::now();
        do {
          model.timed_logits(pixels.data(), c.batch, logits.data(), c.step_seconds);
          ++runs;
          elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - layers_start).count();
        } while (elapsed < f->seconds);
        c.layers_seconds += elapsed;
        c.layers_images += static_cast<double>(runs * c.batch);
      }
    nlohmann::json rows = nlohmann::json::array();
    const std::string kernels =
        model.is_graph() ? std::string("CNN graph: ") + model.ops_kernel_name() + " + " + model.kernel_name()
                         : std::string(model.input_kernel_name()) + " (first layer) and " + model.kernel_name();
    if (!f->json)
      std::printf("%s: %d-bit weights, %d-bit activations, kernels %s, on %s%s\n"
                  "%8s %8s %14s %12s %10s%s\n",
                  f->model.c_str(), model.weight_bits(), model.act_bits(), kernels.c_str(), input_name.c_str(),
                  f->repeat > 1 ? (", median of " + std::to_string(f->repeat) + " runs").c_str() : "", "batch",
                  "threads", "images/s", "us/image", "GOP/s*", f->repeat > 1 ? "   images/s min-max" : "");
    for (Config& c : configs) {
      std::vector<double> sorted = c.images_per_s;
      std::sort(sorted.begin(), sorted.end());
      const size_t n = sorted.size();
      const double median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
      rows.push_back({{"batch", c.batch},
                      {"threads", c.threads},
                      {"images_per_s", median},
                      {"images_per_s_min", sorted.front()},
                      {"images_per_s_max", sorted.back()},
                      {"images_per_s_runs", c.images_per_s},
                      {"us_per_image", 1e6 / median},
                      {"gops", median * ops_per_image / 1e9}});
      if (f->layers) rows.back()["layers"] = layer_rows(steps, c.step_seconds, c.layers_seconds, c.layers_images);
      if (f->json) continue;
      std::printf("%8lld %8lld %14.0f %12.3f %10.1f", static_cast<long long>(c.batch),
                  static_cast<long long>(c.threads), median, 1e6 / median, median * ops_per_image / 1e9);
      if (f->repeat > 1) std::printf("   %.0f-%.0f", sorted.front(), sorted.back());
      std::printf("\n");
    }
    if (f->layers && !f->json)
      for (size_t i = 0; i < configs.size(); ++i) print_layers(configs[i].batch, configs[i].threads, rows[i]);
    if (!f->json && model.is_graph())
      std::printf("* effective: 2 x %lld multiply-adds of the convolutions and Linear layers per image x images/s\n",
                  static_cast<long long>(model.macs_per_image()));
    else if (!f->json)
      std::printf("* effective: 2 x %lld multiply-adds of the dense layers per image x images/s; the first\n"
                  "  layer skips background pixels, so on real images this can pass the CPU's peak.\n",
                  static_cast<long long>(model.macs_per_image()));
    if (f->json)
      std::printf("%s\n", nlohmann::json({{"model", f->model},
                                          {"kernel", model.kernel_name()},
                                          // A graph's first step maps pixels to codes (the ops kernel).
                                          {"input_kernel", model.is_graph() ? model.ops_kernel_name()
                                                                            : model.input_kernel_name()},
                                          {"ops_kernel", model.is_graph() ? model.ops_kernel_name() : ""},
                                          {"input", input_name},
                                          {"weight_bits", model.weight_bits()},
                                          {"act_bits", model.act_bits()},
                                          {"seconds_per_run", f->seconds},
                                          {"repeat", f->repeat},
                                          {"results", rows}})
                              .dump(2)
                              .c_str());
    return 0;
  };
}

}  // namespace lowbit::cli
