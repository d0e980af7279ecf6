// Float model files: the description and metadata as JSON, each parameter tensor as a blob.
#include "lowbit/model_file.h"

#include <cmath>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "util/container.h"
#include "util/json_field.h"
#include "util/model_metadata.h"

namespace lowbit {

namespace {

// What a version-1 lowbit reads: a chain ("layers") of these kinds, without buffers.
bool version_one_model(const nlohmann::json& description) {
  if (!description.contains("layers")) return false;
  for (const auto& layer : description["layers"]) {
    const std::string kind = layer["kind"];
    if (kind != "linear" && kind != "relu" && kind != "log_softmax") return false;
  }
  return true;
}

Model load_model_checked(const std::string& path);

}  // namespace

void save_model(const Model& model, const std::string& path) {
  Container container;
  container.header = {{"kind", "float"},
                      {"description", model.description()},
                      {"metadata", model.metadata}};
  // Graphs and the layers added with them are version 3, so that an older lowbit says "upgrade"
  // instead of failing on the description; FC_NN files stay version 1, byte for byte as before.
  container.version = version_one_model(container.header["description"]) ? 1 : 3;
  for (size_t i = 0; i < model.layer_count(); ++i) {
    for (const Tensor& p : model.layer(i).parameters())
      container.blobs.push_back(floats_to_blob(p.data(), p.size()));
    for (const Tensor& b : model.layer(i).buffers())
      container.blobs.push_back(floats_to_blob(b.data(), b.size()));
  }
  write_file_atomic(path, encode_container(std::move(container)));
}

Model load_model(const std::string& path) {
  // The boundary: a field check that was missed still ends as one line naming the file.
  try {
    return load_model_checked(path);
  } catch (const nlohmann::json::exception&) {
    throw Error(path + ": header has a field of the wrong type");
  }
}

namespace {

Model load_model_checked(const std::string& path) {
  Container container = read_container(path, "float");
  // Every parameter value is 4 bytes of some blob, so the blobs present bound what the
  // description may allocate: a small file cannot make lowbit build a large model.
  int64_t values_present = 0;
  for (const std::string& blob : container.blobs) values_present += static_cast<int64_t>(blob.size() / 4);
  const JsonObject header(container.header, path);
  Model model = [&] {
    try {
      return Model::from_description(header.at("description"), values_present);
    } catch (const Error& e) {
      throw Error(path + ": " + e.what());
    }
  }();
  if (header.has("metadata")) {
    check_model_metadata(header.at("metadata"), path);
    model.metadata = header.at("metadata");
  }
  size_t blob = 0;
  auto read = [&](Tensor& t, const char* what) {
    if (blob >= container.blobs.size()) throw Error(path + ": missing " + what + " tensors");
    blob_to_floats(container.blobs[blob++], t.data(), t.size(), path);
    for (float v : t.values())
      if (!std::isfinite(v)) throw Error(path + ": " + what + " holds a non-finite value");
  };
  for (size_t i = 0; i < model.layer_count(); ++i) {
    for (Tensor& p : model.layer(i).parameters()) read(p, "parameter");
    for (Tensor& b : model.layer(i).buffers()) read(b, "buffer");
    // A running variance below zero would make evaluation take a square root of a negative.
    if (model.layer(i).kind() == "batch_norm")
      for (float v : model.layer(i).buffers()[1].values())
        if (v < 0) throw Error(path + ": node \"" + model.node_name(i) + "\" has a negative running variance");
  }
  if (blob != container.blobs.size()) throw Error(path + ": unexpected extra tensors");
  return model;
}

}  // namespace

std::string model_file_kind(const std::string& path) {
  const Container container = read_container(path, "");
  if (!container.header.contains("kind") || !container.header["kind"].is_string())
    throw Error(path + ": header names no model kind");
  return container.header["kind"];
}

}  // namespace lowbit
