// Checked reading of JSON fields: type, range and overflow checks before any conversion.
#include "util/json_field.h"

#include <cmath>
#include <cstdio>

#include "lowbit/error.h"

namespace lowbit {
namespace {

// The value as the file wrote it, shortened, for messages.
std::string shown(const nlohmann::json& value) {
  // Not dumped: a deeply nested value would recurse as deep as it nests.
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

std::string range_text(int64_t lo, int64_t hi) { return std::to_string(lo) + ".." + std::to_string(hi); }

}  // namespace

int64_t json_integer(const nlohmann::json& value, const std::string& what, int64_t lo, int64_t hi) {
  if (!value.is_number_integer())
    throw Error(what + " must be an integer in " + range_text(lo, hi) + ", not " + shown(value));
  // nlohmann keeps integers above INT64_MAX as unsigned; get<int64_t>() would wrap them.
  const bool in_range = value.is_number_unsigned()
                            ? hi >= 0 && value.get<uint64_t>() <= static_cast<uint64_t>(hi) &&
                                  static_cast<int64_t>(value.get<uint64_t>()) >= lo
                            : value.get<int64_t>() >= lo && value.get<int64_t>() <= hi;
  if (!in_range) throw Error(what + " " + shown(value) + " is out of range " + range_text(lo, hi));
  return value.get<int64_t>();
}

double json_number(const nlohmann::json& value, const std::string& what, double lo, double hi) {
  if (!value.is_number()) throw Error(what + " must be a number, not " + shown(value));
  const double v = value.get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    char range[64];
    std::snprintf(range, sizeof range, "[%g, %g]", lo, hi);
    throw Error(what + " " + shown(value) + " is out of range " + range);
  }
  return v;
}

const std::string& json_string(const nlohmann::json& value, const std::string& what) {
  if (!value.is_string()) throw Error(what + " must be a string, not " + shown(value));
  return value.get_ref<const std::string&>();
}

Shape json_shape(const nlohmann::json& value, const std::string& what, size_t max_rank,
                 int64_t max_dimension, int64_t max_total) {
  if (!value.is_array() || value.empty() || value.size() > max_rank)
    throw Error(what + " must be an array of 1.." + std::to_string(max_rank) + " dimensions, not " +
                shown(value));
  Shape shape;
  int64_t total = 1;
  for (const auto& d : value) {
    shape.push_back(json_integer(d, what, 1, max_dimension));
    // Both factors are at most max(max_dimension, max_total), far below 2^31 in every use.
    if (__builtin_mul_overflow(total, shape.back(), &total) || total > max_total)
      throw Error(what + " " + shown(value) + " has more than " + std::to_string(max_total) +
                  " elements");
  }
  return shape;
}

JsonObject::JsonObject(const nlohmann::json& object, std::string where)
    : object_(object), where_(std::move(where)) {
  if (!object_.is_object()) throw Error(where_ + " must be a JSON object, not " + shown(object_));
}

const nlohmann::json& JsonObject::at(const std::string& key) const {
  const auto found = object_.find(key);
  if (found == object_.end()) throw Error(where_ + ": needs a field \"" + key + "\"");
  return *found;
}

bool JsonObject::boolean(const std::string& key) const {
  const nlohmann::json& value = at(key);
  if (!value.is_boolean()) throw Error(field(key) + " must be true or false");
  return value.get<bool>();
}

}  // namespace lowbit
