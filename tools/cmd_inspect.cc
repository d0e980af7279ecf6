// `lowbit inspect`: what a .lbm or .lbq file holds, whether it is intact, and how this CPU would run it.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <span>
#include <vector>

#include "cli_common.h"
#include "commands.h"
#include "kernels/qlinear_impl.h"
#include "lowbit/error.h"
#include "lowbit/layers.h"
#include "lowbit/model_file.h"
#include "lowbit/quantized_model.h"
#include "util/container.h"

namespace lowbit::cli {
namespace {

std::string hex32(uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", v);
  return text;
}

nlohmann::json container_json(const std::string& path, const ContainerFacts& facts) {
  return {{"file", path},
          {"file_bytes", facts.file_bytes},
          {"format_version", facts.version},
          {"kind", facts.header.is_object() ? facts.header.value("kind", "") : ""},
          {"checksum",
           {{"ok", facts.checksum_ok()},
            {"stored", hex32(facts.stored_checksum)},
            {"computed", hex32(facts.computed_checksum)}}}};
}

nlohmann::json cpu_json() {
  return {{"avx2", kernels::cpu_has_avx2()}, {"avx512vnni", kernels::cpu_has_avx512vnni()},
          {"amx", kernels::cpu_has_amx()}};
}

// Per layer of a float model: kind and, for Linear, shapes, parameters, bytes, MACs and ranges.
// Every node: its kind, output shape, and for those with parameters (linear, conv2d, batch_norm)
// their count, bytes, multiply-adds per image and weight range (the first parameter tensor).
nlohmann::json float_layers(const Model& model, int64_t& bytes, int64_t& macs) {
  nlohmann::json layers = nlohmann::json::array();
  for (size_t i = 0; i < model.layer_count(); ++i) {
    const Layer& layer = model.layer(i);
    nlohmann::json entry = {{"kind", layer.kind()}, {"name", model.node_name(i)}, {"shape", model.node_shape(i)}};
    std::vector<Shape> inputs;
    for (int input : model.node_inputs(i))
      inputs.push_back(input == Model::kModelInput ? model.input_shape() : model.node_shape(static_cast<size_t>(input)));
    const std::span<const Tensor> parameters = const_cast<Layer&>(layer).parameters();
    if (!parameters.empty()) {
      int64_t count = 0;
      for (const Tensor& t : parameters) count += t.size();
      const Tensor& w = parameters.front();
      const auto [w_min, w_max] = std::minmax_element(w.values().begin(), w.values().end());
      const int64_t layer_macs = layer.multiply_adds(inputs);
      entry.update({{"parameters", count},
                    {"bytes", 4 * count},
                    {"macs", layer_macs},
                    {"weight_range", {*w_min, *w_max}}});
      if (const auto* linear = dynamic_cast<const Linear*>(&layer)) {
        const auto [b_min, b_max] = std::minmax_element(linear->bias().values().begin(),
                                                        linear->bias().values().end());
        entry.update({{"in_features", w.dim(1)}, {"out_features", w.dim(0)}, {"bias_range", {*b_min, *b_max}}});
      }
      bytes += 4 * count;
      macs += layer_macs;
    }
    layers.push_back(entry);
  }
  return layers;
}

std::string range_text(const nlohmann::json& range) {
  char text[64];
  if (range[0].is_number_integer())
    std::snprintf(text, sizeof text, "%lld..%lld", range[0].get<long long>(), range[1].get<long long>());
  else
    std::snprintf(text, sizeof text, "%.4g..%.4g", range[0].get<double>(), range[1].get<double>());
  return text;
}

void print_header(const nlohmann::json& r) {
  std::printf("file      %s (%lld bytes)\n", r["file"].get<std::string>().c_str(),
              r["file_bytes"].get<long long>());
  std::printf("format    lowbit model container, version %u, %s model\n",
              r["format_version"].get<unsigned>(), r["kind"].get<std::string>().c_str());
  const auto& c = r["checksum"];
  std::printf("checksum  %s (CRC-32 %s%s)\n", c["ok"].get<bool>() ? "ok" : "MISMATCH",
              c["stored"].get<std::string>().c_str(),
              c["ok"].get<bool>() ? "" : (", computed " + c["computed"].get<std::string>()).c_str());
}

void print_metadata(const nlohmann::json& metadata) {
  if (!metadata.is_object()) return;
  for (const auto& [key, value] : metadata.items())
    std::printf("  %-16s %s\n", key.c_str(), value.dump().c_str());
}

void print_float(const nlohmann::json& r) {
  std::printf("input     %s float32 (normalized pixels) -> %lld log-probabilities\n",
              shape_string(r["input_shape"].get<Shape>()).c_str(), r["num_classes"].get<long long>());
  std::printf("kernels   float32 through Eigen (quantize it for the integer engine)\n");
  std::printf("metadata\n");
  print_metadata(r["metadata"]);
  std::printf("layers\n  %2s %-15s %-13s %10s %10s %10s  %s\n", "#", "kind", "shape", "parameters",
              "bytes", "MACs", "weight range");
  for (size_t i = 0; i < r["layers"].size(); ++i) {
    const auto& l = r["layers"][i];
    const std::string shape = l.contains("in_features") ? shape_string({l["out_features"], l["in_features"]})
                                                        : shape_string(l["shape"].get<Shape>());
    if (!l.contains("parameters")) {
      std::printf("  %2zu %-15s %-13s\n", i, l["kind"].get<std::string>().c_str(), shape.c_str());
      continue;
    }
    std::printf("  %2zu %-15s %-13s %10lld %10lld %10lld  %s\n", i, l["kind"].get<std::string>().c_str(),
                shape.c_str(), l["parameters"].get<long long>(), l["bytes"].get<long long>(),
                l["macs"].get<long long>(), range_text(l["weight_range"]).c_str());
  }
  std::printf("total     %lld bytes of float32 parameters, %lld multiply-adds per image\n",
              r["parameter_bytes"].get<long long>(), r["macs_per_image"].get<long long>());
}

void print_quantized(const nlohmann::json& r) {
  std::printf("input     %s uint8 pixels -> %lld int32 logits (scale %.6g)\n",
              shape_string(r["input_shape"].get<Shape>()).c_str(), r["num_classes"].get<long long>(),
              r["logit_scale"].get<double>());
  const auto& k = r["kernels"];
  std::printf("kernels   first layer %s, then %s (this CPU: AVX2 %s, AVX-512 VNNI %s, AMX-INT8 %s)\n",
              k["input"].get<std::string>().c_str(), k["layers"].get<std::string>().c_str(),
              k["cpu"]["avx2"].get<bool>() ? "yes" : "no", k["cpu"]["avx512vnni"].get<bool>() ? "yes" : "no",
              k["cpu"]["amx"].get<bool>() ? "yes" : "no");
  std::printf("metadata\n");
  print_metadata(r["metadata"]);
  std::printf("layers\n  %2s %-11s %-12s %4s %-12s %-19s %-7s %-11s %5s %5s %8s %9s\n", "#", "shape",
              "weights", "acts", "output", "weight scale", "w zp", "input scale", "in zp", "shift",
              "bytes", "MACs");
  for (size_t i = 0; i < r["layers"].size(); ++i) {
    const auto& l = r["layers"][i];
    const std::string shape = shape_string({l["out_features"], l["in_features"]});
    const std::string weights = std::to_string(l["weight_bits"].get<int>()) + "-bit " +
                                l["weight_coding"].get<std::string>();
    std::printf("  %2zu %-11s %-12s %4d %-12s %-19s %-7s %-11.4g %5d %5d %8lld %9lld\n", i, shape.c_str(),
                weights.c_str(), l["act_bits"].get<int>(), l["output"].get<std::string>().c_str(),
                range_text(l["weight_scale"]).c_str(), range_text(l["weight_zero_point"]).c_str(),
                l["input_scale"].get<double>(), l["input_zero_point"].get<int>(), l["acc_shift"].get<int>(),
                l["packed_bytes"].get<long long>() + l["constant_bytes"].get<long long>(),
                l["macs"].get<long long>());
  }
  long long constant_bytes = 0;
  for (const auto& l : r["layers"]) constant_bytes += l["constant_bytes"].get<long long>();
  std::printf("total     %lld bytes of packed weights and %lld of int32 constants (bytes column: "
              "both), %lld multiply-adds per image\n",
              r["weight_bytes"].get<long long>(), constant_bytes, r["macs_per_image"].get<long long>());
}

}  // namespace

Action add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "what a .lbm or .lbq file holds, and whether it is intact");
  struct Flags {
    std::string file;
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("file", f->file, "float (.lbm) or quantized (.lbq) model file")->required();
  cmd->add_flag("--json", f->json, "print the report as JSON");
  return [f] {
    const ContainerFacts facts = examine_container(f->file);
    nlohmann::json report = container_json(f->file, facts);
    // A damaged file is described as far as it can be read, then refused like any other command
    // would refuse it; an intact one is loaded, so every field is validated before it is shown.
    if (!facts.checksum_ok()) {
      if (f->json) std::printf("%s\n", report.dump(2).c_str());
      else if (facts.magic_ok) print_header(report);
      read_container(f->file, "");  // throws the loader's own message
      throw Error(f->file + ": not a lowbit model");
    }
    const std::string kind = model_file_kind(f->file);  // a string, or the loader's error
    if (kind == "float") {
      const Model model = load_model(f->file);
      int64_t bytes = 0, macs = 0;
      report["description"] = model.description();
      report["metadata"] = model.metadata;
      report["input_shape"] = model.input_shape();
      report["num_classes"] = shape_numel(model.output_shape());
      report["layers"] = float_layers(model, bytes, macs);
      report["parameter_bytes"] = bytes;
      report["macs_per_image"] = macs;
      report["kernels"] = {{"float", "eigen"}, {"cpu", cpu_json()}};
    } else if (kind == "quantized") {
      const QuantizedModel model = QuantizedModel::load(f->file);
      const nlohmann::json summary = model.summary();
      report["metadata"] = model.metadata;
      for (const char* key : {"input_shape", "num_classes", "logit_scale", "weight_bytes", "macs_per_image", "layers"})
        report[key] = summary[key];
      report["kernels"] = {{"input", model.input_kernel_name()},
                           {"layers", model.kernel_name()},
                           {"cpu", cpu_json()}};
      if (model.is_graph()) {
        report["nodes"] = summary["nodes"];
        report["kernels"]["operators"] = model.ops_kernel_name();
      }
    } else {
      throw Error(f->file + ": unknown model kind \"" + kind + "\"");
    }
    if (f->json) {
      std::printf("%s\n", report.dump(2).c_str());
    } else {
      print_header(report);
      if (kind == "float") print_float(report);
      else print_quantized(report);
    }
    return 0;
  };
}

}  // namespace lowbit::cli
