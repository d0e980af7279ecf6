// The Python module `lowbit`: quantized models on the integer engine, float models, quantization
// and sweeps, with NumPy arrays in and out. Images are uint8 pixels [N, C, H, W] (or [N, C*H*W]).
#include <omp.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/dataset.h"
#include "lowbit/error.h"
#include "lowbit/model.h"
#include "lowbit/model_file.h"
#include "lowbit/quantize.h"
#include "lowbit/quantized_model.h"
#include "lowbit/sweep.h"
#include "lowbit/train.h"
#include "lowbit/version.h"

namespace py = pybind11;

// Model holds its layers by unique_ptr: movable, and copyable only by clone(). Its implicit copy
// constructor is declared but cannot be instantiated, which pybind11 must be told.
template <>
struct pybind11::detail::is_copy_constructible<lowbit::Model> : std::false_type {};

namespace lowbit {
namespace {

// ---- JSON (metadata, descriptions, reports) to and from Python objects ----

py::object to_python(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::boolean: return py::bool_(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return py::int_(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: return py::int_(j.get<uint64_t>());
    case nlohmann::json::value_t::number_float: return py::float_(j.get<double>());
    case nlohmann::json::value_t::string: return py::str(j.get_ref<const std::string&>());
    case nlohmann::json::value_t::array: {
      py::list list;
      for (const auto& item : j) list.append(to_python(item));
      return std::move(list);
    }
    case nlohmann::json::value_t::object: {
      py::dict dict;
      for (const auto& [key, value] : j.items()) dict[py::str(key)] = to_python(value);
      return std::move(dict);
    }
    default: return py::none();
  }
}

nlohmann::json to_json(py::handle h) {
  if (h.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(h)) return h.cast<bool>();
  if (py::isinstance<py::int_>(h)) return h.cast<int64_t>();
  if (py::isinstance<py::float_>(h)) return h.cast<double>();
  if (py::isinstance<py::str>(h)) return h.cast<std::string>();
  if (py::isinstance<py::dict>(h)) {
    nlohmann::json object = nlohmann::json::object();
    for (const auto& [key, value] : h.cast<py::dict>()) object[py::str(key).cast<std::string>()] = to_json(value);
    return object;
  }
  if (py::isinstance<py::list>(h) || py::isinstance<py::tuple>(h)) {
    nlohmann::json array = nlohmann::json::array();
    for (py::handle item : h) array.push_back(to_json(item));
    return array;
  }
  if (py::hasattr(h, "tolist")) return to_json(h.attr("tolist")());  // NumPy arrays and scalars
  throw py::type_error("cannot store a " + py::str(py::type::of(h)).cast<std::string>() + " as JSON");
}

// ---- arrays ----

std::string shape_text(const py::array& a) {
  std::string text = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) text += (i ? ", " : "") + std::to_string(a.shape(i));
  return text + (a.ndim() == 1 ? ",)" : ")");
}

// A batch of images as the engine reads them: C-contiguous uint8, [N, *input_shape] or
// [N, input_size]. The caller's array itself when it already is one (no copy).
struct Images {
  py::array_t<uint8_t, py::array::c_style> array;
  int64_t count = 0;
  const uint8_t* data() const { return array.data(); }
};

Images as_images(py::handle object, const Shape& input_shape, const char* what) {
  py::array any = py::array::ensure(object);
  if (!any) throw py::type_error(std::string(what) + " must be a NumPy array of uint8 pixels");
  if (!any.dtype().is(py::dtype::of<uint8_t>()))
    throw py::type_error(std::string(what) + " must hold uint8 pixels (0..255), not " +
                         py::str(any.dtype()).cast<std::string>() + "; convert with .astype(numpy.uint8)");
  const int64_t features = shape_numel(input_shape);
  bool fits = any.ndim() == 2 && any.shape(1) == features;
  if (any.ndim() == static_cast<py::ssize_t>(input_shape.size()) + 1) {
    fits = true;
    for (size_t i = 0; i < input_shape.size(); ++i) fits = fits && any.shape(i + 1) == input_shape[i];
  }
  if (!fits)
    throw py::value_error(std::string(what) + " of shape " + shape_text(any) + " do not fit the model's input " +
                          shape_string(input_shape) + ": expected (N, " + shape_string(input_shape).substr(1, shape_string(input_shape).size() - 2) +
                          ") or (N, " + std::to_string(features) + ")");
  Images images;
  images.array = py::array_t<uint8_t, py::array::c_style>::ensure(any);  // copies only if strided
  images.count = any.shape(0);
  return images;
}

std::vector<uint8_t> as_labels(py::handle object, int64_t count) {
  const auto labels = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(object);
  if (!labels || labels.ndim() != 1 || labels.shape(0) != count)
    throw py::value_error("labels must be a 1-D array of " + std::to_string(count) + " class indices");
  std::vector<uint8_t> out(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t label = labels.at(i);
    if (label < 0 || label > 255) throw py::value_error("label " + std::to_string(label) + " is not in 0..255");
    out[i] = static_cast<uint8_t>(label);
  }
  return out;
}

// An ImageSet copy of a batch, for the functions that take one (evaluation, normalization).
ImageSet image_set(const Images& images, const Shape& input_shape, std::vector<uint8_t> labels = {}) {
  ImageSet set;
  set.count = images.count;
  set.channels = input_shape.size() >= 3 ? input_shape[input_shape.size() - 3] : 1;
  set.height = input_shape.size() >= 2 ? input_shape[input_shape.size() - 2] : 1;
  set.width = shape_numel(input_shape) / (set.channels * set.height);
  set.pixels.assign(images.data(), images.data() + images.count * shape_numel(input_shape));
  set.labels = labels.empty() ? std::vector<uint8_t>(static_cast<size_t>(images.count), 0) : std::move(labels);
  return set;
}

// A NumPy array that owns `values` (moved to the heap): no copy on the way out.
template <class T, class Vector>
py::array_t<T> owning_array(Vector&& values, std::vector<py::ssize_t> shape) {
  auto* heap = new std::decay_t<Vector>(std::forward<Vector>(values));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::decay_t<Vector>*>(p); });
  return py::array_t<T>(shape, heap->data(), owner);
}

