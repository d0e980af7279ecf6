// Saving and loading float models: versioned, checksummed, written atomically.
#pragma once

#include <string>

#include "lowbit/model.h"

namespace lowbit {

void save_model(const Model& model, const std::string& path);
// Validates everything (checksum, version, description, parameter sizes, finite values).
// Throws lowbit::Error naming `path` on any problem.
Model load_model(const std::string& path);

// "float" or "quantized", after validating the container (checksum, version).
std::string model_file_kind(const std::string& path);

}  // namespace lowbit
