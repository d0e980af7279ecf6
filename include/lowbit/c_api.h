/* The C API of the lowbit engine: load a quantized model (.lbq) and classify 8-bit images with it.
 *
 * Every function that can fail returns a lowbit_status; on failure lowbit_last_error() gives a
 * one-line message saying what was wrong (it names the file, or the argument). The message is
 * per thread and is cleared by the next call on the same thread. No C++ exception leaves these
 * functions. A lowbit_model is immutable once loaded: any number of threads may run it at once.
 * Linked as lowbit::engine (CMake) or `pkg-config --libs lowbit-engine`.
 *
 *   lowbit_model* model;
 *   if (lowbit_model_load("m.lbq", &model) != LOWBIT_OK) {
 *     fprintf(stderr, "%s\n", lowbit_last_error());
 *     return 1;
 *   }
 *   int32_t classes[16];
 *   lowbit_model_classify(model, pixels, 16 * input_size, 16, classes, 16);
 *   lowbit_model_free(model);
 */
#ifndef LOWBIT_C_API_H
#define LOWBIT_C_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lowbit_status {
  LOWBIT_OK = 0,
  LOWBIT_INVALID_ARGUMENT = 1, /* a null pointer, a count or buffer size that does not fit */
  LOWBIT_BAD_MODEL = 2,        /* the file or buffer is not a valid quantized lowbit model */
  LOWBIT_IO_ERROR = 3,         /* the file cannot be opened or read */
  LOWBIT_OUT_OF_MEMORY = 4,
  LOWBIT_INTERNAL_ERROR = 5    /* a bug in lowbit: please report it with the message */
} lowbit_status;

typedef struct lowbit_model lowbit_model;

/* "0.1.0": the version of the library actually linked. */
const char* lowbit_version(void);
/* A fixed description of a status ("invalid argument", ...); never NULL. */
const char* lowbit_status_string(lowbit_status status);
/* What went wrong in this thread's last failed call; "" after a call that succeeded. */
const char* lowbit_last_error(void);

/* Loads and validates a .lbq file (checksum, version, every field). On success *model is a new
 * model to release with lowbit_model_free; on failure it is NULL. */
lowbit_status lowbit_model_load(const char* path, lowbit_model** model);
/* The same from the bytes of a .lbq file; `data` is copied and may be freed afterwards. */
lowbit_status lowbit_model_load_memory(const void* data, size_t size, lowbit_model** model);
/* Releases a model; NULL is allowed. Always LOWBIT_OK. */
lowbit_status lowbit_model_free(lowbit_model* model);

/* The input shape of one image, e.g. {1, 28, 28} for [C, H, W]: writes min(rank, capacity)
 * dimensions to `shape` (which may be NULL when capacity is 0) and the rank to *rank. */
lowbit_status lowbit_model_input_shape(const lowbit_model* model, int64_t* shape, size_t capacity,
                                       size_t* rank);
/* Pixels per image: the product of the input shape (784 for MNIST). */
lowbit_status lowbit_model_input_size(const lowbit_model* model, int64_t* size);
/* Number of classes: the logits per image. */
lowbit_status lowbit_model_num_classes(const lowbit_model* model, int64_t* classes);
/* Weight and activation bits of the first layer (of every layer unless the model mixes them);
 * either pointer may be NULL. */
lowbit_status lowbit_model_bits(const lowbit_model* model, int* weight_bits, int* act_bits);

/* pixels: [batch, input_size] raw 8-bit pixels, row-major, images in [C, H, W] order;
 * pixel_count must equal batch * input_size. logits: [batch, classes] int32, in units of the
 * model's logit scale (argmax is the class); logit_capacity must be at least batch * classes.
 * batch may be 0. Runs on the engine's OpenMP threads. */
lowbit_status lowbit_model_logits(const lowbit_model* model, const uint8_t* pixels, size_t pixel_count,
                                  int64_t batch, int32_t* logits, size_t logit_capacity);
/* The same, keeping only each image's class (the first largest logit): classes: [batch],
 * class_capacity at least batch. */
lowbit_status lowbit_model_classify(const lowbit_model* model, const uint8_t* pixels,
                                    size_t pixel_count, int64_t batch, int32_t* classes,
                                    size_t class_capacity);

#ifdef __cplusplus
}
#endif

#endif /* LOWBIT_C_API_H */