py::array_t<float> tensor_array(Tensor&& t) {
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  auto* heap = new Tensor(std::move(t));
  py::capsule owner(heap, [](void* p) { delete static_cast<Tensor*>(p); });
  return py::array_t<float>(shape, heap->data(), owner);
}

std::vector<float> metadata_channels(const nlohmann::json& metadata, const char* key) {
  if (!metadata.contains(key) || !metadata[key].is_array())
    throw Error(std::string("the model's metadata has no normalization \"") + key +
                "\"; pass normalized float32 images instead");
  return metadata[key].get<std::vector<float>>();
}

// Images for the float model: uint8 pixels normalized with the model's own mean and std, or
// float32 values taken as already normalized. Either way [count, input_size].
Tensor float_inputs(const Model& model, py::handle object, const char* what) {
  py::array any = py::array::ensure(object);
  if (any && any.dtype().is(py::dtype::of<float>())) {
    const auto values = py::array_t<float, py::array::c_style>::ensure(any);
    if (values.ndim() < 1 || values.shape(0) == 0 || values.size() % values.shape(0) != 0 ||
        values.size() / values.shape(0) != model.input_size())
      throw py::value_error(std::string(what) + " of shape " + shape_text(any) + " do not fit the model's input " +
                            shape_string(model.input_shape()));
    Tensor t({values.shape(0), model.input_size()});
    std::copy_n(values.data(), values.size(), t.data());
    return t;
  }
  const Images images = as_images(object, model.input_shape(), what);
  const ImageSet set = image_set(images, model.input_shape());
  return normalized_images(set, metadata_channels(model.metadata, "mean"),
                           metadata_channels(model.metadata, "std"), 0, set.count);
}

py::array_t<int64_t> argmax_rows(const int32_t* logits, int64_t rows, int64_t classes) {
  py::array_t<int64_t> out(rows);
  int64_t* classes_out = out.mutable_data();
  for (int64_t i = 0; i < rows; ++i) {
    const int32_t* row = logits + i * classes;
    classes_out[i] = std::max_element(row, row + classes) - row;
  }
  return out;
}

py::dict evaluation_dict(const Evaluation& e) {
  py::dict d;
  d["accuracy"] = e.accuracy;
  d["loss"] = e.loss;
  d["count"] = e.count;
  return d;
}

// ---- the functions behind the module ----

py::array_t<int32_t> quantized_logits(const QuantizedModel& model, py::handle images_object) {
  const Images images = as_images(images_object, model.input_shape(), "images");
  py::array_t<int32_t> logits({static_cast<py::ssize_t>(images.count), static_cast<py::ssize_t>(model.num_classes())});
  int32_t* out = logits.mutable_data();
  {
    py::gil_scoped_release release;  // the engine's OpenMP threads run without the GIL
    model.logits(images.data(), images.count, out);
  }
  return logits;
}

