// Checksum-valid hostile model files (issue 14, part 1): valid files with one field edited and the
// CRC recomputed, as anyone can. Each must end in one lowbit::Error line naming the file and the
// field, before any large allocation and without undefined behaviour.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <tuple>

#include "lowbit/error.h"
#include "lowbit/model_file.h"
#include "lowbit/quantize.h"
#include "lowbit/quantized_model.h"
#include "lowbit/train.h"
#include "model_fixtures.h"
#include "util/container.h"

namespace lowbit {
namespace {

using Json = nlohmann::json;

std::string temp_path(const std::string& name) {
  std::filesystem::create_directories(LOWBIT_TEST_TMP);
  return std::string(LOWBIT_TEST_TMP) + "/hostile_" + name;
}

Model float_model(int64_t classes = 3) {
  Model model = Model::from_description(Model::fc_nn_description({1, 4, 4}, classes));
  model.init(5);
  model.metadata = {{"dataset", "toy"}, {"mean", {0.5}}, {"std", {0.25}}};
  return model;
}

QuantizedModel quantized_model(const Model& model, int bits = 4) {
  const ImageSet images = testing_models::random_images(32, 3);
  const Tensor calibration = normalized_images(images, {0.5f}, {0.25f}, 0, images.count);
  return QuantizedModel::build(model, plan_quantization(model, calibration, preset_options("minmax", bits, bits)));
}

// The valid files every test edits, written once per process.
const std::string& valid_lbm() {
  static const std::string path = [] {
    const std::string p = temp_path("valid.lbm");
    save_model(float_model(), p);
    return p;
  }();
  return path;
}
const std::string& valid_lbq() {
  static const std::string path = [] {
    const std::string p = temp_path("valid.lbq");
    quantized_model(float_model()).save(p);
    return p;
  }();
  return path;
}

// `valid` with `edit` applied to its decoded container, encoded again with consistent blob sizes
// and a valid CRC.
std::string edited(const std::string& valid, const std::string& name, const std::function<void(Container&)>& edit) {
  Container c = read_container(valid, "");
  edit(c);
  const std::string path = temp_path(name);
  const std::string bytes = encode_container(std::move(c));
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::string with_field(const std::string& valid, const std::string& name, const std::string& pointer,
                       const Json& value) {
  return edited(valid, name, [&](Container& c) { c.header[Json::json_pointer(pointer)] = value; });
}

// `load` must refuse with one line naming the file and containing `words`.
void expect_refused(const std::function<void()>& load, const std::string& path, const std::string& words) {
  try {
    load();
    ADD_FAILURE() << "no error for " << path << " (" << words << ")";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(path, 0), 0u) << message;
    EXPECT_NE(message.find(words), std::string::npos) << "expected \"" << words << "\": " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(message.find("json.exception"), std::string::npos) << message;
  }
}
void expect_lbm_refused(const std::string& path, const std::string& words) {
  expect_refused([&] { load_model(path); }, path, words);
}
void expect_lbq_refused(const std::string& path, const std::string& words) {
  expect_refused([&] { QuantizedModel::load(path); }, path, words);
}

TEST(HostileFiles, ValidFilesLoad) {
  EXPECT_NO_THROW(load_model(valid_lbm()));
  EXPECT_NO_THROW(QuantizedModel::load(valid_lbq()));
  // An edit that changes nothing keeps the file valid: the tests below fail on their edit alone.
  EXPECT_NO_THROW(QuantizedModel::load(edited(valid_lbq(), "same.lbq", [](Container&) {})));
  EXPECT_NO_THROW(load_model(edited(valid_lbm(), "same.lbm", [](Container&) {})));
}

// 1. Fewer model outputs than the data has classes: refused before any work, float and integer.
TEST(HostileFiles, ClassCountMustCoverTheLabels) {
  const Model two_classes = float_model(2);
  const QuantizedModel quantized = quantized_model(two_classes);
  ImageSet images = testing_models::random_images(300, 4);  // labels 0..2
  try {
    quantized.evaluate(images);
    ADD_FAILURE() << "evaluated a 2-class model on labels up to 2";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has 2 outputs (classes), but the data has label 2"), std::string::npos)
        << e.what();
  }
  const Tensor x = normalized_images(images, {0.5f}, {0.25f}, 0, images.count);
  EXPECT_THROW(evaluate(two_classes, x, images.labels), Error);
  TrainOptions options;
  options.epochs = 1;
  Model trainee = two_classes.clone();
  EXPECT_THROW(train(trainee, x, images.labels, options), Error);
  // evaluate_with knows the classes only from the forward pass: still refused, without UB.
  EXPECT_THROW(evaluate_with(
                   [&](const Tensor& batch, Tensor& log_probs) {
                     Activations a;
                     log_probs = two_classes.forward(batch, a);
                   },
                   x, images.labels),
               Error);
  // Labels within the outputs: fine.
  for (uint8_t& label : images.labels) label %= 2;
  EXPECT_NO_THROW(quantized.evaluate(images));
  EXPECT_NO_THROW(evaluate(two_classes, x, images.labels));
}

// 2 and 3. Every dimension positive, every product overflow-checked and within the limits.
TEST(HostileFiles, ShapesMustBePositiveAndWithinLimits) {
  EXPECT_THROW(shape_numel({3, -6148914691236516944LL}), Error);
  EXPECT_THROW(shape_numel({int64_t{1} << 40, int64_t{1} << 40}), Error);
  EXPECT_EQ(shape_numel({0, 5}), 0);
  const std::vector<Json> shapes = {Json{3, -6148914691236516944LL}, Json{1, -28, -28}, Json{0}, Json{-1},
                                    Json::array(), Json{1, 1, 1, 1, 1}, Json{65536, 65536, 65536},
                                    Json{28.0, 28}, Json{"28"}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    SCOPED_TRACE(shapes[i].dump());
    expect_lbm_refused(with_field(valid_lbm(), "shape" + std::to_string(i) + ".lbm", "/description/input_shape",
                                  shapes[i]),
                       "\"input_shape\"");
    expect_lbq_refused(with_field(valid_lbq(), "shape" + std::to_string(i) + ".lbq", "/input_shape", shapes[i]),
                       "\"input_shape\"");
  }
  // Item 3: input shape [0] or [-1] with an empty weight blob.
  for (const Json& shape : {Json{0}, Json{-1}}) {
    const std::string path = edited(valid_lbq(), "empty_blob.lbq", [&](Container& c) {
      c.header["input_shape"] = shape;
      c.blobs[1].clear();
    });
    expect_lbq_refused(path, "\"input_shape\"");
  }
  // Layer sizes that do not chain, or exceed the kernels' K limit.
  expect_lbq_refused(with_field(valid_lbq(), "wide.lbq", "/layers/0/in_features", 32769), "\"in_features\"");
  expect_lbq_refused(with_field(valid_lbq(), "chain.lbq", "/layers/1/in_features", 63), "\"in_features\"");
}

// 4. Numbers are read exactly: the JSON type, the range, no narrowing, no float for an integer.
TEST(HostileFiles, NumbersAreReadWithTheirTypeAndRange) {
  const std::vector<std::pair<std::string, Json>> lbq_edits = {
      {"/layers/0/weight_bits", 1e10},          {"/layers/0/weight_bits", 4294967300LL},
      {"/layers/0/weight_bits", 4.0},           {"/layers/0/weight_bits", "4"},
      {"/layers/0/out_features", 1e30},         {"/layers/0/input_zero_point", 4294967298LL},
      {"/layers/0/in_features", 16.9},          {"/layers/0/acc_shift", 25},
      {"/layers/0/act_bits", nullptr},          {"/layers/0/output_zero_point", 18446744073709551615ULL},
      {"/layers/2/out_bits", 4},                {"/channels", 0},
      {"/channels", 1e39},                      {"/layers/0/weight_coding", 1},
  };
  for (size_t i = 0; i < lbq_edits.size(); ++i) {
    const auto& [pointer, value] = lbq_edits[i];
    SCOPED_TRACE(pointer + " = " + value.dump());
    const std::string field = "\"" + pointer.substr(pointer.rfind('/') + 1) + "\"";
    expect_lbq_refused(with_field(valid_lbq(), "number" + std::to_string(i) + ".lbq", pointer, value), field);
  }
  const std::vector<std::tuple<std::string, Json, std::string>> lbm_edits = {
      {"/description/layers/0/out_features", 1e30, "\"out_features\""},
      {"/description/layers/0/out_features", 64.5, "\"out_features\""},
      {"/description/layers/0/out_features", 18446744073709551615ULL, "\"out_features\""},
      // Not narrowed to 16 (2^32 + 16): compared as it is.
      {"/description/layers/0/in_features", 4294967312LL, "in_features 4294967312 does not match the 16"},
  };
  for (size_t i = 0; i < lbm_edits.size(); ++i) {
    const auto& [pointer, value, words] = lbm_edits[i];
    SCOPED_TRACE(pointer + " = " + value.dump());
    expect_lbm_refused(with_field(valid_lbm(), "number" + std::to_string(i) + ".lbm", pointer, value), words);
  }
  // Float fields of descriptions: finite and in range, never a float-cast overflow.
  Json description = {{"input_shape", {4}},
                      {"layers", {{{"kind", "linear"}, {"out_features", 3}}, {{"kind", "dropout"}, {"p", 1e39}}}}};
  EXPECT_THROW(Model::from_description(description), Error);
  description["layers"][1]["p"] = 0.25;
  EXPECT_NO_THROW(Model::from_description(description));
}

// Peak resident memory of this process so far, in MiB.
double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// 5. Sizes a header declares are checked against the bytes present before anything is allocated.
TEST(HostileFiles, DeclaredSizesAreCheckedBeforeAllocation) {
  valid_lbm();
  valid_lbq();
  const double before = peak_rss_mib();
  // Small .lbm files whose descriptions ask for 4096 * 4096 * 64 parameters (4 GiB, past the limit
  // of one layer) and for 1024 * 1024 * 64 (256 MiB, within it, but not in the file).
  const std::string huge_input = with_field(valid_lbm(), "huge_input.lbm", "/description/input_shape", {4096, 4096});
  EXPECT_LT(std::filesystem::file_size(huge_input), 16384u);
  expect_lbm_refused(huge_input, "too large");
  const std::string big_input = with_field(valid_lbm(), "big_input.lbm", "/description/input_shape", {1024, 1024});
  expect_lbm_refused(big_input, "parameter values");
  // A graph description whose layers together need more than the blobs hold.
  const std::string wide = with_field(valid_lbm(), "wide.lbm", "/description/layers/0/out_features", 1 << 20);
  expect_lbm_refused(wide, "parameter values");
  // A .lbq layer declaring 32768 x 32768 weights with the small blobs of the valid file.
  const std::string big_layer = edited(valid_lbq(), "big_layer.lbq", [](Container& c) {
    c.header["input_shape"] = {32768};
    c.header["layers"][0]["in_features"] = 32768;
    c.header["layers"][0]["out_features"] = 32768;
  });
  expect_lbq_refused(big_layer, "bytes, expected");
  // Few parameters, huge activations: 8192 channels of 28x28 per sample would make evaluation
  // hold 256 x 25 MiB at a time.
  const Json wide_conv = {{"input_shape", {1, 28, 28}},
                          {"layers", {{{"kind", "conv2d"}, {"out_channels", 8192}, {"kernel", 1}},
                                      {{"kind", "flatten"}}, {{"kind", "linear"}, {"out_features", 10}}}}};
  try {
    Model::from_description(wide_conv);
    ADD_FAILURE() << "built a model of 6.4M activation values per sample";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("values per sample"), std::string::npos) << e.what();
  }
  EXPECT_LT(peak_rss_mib() - before, 256.0) << "a hostile size was allocated";
}

// 6. Metadata of the wrong type is a clean error, in both kinds of file.
TEST(HostileFiles, MetadataOfTheWrongTypeIsAnError) {
  const std::vector<std::pair<std::string, Json>> edits = {
      {"/metadata", 5},          {"/metadata", "mnist"},     {"/metadata/dataset", 7},
      {"/metadata/mean", 0.5},   {"/metadata/mean", {1e39}}, {"/metadata/std", {0.0}},
      {"/metadata/std", {"x"}},  {"/metadata/mean", {0.1, 0.2}},
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    const auto& [pointer, value] = edits[i];
    SCOPED_TRACE(pointer + " = " + value.dump());
    expect_lbm_refused(with_field(valid_lbm(), "metadata" + std::to_string(i) + ".lbm", pointer, value), "\"metadata\"");
    expect_lbq_refused(with_field(valid_lbq(), "metadata" + std::to_string(i) + ".lbq", pointer, value), "\"metadata\"");
  }
  // Header fields of the wrong type anywhere: never the JSON library's text.
  expect_lbm_refused(with_field(valid_lbm(), "kind.lbm", "/kind", 5), "not a float model");
  expect_lbm_refused(with_field(valid_lbm(), "description.lbm", "/description", 5), "description");
  expect_lbm_refused(with_field(valid_lbm(), "layer_kind.lbm", "/description/layers/0/kind", 5), "kind");
  expect_lbq_refused(with_field(valid_lbq(), "layers.lbq", "/layers", 5), "\"layers\"");
  expect_lbq_refused(with_field(valid_lbq(), "layer.lbq", "/layers/0", 5), "layer 0");
}

// 7. Scales finite and positive in their ranges; the accumulator bound proved from stored fields.
TEST(HostileFiles, ScalesAndTheAccumulatorBoundAreValidated) {
  for (const Json& scale : {Json(1e39), Json(-1.0), Json(0.0), Json(1e-40), Json("1")}) {
    SCOPED_TRACE(scale.dump());
    expect_lbq_refused(with_field(valid_lbq(), "logit_scale.lbq", "/logit_scale", scale), "\"logit_scale\"");
    expect_lbq_refused(with_field(valid_lbq(), "input_scale.lbq", "/layers/1/input_scale", scale), "\"input_scale\"");
  }
  // The logit scale is the last layer's output scale: anything else is a different model.
  const QuantizedModel valid = QuantizedModel::load(valid_lbq());
  const double logit_scale = valid.summary()["logit_scale"].get<double>();
  expect_lbq_refused(with_field(valid_lbq(), "logit_scale2.lbq", "/logit_scale", logit_scale * 2), "logit_scale");
  // Weight scales (a float blob): NaN, infinite, negative.
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), -0.5f}) {
    const std::string path = edited(valid_lbq(), "weight_scale.lbq", [&](Container& c) {
      std::memcpy(c.blobs[1 + 5].data(), &bad, sizeof bad);
    });
    expect_lbq_refused(path, "weight scale");
  }
  // Biases of +-(2^31 - 1) with acc_shift 24: the bound 2^24 * K * 15 * 15 + |bias| breaks int32.
  const std::string biased = edited(valid_lbq(), "bias.lbq", [](Container& c) {
    c.header["layers"][0]["acc_shift"] = 24;
    std::string& bias = c.blobs[1 + 1];
    for (size_t k = 0; k + 4 <= bias.size(); k += 4) {
      const int32_t v = (k / 4) % 2 ? INT32_MAX : -INT32_MAX;
      std::memcpy(bias.data() + k, &v, 4);
    }
  });
  expect_lbq_refused(biased, "int32 accumulator");
  // A bias just inside the bound loads; one past it does not (layer 0: K = 16, 4 x 4 bits, S from the file).
  const Container original = read_container(valid_lbq(), "quantized");
  const int64_t s = original.header["layers"][0]["acc_shift"].get<int64_t>();
  const int64_t limit = INT32_MAX - (int64_t{1} << s) * 16 * 15 * 15;
  for (const int64_t bias : {limit, limit + 1}) {
    const std::string path = edited(valid_lbq(), "bias_edge.lbq", [&](Container& c) {
      const int32_t v = static_cast<int32_t>(bias);
      std::memcpy(c.blobs[1 + 1].data(), &v, 4);
    });
    if (bias == limit)
      EXPECT_NO_THROW(QuantizedModel::load(path));
    else
      expect_lbq_refused(path, "int32 accumulator");
  }
  // Extreme requantization: a shift (or output scale) that disagrees with the stored scales.
  const std::string shifted = edited(valid_lbq(), "shift.lbq", [](Container& c) {
    int32_t e;
    std::memcpy(&e, c.blobs[1 + 4].data(), 4);
    e = std::min(e + 20, 30);
    std::memcpy(c.blobs[1 + 4].data(), &e, 4);
  });
  expect_lbq_refused(shifted, "multiplier");
  const double output_scale = original.header["layers"][0]["output_scale"].get<double>();
  expect_lbq_refused(with_field(valid_lbq(), "output_scale.lbq", "/layers/0/output_scale", output_scale * 1e6),
                     "multiplier");
}

}  // namespace
}  // namespace lowbit
