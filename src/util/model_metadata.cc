// Validation of the metadata keys lowbit reads back from model files.
#include "util/model_metadata.h"

#include "lowbit/error.h"
#include "util/json_field.h"

namespace lowbit {

void check_model_metadata(const nlohmann::json& metadata, const std::string& path) {
  const JsonObject fields(metadata, path + ": \"metadata\"");
  for (const char* key : {"dataset", "name"})
    if (fields.has(key)) fields.string(key);
  size_t channels = 0;
  for (const char* key : {"mean", "std"}) {
    if (!fields.has(key)) continue;
    const nlohmann::json& values = fields.at(key);
    if (!values.is_array() || values.empty() || values.size() > 1024)
      throw Error(fields.field(key) + " must be an array of 1..1024 numbers");
    if (channels && values.size() != channels)
      throw Error(path + ": \"metadata\": \"mean\" and \"std\" differ in length");
    channels = values.size();
    // Normalized pixels (p / 255 - mean) / std stay finite in float for these ranges.
    const bool std = std::string(key) == "std";
    for (const auto& v : values) json_number(v, fields.field(key), std ? 1e-6 : -1e6, 1e6);
  }
}

}  // namespace lowbit