py::array_t<int64_t> quantized_predict(const QuantizedModel& model, py::handle images_object) {
  const Images images = as_images(images_object, model.input_shape(), "images");
  const int64_t classes = model.num_classes();
  std::vector<int32_t> logits(static_cast<size_t>(images.count * classes));
  {
    py::gil_scoped_release release;
    model.logits(images.data(), images.count, logits.data());
  }
  return argmax_rows(logits.data(), images.count, classes);
}

QuantizedModel quantize(const Model& model, py::handle calibration_object, std::optional<int> bits,
                        std::optional<int> weight_bits, std::optional<int> act_bits,
                        const std::string& method, const std::string& bias_grid) {
  const int w = weight_bits.value_or(bits.value_or(0)), a = act_bits.value_or(bits.value_or(0));
  if (w < 1 || w > 8 || a < 1 || a > 8)
    throw py::value_error("bits (or weight_bits and act_bits) must be given, each in 1..8");
  if (bias_grid != "fine" && bias_grid != "onnx") throw py::value_error("bias_grid must be \"fine\" or \"onnx\"");
  QuantOptions options = preset_options(method, w, a);
  options.onnx_bias_grid = bias_grid == "onnx";
  const Tensor calibration = float_inputs(model, calibration_object, "calibration images");
  py::gil_scoped_release release;
  return QuantizedModel::build(model, plan_quantization(model, calibration, options));
}

py::object sweep(const Model& model, py::handle calibration_object, py::handle test_object,
                 py::handle labels_object, std::vector<int> bits, std::vector<std::string> methods,
                 int64_t calibration_count) {
  const Tensor calibration = float_inputs(model, calibration_object, "calibration images");
  const Images test = as_images(test_object, model.input_shape(), "test images");
  const ImageSet test_set = image_set(test, model.input_shape(), as_labels(labels_object, test.count));
  const Tensor test_normalized = float_inputs(model, test_object, "test images");
  SweepOptions options;
  options.bits = std::move(bits);
  options.methods = std::move(methods);
  options.calibration_count = calibration_count;
  SweepResult result;
  {
    py::gil_scoped_release release;
    result = run_sweep(model, calibration, test_set, test_normalized, options);
  }
  result.dataset = model.metadata.value("dataset", "");
  result.data_source = "NumPy arrays";
  result.train_size = calibration.dim(0);
  return to_python(result.to_json());
}

py::dict dataset_dict(const std::string& name, std::optional<std::string> data_dir) {
  DataOptions options;
  options.data_dir = data_dir;
  Dataset data;
  {
    py::gil_scoped_release release;
    data = load_dataset(name, options);
  }
  py::dict d;
  d["name"] = data.name;
  d["source"] = data.source;
  d["full"] = data.full;
  d["description"] = data.description;
  d["class_names"] = data.class_names;
  d["mean"] = data.mean;
  d["std"] = data.std;
  for (auto [prefix, set] : {std::pair{"train", &data.train}, std::pair{"test", &data.test}}) {
    const std::vector<py::ssize_t> shape{set->count, set->channels, set->height, set->width};
    d[(std::string(prefix) + "_images").c_str()] = owning_array<uint8_t>(std::move(set->pixels), shape);
    d[(std::string(prefix) + "_labels").c_str()] = owning_array<uint8_t>(std::move(set->labels), {set->count});
  }
  return d;
}

}  // namespace
}  // namespace lowbit

