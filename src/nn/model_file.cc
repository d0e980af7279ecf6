// Float model files: the description and metadata as JSON, each parameter tensor as a blob.
#include "lowbit/model_file.h"

#include <cmath>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "util/container.h"

namespace lowbit {

void save_model(const Model& model, const std::string& path) {
  Container container;
  container.header = {{"kind", "float"},
                      {"description", model.description()},
                      {"metadata", model.metadata}};
  for (size_t i = 0; i < model.layer_count(); ++i)
    for (const Tensor& p : model.layer(i).parameters())
      container.blobs.push_back(floats_to_blob(p.data(), p.size()));
  write_file_atomic(path, encode_container(std::move(container)));
}

Model load_model(const std::string& path) {
  Container container = read_container(path, "float");
  Model model = [&] {
    try {
      return Model::from_description(container.header.at("description"));
    } catch (const Error& e) {
      throw Error(path + ": " + e.what());
    } catch (const nlohmann::json::exception&) {
      throw Error(path + ": header has no model description");
    }
  }();
  if (container.header.contains("metadata") && container.header["metadata"].is_object())
    model.metadata = container.header["metadata"];
  size_t blob = 0;
  for (size_t i = 0; i < model.layer_count(); ++i) {
    for (Tensor& p : model.layer(i).parameters()) {
      if (blob >= container.blobs.size()) throw Error(path + ": missing parameter tensors");
      blob_to_floats(container.blobs[blob++], p.data(), p.size(), path);
      for (float v : p.values())
        if (!std::isfinite(v)) throw Error(path + ": parameter holds a non-finite value");
    }
  }
  if (blob != container.blobs.size()) throw Error(path + ": unexpected extra tensors");
  return model;
}

std::string model_file_kind(const std::string& path) {
  const Container container = read_container(path, "");
  if (!container.header.contains("kind") || !container.header["kind"].is_string())
    throw Error(path + ": header names no model kind");
  return container.header["kind"];
}

}  // namespace lowbit
