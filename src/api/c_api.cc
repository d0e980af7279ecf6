// The C API over QuantizedModel: argument checks, status codes, and no exception past the boundary.
#include "lowbit/c_api.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include "lowbit/error.h"
#include "lowbit/quantized_model.h"
#include "lowbit/version.h"
#include "util/container.h"

struct lowbit_model {
  lowbit::QuantizedModel model;
};

namespace {

thread_local std::string last_error;
thread_local bool message_lost = false;  // storing the message itself ran out of memory

// Records `prefix` + `detail` as this thread's error. Never throws: it runs in catch blocks.
lowbit_status fail(lowbit_status status, const char* prefix, const char* detail = "") noexcept {
  try {
    last_error.assign(prefix);
    last_error.append(detail);
    message_lost = false;
  } catch (...) {
    last_error.clear();
    message_lost = true;
  }
  return status;
}
lowbit_status fail(lowbit_status status, const std::string& message) noexcept {
  return fail(status, message.c_str());
}

// Runs `body` (which returns a status) with the thread's error cleared, turning every exception
// into a status and a message. `bad_input` is the status of a lowbit::Error.
template <class Body>
lowbit_status guarded(lowbit_status bad_input, Body&& body) noexcept {
  last_error.clear();
  message_lost = false;
  try {
    return body();
  } catch (const lowbit::Error& e) {
    return fail(bad_input, e.what());
  } catch (const std::bad_alloc&) {
    return fail(LOWBIT_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(LOWBIT_INTERNAL_ERROR, "internal error: ", e.what());
  } catch (...) {
    return fail(LOWBIT_INTERNAL_ERROR, "internal error: unknown exception");
  }
}

lowbit_status no_model(const char* function) {
  return fail(LOWBIT_INVALID_ARGUMENT, std::string(function) + ": model is NULL");
}

// Checks the sizes of a batch call; returns LOWBIT_OK or a failure naming `function`.
lowbit_status check_batch(const char* function, const lowbit_model* model, const uint8_t* pixels,
                          size_t pixel_count, int64_t batch, const void* out, size_t out_capacity,
                          int64_t out_per_image) {
  if (!model) return no_model(function);
  if (batch < 0) return fail(LOWBIT_INVALID_ARGUMENT, std::string(function) + ": batch is negative");
  const int64_t features = model->model.input_size();
  // Both products fit in int64 for any batch whose pixels fit in memory; larger ones are refused.
  if (batch > INT64_MAX / std::max<int64_t>(features, out_per_image))
    return fail(LOWBIT_INVALID_ARGUMENT, std::string(function) + ": batch is too large");
  if (static_cast<uint64_t>(batch * features) != pixel_count)
    return fail(LOWBIT_INVALID_ARGUMENT,
                std::string(function) + ": " + std::to_string(pixel_count) + " pixels for " +
                    std::to_string(batch) + " images of " + std::to_string(features) +
                    " pixels; expected " + std::to_string(batch * features));
  if (static_cast<uint64_t>(batch * out_per_image) > out_capacity)
    return fail(LOWBIT_INVALID_ARGUMENT,
                std::string(function) + ": output holds " + std::to_string(out_capacity) +
                    " values, " + std::to_string(batch * out_per_image) + " needed");
  if (batch > 0 && (!pixels || !out))
    return fail(LOWBIT_INVALID_ARGUMENT, std::string(function) + ": pixels or output is NULL");
  return LOWBIT_OK;
}

lowbit_status make_model(lowbit::QuantizedModel&& loaded, lowbit_model** model) {
  *model = new lowbit_model{std::move(loaded)};
  return LOWBIT_OK;
}

}  // namespace

extern "C" {

const char* lowbit_version(void) { return LOWBIT_VERSION_STRING; }

const char* lowbit_status_string(lowbit_status status) {
  // A C caller may pass any int (C enums hold them), but in C++ reading an enum whose value lies
  // outside its enumerators' range is undefined (UBSan: "not a valid value for type"), so the
  // value is taken by its bytes, as the int it is.
  int value = 0;
  static_assert(sizeof value == sizeof status);
  std::memcpy(&value, &status, sizeof value);
  switch (value) {
    case LOWBIT_OK: return "ok";
    case LOWBIT_INVALID_ARGUMENT: return "invalid argument";
    case LOWBIT_BAD_MODEL: return "not a valid quantized lowbit model";
    case LOWBIT_IO_ERROR: return "cannot read the file";
    case LOWBIT_OUT_OF_MEMORY: return "out of memory";
    case LOWBIT_INTERNAL_ERROR: return "internal error";
  }
  return "unknown status";
}

const char* lowbit_last_error(void) {
  return message_lost ? "out of memory (the error message could not be stored)" : last_error.c_str();
}

lowbit_status lowbit_model_load(const char* path, lowbit_model** model) {
  return guarded(LOWBIT_BAD_MODEL, [&] {
    if (!model) return fail(LOWBIT_INVALID_ARGUMENT, "lowbit_model_load: model is NULL");
    *model = nullptr;
    if (!path) return fail(LOWBIT_INVALID_ARGUMENT, "lowbit_model_load: path is NULL");
    // Read here, so that a file that cannot be read is told apart from one that is not a model.
    std::error_code error;
    if (std::filesystem::is_directory(path, error))
      return fail(LOWBIT_IO_ERROR, std::string(path) + ": is a directory");
    std::ifstream file(path, std::ios::binary | std::ios::ate);
    if (!file) return fail(LOWBIT_IO_ERROR, std::string(path) + ": cannot open: " + std::strerror(errno));
    const std::streamoff size = file.tellg();
    if (size < 0) return fail(LOWBIT_IO_ERROR, std::string(path) + ": read failed");
    if (size > lowbit::kContainerMaxBytes)
      return fail(LOWBIT_BAD_MODEL, std::string(path) + ": model file larger than 1 GiB");
    std::vector<char> bytes(static_cast<size_t>(size));
    file.seekg(0);
    if (!file.read(bytes.data(), size)) return fail(LOWBIT_IO_ERROR, std::string(path) + ": read failed");
    return make_model(lowbit::QuantizedModel::load_from_memory(bytes.data(), bytes.size(), path), model);
  });
}

lowbit_status lowbit_model_load_memory(const void* data, size_t size, lowbit_model** model) {
  return guarded(LOWBIT_BAD_MODEL, [&] {
    if (!model) return fail(LOWBIT_INVALID_ARGUMENT, "lowbit_model_load_memory: model is NULL");
    *model = nullptr;
    if (!data) return fail(LOWBIT_INVALID_ARGUMENT, "lowbit_model_load_memory: data is NULL");
    return make_model(lowbit::QuantizedModel::load_from_memory(data, size), model);
  });
}

lowbit_status lowbit_model_free(lowbit_model* model) {
  delete model;
  return LOWBIT_OK;
}

lowbit_status lowbit_model_input_shape(const lowbit_model* model, int64_t* shape, size_t capacity,
                                       size_t* rank) {
  return guarded(LOWBIT_INVALID_ARGUMENT, [&] {
    if (!model) return no_model("lowbit_model_input_shape");
    if (!rank || (capacity && !shape))
      return fail(LOWBIT_INVALID_ARGUMENT, "lowbit_model_input_shape: rank or shape is NULL");
    const lowbit::Shape& s = model->model.input_shape();
    std::copy_n(s.begin(), std::min(capacity, s.size()), shape);
    *rank = s.size();
    return LOWBIT_OK;
  });
}

lowbit_status lowbit_model_input_size(const lowbit_model* model, int64_t* size) {
  return guarded(LOWBIT_INVALID_ARGUMENT, [&] {
    if (!model) return no_model("lowbit_model_input_size");
    if (!size) return fail(LOWBIT_INVALID_ARGUMENT, "lowbit_model_input_size: size is NULL");
    *size = model->model.input_size();
    return LOWBIT_OK;
  });
}

lowbit_status lowbit_model_num_classes(const lowbit_model* model, int64_t* classes) {
  return guarded(LOWBIT_INVALID_ARGUMENT, [&] {
    if (!model) return no_model("lowbit_model_num_classes");
    if (!classes) return fail(LOWBIT_INVALID_ARGUMENT, "lowbit_model_num_classes: classes is NULL");
    *classes = model->model.num_classes();
    return LOWBIT_OK;
  });
}

lowbit_status lowbit_model_bits(const lowbit_model* model, int* weight_bits, int* act_bits) {
  return guarded(LOWBIT_INVALID_ARGUMENT, [&] {
    if (!model) return no_model("lowbit_model_bits");
    if (weight_bits) *weight_bits = model->model.weight_bits();
    if (act_bits) *act_bits = model->model.act_bits();
    return LOWBIT_OK;
  });
}

lowbit_status lowbit_model_logits(const lowbit_model* model, const uint8_t* pixels, size_t pixel_count,
                                  int64_t batch, int32_t* logits, size_t logit_capacity) {
  return guarded(LOWBIT_INVALID_ARGUMENT, [&] {
    const int64_t classes = model ? model->model.num_classes() : 0;
    const lowbit_status ok = check_batch("lowbit_model_logits", model, pixels, pixel_count, batch,
                                         logits, logit_capacity, classes);
    if (ok != LOWBIT_OK) return ok;
    if (batch > 0) model->model.logits(pixels, batch, logits);
    return LOWBIT_OK;
  });
}

lowbit_status lowbit_model_classify(const lowbit_model* model, const uint8_t* pixels,
                                    size_t pixel_count, int64_t batch, int32_t* classes,
                                    size_t class_capacity) {
  return guarded(LOWBIT_INVALID_ARGUMENT, [&] {
    const lowbit_status ok = check_batch("lowbit_model_classify", model, pixels, pixel_count, batch,
                                         classes, class_capacity, 1);
    if (ok != LOWBIT_OK) return ok;
    const int64_t n = model->model.num_classes();
    // In slices, so the logits of a large batch never need a buffer its size.
    constexpr int64_t kSlice = 4096;
    std::vector<int32_t> logits(static_cast<size_t>(std::min(batch, kSlice) * n));
    const int64_t features = model->model.input_size();
    for (int64_t begin = 0; begin < batch; begin += kSlice) {
      const int64_t rows = std::min(kSlice, batch - begin);
      model->model.logits(pixels + begin * features, rows, logits.data());
      for (int64_t i = 0; i < rows; ++i) {
        const int32_t* row = logits.data() + i * n;
        classes[begin + i] = static_cast<int32_t>(std::max_element(row, row + n) - row);
      }
    }
    return LOWBIT_OK;
  });
}

}  // extern "C"