PYBIND11_MODULE(lowbit, m) {
  using namespace lowbit;
  m.doc() = "lowbit: quantize small networks to 1-8 bits and run them on an integer engine";
  m.attr("__version__") = LOWBIT_VERSION_STRING;
  py::register_exception<Error>(m, "Error", PyExc_RuntimeError);

  py::class_<QuantizedModel>(m, "QuantizedModel",
                             "An integer-only model (.lbq): packed b-bit weights, int32 logits.")
      .def_static("load", &QuantizedModel::load, py::arg("path"), py::call_guard<py::gil_scoped_release>(),
                  "Loads and validates a .lbq file.")
      .def_static(
          "from_bytes",
          [](py::bytes data) {
            const std::string_view bytes = data;
            return QuantizedModel::load_from_memory(bytes.data(), bytes.size());
          },
          py::arg("data"), "Loads a model from the bytes of a .lbq file.")
      .def("save", &QuantizedModel::save, py::arg("path"))
      .def("logits", &quantized_logits, py::arg("images"),
           "images: uint8 [N, C, H, W] or [N, C*H*W] -> int32 logits [N, classes].")
      .def("predict", &quantized_predict, py::arg("images"),
           "images: uint8 [N, C, H, W] or [N, C*H*W] -> int64 classes [N].")
      .def(
          "log_probabilities",
          [](const QuantizedModel& model, py::array_t<int32_t, py::array::c_style | py::array::forcecast> logits) {
            if (logits.ndim() != 2 || logits.shape(1) != model.num_classes())
              throw py::value_error("logits must be [N, " + std::to_string(model.num_classes()) + "]");
            return tensor_array(model.log_probabilities(logits.data(), logits.shape(0)));
          },
          py::arg("logits"), "Dequantized log-softmax of int32 logits: float32 [N, classes].")
      .def(
          "evaluate",
          [](const QuantizedModel& model, py::handle images, py::handle labels) {
            const Images batch = as_images(images, model.input_shape(), "images");
            const ImageSet set = image_set(batch, model.input_shape(), as_labels(labels, batch.count));
            Evaluation e;
            {
              py::gil_scoped_release release;
              e = model.evaluate(set);
            }
            return evaluation_dict(e);
          },
          py::arg("images"), py::arg("labels"), "Accuracy and mean NLL: {'accuracy', 'loss', 'count'}.")
      .def("summary", [](const QuantizedModel& model) { return to_python(model.summary()); })
      .def_property_readonly("metadata", [](const QuantizedModel& model) { return to_python(model.metadata); })
      .def_property_readonly("input_shape", [](const QuantizedModel& model) { return py::tuple(py::cast(model.input_shape())); })
      .def_property_readonly("input_size", &QuantizedModel::input_size)
      .def_property_readonly("num_classes", &QuantizedModel::num_classes)
      .def_property_readonly("weight_bits", &QuantizedModel::weight_bits)
      .def_property_readonly("act_bits", &QuantizedModel::act_bits)
      .def_property_readonly("weight_bytes", &QuantizedModel::weight_bytes)
      .def_property_readonly("macs_per_image", &QuantizedModel::macs_per_image)
      .def_property_readonly("kernel", [](const QuantizedModel&) { return QuantizedModel::kernel_name(); })
      .def_property_readonly("input_kernel", [](const QuantizedModel&) { return QuantizedModel::input_kernel_name(); })
      .def("__repr__", [](const QuantizedModel& model) {
        return "<lowbit.QuantizedModel " + shape_string(model.input_shape()) + " -> " +
               std::to_string(model.num_classes()) + ", " + std::to_string(model.weight_bits()) + "-bit weights, " +
               std::to_string(model.act_bits()) + "-bit activations>";
      });

  py::class_<Model>(m, "Model", "A float model (.lbm): layers built from a JSON description.")
      .def_static("load", &load_model, py::arg("path"), py::call_guard<py::gil_scoped_release>(),
                  "Loads and validates a .lbm file.")
      .def_static(
          "from_description", [](py::handle description) { return Model::from_description(to_json(description)); },
          py::arg("description"),
          "{'input_shape': [1, 28, 28], 'layers': [{'kind': 'linear', 'out_features': 64}, {'kind': 'relu'}, ...]}")
      .def_static(
          "fc_nn",
          [](std::vector<int64_t> input_shape, int64_t classes) {
            return Model::from_description(Model::fc_nn_description(input_shape, classes));
          },
          py::arg("input_shape") = std::vector<int64_t>{1, 28, 28}, py::arg("classes") = 10,
          "The FC_NN of the study, uninitialized: call init(seed).")
      .def("init", &Model::init, py::arg("seed"), "PyTorch's default initialization from one seed.")
      .def("save", [](const Model& model, const std::string& path) { save_model(model, path); }, py::arg("path"))
      .def(
          "log_probabilities",
          [](const Model& model, py::handle images) {
            const Tensor x = float_inputs(model, images, "images");
            Activations activations;
            {
              py::gil_scoped_release release;
              model.forward(x, activations);
            }
            return tensor_array(std::move(activations.outputs.back()));
          },
          py::arg("images"),
          "images: uint8 pixels (normalized with the model's mean and std) or normalized float32 -> "
          "float32 log-probabilities [N, classes].")
      .def(
          "predict",
          [](const Model& model, py::handle images) {
            const Tensor x = float_inputs(model, images, "images");
            const std::vector<uint8_t> labels(static_cast<size_t>(x.dim(0)), 0);
            Evaluation e;
            {
              py::gil_scoped_release release;
              e = evaluate(model, x, labels);
            }
            std::vector<int64_t> classes(e.predictions.begin(), e.predictions.end());
            return owning_array<int64_t>(std::move(classes), {x.dim(0)});
          },
          py::arg("images"), "Classes [N] of uint8 pixels or normalized float32 images.")
      .def(
          "evaluate",
          [](const Model& model, py::handle images, py::handle labels) {
            const Tensor x = float_inputs(model, images, "images");
            const std::vector<uint8_t> y = as_labels(labels, x.dim(0));
            Evaluation e;
            {
              py::gil_scoped_release release;
              e = evaluate(model, x, y);
            }
            return evaluation_dict(e);
          },
          py::arg("images"), py::arg("labels"), "Accuracy and mean NLL: {'accuracy', 'loss', 'count'}.")
      .def(
          "tensors",
          [](Model& model) {
            py::dict nodes;
            for (size_t i = 0; i < model.node_count(); ++i) {
              Layer& layer = model.layer(i);
              py::list parameters, buffers;
              for (const Tensor& t : layer.parameters()) parameters.append(tensor_array(Tensor(t)));
              for (const Tensor& t : layer.buffers()) buffers.append(tensor_array(Tensor(t)));
              if (parameters.empty() && buffers.empty()) continue;
              py::dict entry;
              entry["parameters"] = parameters;
              entry["buffers"] = buffers;
              nodes[py::str(model.node_name(i))] = entry;
            }
            return nodes;
          },
          "Copies of every node's tensors: {node name: {'parameters': [...], 'buffers': [...]}}, float32 "
          "arrays in the layer's order (conv2d: weight [out, in/groups, kh, kw], bias; batch_norm: "
          "gamma, beta and buffers running mean, running variance; linear: weight [out, in], bias).")
      .def_property_readonly("description", [](const Model& model) { return to_python(model.description()); })
      .def_property(
          "metadata", [](const Model& model) { return to_python(model.metadata); },
          [](Model& model, py::handle metadata) { model.metadata = to_json(metadata); })
      .def_property_readonly("input_shape", [](const Model& model) { return py::tuple(py::cast(model.input_shape())); })
      .def_property_readonly("input_size", &Model::input_size)
      .def_property_readonly("parameter_count", &Model::parameter_count)
      .def("__repr__", [](const Model& model) {
        return "<lowbit.Model " + shape_string(model.input_shape()) + ", " +
               std::to_string(model.parameter_count()) + " parameters>";
      });

  m.def("load", &QuantizedModel::load, py::arg("path"), py::call_guard<py::gil_scoped_release>(),
        "Loads a quantized model (.lbq) for the integer engine; the same as QuantizedModel.load.");
  m.def("quantize", &quantize, py::arg("model"), py::arg("calibration"), py::kw_only(),
        py::arg("bits") = std::nullopt, py::arg("weight_bits") = std::nullopt, py::arg("act_bits") = std::nullopt,
        py::arg("method") = "best", py::arg("bias_grid") = "fine",
        "Quantizes a float Model into a QuantizedModel. calibration: uint8 images (normalized with the "
        "model's mean and std) or normalized float32 [N, features]. method: one of methods(). "
        "bias_grid \"onnx\": biases on ONNX Runtime's s_x*s_w grid, for an exact ONNX export.");
  m.def("sweep", &sweep, py::arg("model"), py::arg("calibration"), py::arg("test_images"), py::arg("test_labels"),
        py::kw_only(), py::arg("bits") = std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8},
        py::arg("methods") = std::vector<std::string>{"minmax"}, py::arg("calibration_count") = 1024,
        "Every method at every bit width through the integer engine and the simulation: a dict with the "
        "fields of sweep.json (docs/sweep-json.md).");
  m.def("methods", &quantization_methods, "The quantization presets quantize() and sweep() accept.");
  m.def("load_dataset", &dataset_dict, py::arg("name") = "mnist", py::arg("data_dir") = std::nullopt,
        "Loads a dataset as lowbit finds it (docs/data.md): a dict of uint8 [N, C, H, W] images, labels, "
        "mean, std, name and source.");
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("the thread count must be at least 1");
    omp_set_num_threads(n);
  }, py::arg("count"), "Threads of the engine and of quantization (OpenMP) for calls from this thread.");
  m.def("get_num_threads", [] { return omp_get_max_threads(); });
}
