// The metadata object of a model file: free-form, except the keys lowbit itself reads.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace lowbit {

// Checks `metadata` as read from `path`: a JSON object whose "dataset" and "name", if present, are
// strings and whose "mean" and "std", if present, are arrays of 1..1024 finite numbers of equal
// length (std positive). Throws lowbit::Error naming the file and the field; after it, code that
// reads those keys cannot meet a value of the wrong type.
void check_model_metadata(const nlohmann::json& metadata, const std::string& path);

}  // namespace lowbit
