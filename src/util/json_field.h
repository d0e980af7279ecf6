// Checked reading of JSON fields from untrusted files: the exact JSON type and range, or a
// one-line lowbit::Error naming the file and the field. Every loader of .lbm and .lbq files and of
// model descriptions reads its numbers through these, never through nlohmann's own conversions
// (which narrow integers silently and overflow on float-to-int casts).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "lowbit/tensor.h"

namespace lowbit {

// `what` names the field in errors, e.g. `model.lbq: layer 2: "weight_bits"`.
// A JSON integer in [lo, hi]: not 784.0, not 1e10, not "8", not 4294967300 for an int32 field.
int64_t json_integer(const nlohmann::json& value, const std::string& what, int64_t lo, int64_t hi);
// A finite JSON number (integer or not) in [lo, hi]; ranges within float's give float fields.
double json_number(const nlohmann::json& value, const std::string& what, double lo, double hi);
// A JSON string.
const std::string& json_string(const nlohmann::json& value, const std::string& what);
// A JSON array of 1..max_rank integers, each in 1..max_dimension, whose product (checked for
// overflow) is at most max_total.
Shape json_shape(const nlohmann::json& value, const std::string& what, size_t max_rank,
                 int64_t max_dimension, int64_t max_total);

// The named fields of one JSON object; `where` starts every error ("model.lbq: layer 2").
class JsonObject {
 public:
  // Throws "<where> must be a JSON object" unless `object` is one.
  JsonObject(const nlohmann::json& object, std::string where);

  bool has(const std::string& key) const { return object_.contains(key); }
  // The value of a required field; throws "<where>: needs a field \"key\"".
  const nlohmann::json& at(const std::string& key) const;
  // `<where>: "key"`, for messages about the field.
  std::string field(const std::string& key) const { return where_ + ": \"" + key + "\""; }
  const std::string& where() const { return where_; }

  int64_t integer(const std::string& key, int64_t lo, int64_t hi) const {
    return json_integer(at(key), field(key), lo, hi);
  }
  double number(const std::string& key, double lo, double hi) const {
    return json_number(at(key), field(key), lo, hi);
  }
  const std::string& string(const std::string& key) const { return json_string(at(key), field(key)); }
  bool boolean(const std::string& key) const;  // a JSON true or false

 private:
  const nlohmann::json& object_;
  std::string where_;
};

}  // namespace lowbit
