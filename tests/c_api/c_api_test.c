/* The C API from C11, under AddressSanitizer: results equal to the C++ engine's, bad files and
 * wrong sizes refused with a status and a message, messages per thread, no leaks.
 * Usage: c_api_test DIR, with DIR holding write_fixture's files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "lowbit/c_api.h"

static int failures = 0;

#define CHECK(condition)                                                          \
  do {                                                                            \
    if (!(condition)) {                                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
      ++failures;                                                                 \
    }                                                                             \
  } while (0)

/* The call returned `status` and left a message holding `words`. */
#define CHECK_FAILS(call, status, words)                                                   \
  do {                                                                                     \
    lowbit_status got_ = (call);                                                           \
    if (got_ != (status) || !strstr(lowbit_last_error(), (words))) {                       \
      fprintf(stderr, "%s:%d: %s: status %d (%s), message \"%s\"; expected %d and \"%s\"\n", \
              __FILE__, __LINE__, #call, (int)got_, lowbit_status_string(got_),            \
              lowbit_last_error(), (int)(status), (words));                                \
      ++failures;                                                                          \
    }                                                                                      \
  } while (0)

static char dir[4096];

static const char* path_of(const char* name) {
  static char path[8192];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

/* The whole file in a new buffer (free it); *size its length. Aborts when it cannot be read. */
static unsigned char* slurp(const char* path, size_t* size) {
  FILE* file = fopen(path, "rb");
  if (!file) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(2);
  }
  fseek(file, 0, SEEK_END);
  *size = (size_t)ftell(file);
  fseek(file, 0, SEEK_SET);
  unsigned char* bytes = malloc(*size ? *size : 1);
  if (fread(bytes, 1, *size, file) != *size) exit(2);
  fclose(file);
  return bytes;
}

static void spit(const char* path, const unsigned char* bytes, size_t size) {
  FILE* file = fopen(path, "wb");
  fwrite(bytes, 1, size, file);
  fclose(file);
}

static unsigned char* pixels;
static int32_t* expected;
static int64_t images;

static void test_queries(const lowbit_model* model) {
  int64_t shape[4] = {0, 0, 0, 0};
  size_t rank = 0;
  CHECK(lowbit_model_input_shape(model, shape, 4, &rank) == LOWBIT_OK);
  CHECK(rank == 3 && shape[0] == 1 && shape[1] == 4 && shape[2] == 4 && shape[3] == 0);
  /* A short buffer gets the leading dimensions and the full rank. */
  int64_t first = 0;
  CHECK(lowbit_model_input_shape(model, &first, 1, &rank) == LOWBIT_OK && first == 1 && rank == 3);
  CHECK(lowbit_model_input_shape(model, NULL, 0, &rank) == LOWBIT_OK && rank == 3);
  int64_t size = 0, classes = 0;
  CHECK(lowbit_model_input_size(model, &size) == LOWBIT_OK && size == 16);
  CHECK(lowbit_model_num_classes(model, &classes) == LOWBIT_OK && classes == 3);
  int weight_bits = 0, act_bits = 0;
  CHECK(lowbit_model_bits(model, &weight_bits, &act_bits) == LOWBIT_OK && weight_bits == 4 && act_bits == 4);
  CHECK(lowbit_model_bits(model, NULL, &act_bits) == LOWBIT_OK);
  CHECK(strcmp(lowbit_last_error(), "") == 0);
}

/* Logits equal the C++ engine's bit for bit; classes are their first argmax. */
static void test_results(const lowbit_model* model) {
  int32_t* logits = malloc(sizeof(int32_t) * (size_t)images * 3);
  int32_t* classes = malloc(sizeof(int32_t) * (size_t)images);
  CHECK(lowbit_model_logits(model, pixels, (size_t)images * 16, images, logits, (size_t)images * 3) == LOWBIT_OK);
  CHECK(memcmp(logits, expected, sizeof(int32_t) * (size_t)images * 3) == 0);
  CHECK(lowbit_model_classify(model, pixels, (size_t)images * 16, images, classes, (size_t)images) == LOWBIT_OK);
  for (int64_t i = 0; i < images; ++i) {
    const int32_t* row = expected + i * 3;
    int32_t best = 0;
    for (int32_t c = 1; c < 3; ++c)
      if (row[c] > row[best]) best = c;
    CHECK(classes[i] == best);
  }
  /* One image at a time gives the same as the batch. */
  int32_t one[3];
  CHECK(lowbit_model_logits(model, pixels + 5 * 16, 16, 1, one, 3) == LOWBIT_OK);
  CHECK(memcmp(one, expected + 5 * 3, sizeof one) == 0);
  free(logits);
  free(classes);
}

static void test_wrong_sizes(const lowbit_model* model) {
  int32_t logits[2 * 3], classes[2];
  CHECK_FAILS(lowbit_model_logits(model, pixels, 31, 2, logits, 6), LOWBIT_INVALID_ARGUMENT,
              "31 pixels for 2 images of 16 pixels; expected 32");
  CHECK_FAILS(lowbit_model_logits(model, pixels, 33, 2, logits, 6), LOWBIT_INVALID_ARGUMENT, "expected 32");
  CHECK_FAILS(lowbit_model_logits(model, pixels, 32, 2, logits, 5), LOWBIT_INVALID_ARGUMENT,
              "output holds 5 values, 6 needed");
  CHECK_FAILS(lowbit_model_classify(model, pixels, 32, 2, classes, 1), LOWBIT_INVALID_ARGUMENT,
              "output holds 1 values, 2 needed");
  CHECK_FAILS(lowbit_model_logits(model, pixels, 0, -1, logits, 6), LOWBIT_INVALID_ARGUMENT, "batch is negative");
  CHECK_FAILS(lowbit_model_logits(model, pixels, 32, INT64_MAX / 4, logits, 6), LOWBIT_INVALID_ARGUMENT,
              "batch is too large");
  CHECK_FAILS(lowbit_model_logits(model, NULL, 32, 2, logits, 6), LOWBIT_INVALID_ARGUMENT, "NULL");
  CHECK_FAILS(lowbit_model_classify(model, pixels, 32, 2, NULL, 2), LOWBIT_INVALID_ARGUMENT, "NULL");
  CHECK_FAILS(lowbit_model_logits(NULL, pixels, 32, 2, logits, 6), LOWBIT_INVALID_ARGUMENT, "model is NULL");
  CHECK_FAILS(lowbit_model_num_classes(NULL, NULL), LOWBIT_INVALID_ARGUMENT, "model is NULL");
  CHECK_FAILS(lowbit_model_input_size(model, NULL), LOWBIT_INVALID_ARGUMENT, "size is NULL");
  CHECK_FAILS(lowbit_model_input_shape(model, NULL, 3, &(size_t){0}), LOWBIT_INVALID_ARGUMENT, "NULL");
  /* An empty batch needs no buffers; a success clears the last message. */
  CHECK(lowbit_model_logits(model, NULL, 0, 0, NULL, 0) == LOWBIT_OK);
  CHECK(strcmp(lowbit_last_error(), "") == 0);
}

static void expect_bad_file(const char* name, const unsigned char* bytes, size_t size, const char* words) {
  spit(path_of(name), bytes, size);
  lowbit_model* model = (lowbit_model*)&model; /* must be reset to NULL */
  CHECK_FAILS(lowbit_model_load(path_of(name), &model), LOWBIT_BAD_MODEL, words);
  CHECK(model == NULL);
  CHECK(strstr(lowbit_last_error(), name) != NULL); /* the message names the file */
  model = (lowbit_model*)&model;
  CHECK_FAILS(lowbit_model_load_memory(bytes, size, &model), LOWBIT_BAD_MODEL, words);
  CHECK(model == NULL);
}

static void test_bad_files(const unsigned char* good, size_t size) {
  lowbit_model* model = NULL;
  CHECK_FAILS(lowbit_model_load(path_of("missing.lbq"), &model), LOWBIT_IO_ERROR, "missing.lbq: cannot open");
  CHECK(model == NULL);
  CHECK_FAILS(lowbit_model_load(dir, &model), LOWBIT_IO_ERROR, dir); /* a folder */
  CHECK_FAILS(lowbit_model_load(NULL, &model), LOWBIT_INVALID_ARGUMENT, "path is NULL");
  CHECK_FAILS(lowbit_model_load(path_of("tiny.lbq"), NULL), LOWBIT_INVALID_ARGUMENT, "model is NULL");
  CHECK_FAILS(lowbit_model_load_memory(NULL, 10, &model), LOWBIT_INVALID_ARGUMENT, "data is NULL");

  unsigned char* copy = malloc(size);
  expect_bad_file("empty.lbq", good, 0, "not a lowbit model");
  expect_bad_file("short.lbq", good, 12, "not a lowbit model");
  expect_bad_file("truncated.lbq", good, size - 7, "checksum mismatch");
  memcpy(copy, good, size);
  copy[size / 2] ^= 0x40;
  expect_bad_file("flipped.lbq", copy, size, "checksum mismatch");
  memcpy(copy, good, size);
  copy[0] = 'X';
  expect_bad_file("magic.lbq", copy, size, "bad magic");
  memcpy(copy, good, size);
  copy[8] = 99; /* version */
  expect_bad_file("version.lbq", copy, size, "newer than this lowbit reads");
  free(copy);

  size_t float_size = 0;
  unsigned char* float_model = slurp(path_of("tiny.lbm"), &float_size);
  expect_bad_file("float.lbq", float_model, float_size, "not a quantized model");
  free(float_model);
}

/* Each image in a buffer of exactly its size, 35 pixels, at the end of an allocation: a kernel that
 * read past the last image would be caught by ASan. */
static void test_awkward_shape(void) {
  lowbit_model* model = NULL;
  CHECK(lowbit_model_load(path_of("odd.lbq"), &model) == LOWBIT_OK);
  if (!model) return;
  size_t pixel_bytes = 0, logit_bytes = 0;
  unsigned char* all = slurp(path_of("odd_images.u8"), &pixel_bytes);
  int32_t* want = (int32_t*)slurp(path_of("odd_logits.i32"), &logit_bytes);
  CHECK(pixel_bytes == 5 * 35 && logit_bytes == 5 * 4 * sizeof(int32_t));
  for (int64_t batch = 1; batch <= 5; ++batch) {
    for (int64_t first = 0; first + batch <= 5; ++first) {
      unsigned char* exact = malloc((size_t)batch * 35);
      int32_t* logits = malloc(sizeof(int32_t) * (size_t)batch * 4);
      memcpy(exact, all + first * 35, (size_t)batch * 35);
      CHECK(lowbit_model_logits(model, exact, (size_t)batch * 35, batch, logits, (size_t)batch * 4) == LOWBIT_OK);
      CHECK(memcmp(logits, want + first * 4, sizeof(int32_t) * (size_t)batch * 4) == 0);
      free(exact);
      free(logits);
    }
  }
  free(all);
  free(want);
  lowbit_model_free(model);
}

/* Messages are per thread: another thread sees none of this one's, and keeps its own. */
static int other_thread(void* model) {
  int ok = strcmp(lowbit_last_error(), "") == 0;
  int64_t size = 0;
  ok = ok && lowbit_model_input_size(NULL, &size) == LOWBIT_INVALID_ARGUMENT;
  ok = ok && strstr(lowbit_last_error(), "lowbit_model_input_size") != NULL;
  /* And runs the model at the same time as the main thread. */
  int32_t* logits = malloc(sizeof(int32_t) * (size_t)images * 3);
  for (int round = 0; round < 5; ++round) {
    ok = ok && lowbit_model_logits(model, pixels, (size_t)images * 16, images, logits, (size_t)images * 3) == LOWBIT_OK;
    ok = ok && memcmp(logits, expected, sizeof(int32_t) * (size_t)images * 3) == 0;
  }
  free(logits);
  return ok;
}

static void test_threads(lowbit_model* model) {
  CHECK_FAILS(lowbit_model_num_classes(NULL, NULL), LOWBIT_INVALID_ARGUMENT, "lowbit_model_num_classes");
  thrd_t thread;
  CHECK(thrd_create(&thread, other_thread, model) == thrd_success);
  int32_t* logits = malloc(sizeof(int32_t) * (size_t)images * 3);
  for (int round = 0; round < 5; ++round) {
    CHECK(lowbit_model_logits(model, pixels, (size_t)images * 16, images, logits, (size_t)images * 3) == LOWBIT_OK);
    CHECK(memcmp(logits, expected, sizeof(int32_t) * (size_t)images * 3) == 0);
  }
  free(logits);
  int result = 0;
  CHECK(thrd_join(thread, &result) == thrd_success && result == 1);
  /* A success in this thread cleared its message; the other thread's never reached it. */
  CHECK(strcmp(lowbit_last_error(), "") == 0);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  snprintf(dir, sizeof dir, "%s", argv[1]);
  CHECK(strcmp(lowbit_version(), LOWBIT_TEST_VERSION) == 0);
  CHECK(strcmp(lowbit_status_string(LOWBIT_OK), "ok") == 0);
  CHECK(strlen(lowbit_status_string((lowbit_status)42)) > 0);
  CHECK(lowbit_model_free(NULL) == LOWBIT_OK);

  size_t pixel_bytes = 0, logit_bytes = 0, model_size = 0;
  pixels = slurp(path_of("images.u8"), &pixel_bytes);
  expected = (int32_t*)slurp(path_of("logits.i32"), &logit_bytes);
  images = (int64_t)(pixel_bytes / 16);
  CHECK(logit_bytes == (size_t)images * 3 * sizeof(int32_t));

  lowbit_model* model = NULL;
  CHECK(lowbit_model_load(path_of("tiny.lbq"), &model) == LOWBIT_OK && model != NULL);
  if (!model) {
    fprintf(stderr, "cannot load the fixture: %s\n", lowbit_last_error());
    return 1;
  }
  test_queries(model);
  test_results(model);
  test_wrong_sizes(model);
  test_threads(model);
  lowbit_model_free(model);

  /* From memory, freed right after loading: the model keeps its own copy. */
  unsigned char* bytes = slurp(path_of("tiny.lbq"), &model_size);
  model = NULL;
  CHECK(lowbit_model_load_memory(bytes, model_size, &model) == LOWBIT_OK);
  unsigned char* kept = malloc(model_size);
  memcpy(kept, bytes, model_size);
  free(bytes);
  if (model) {
    test_queries(model);
    test_results(model);
  }
  lowbit_model_free(model);

  test_awkward_shape();
  test_bad_files(kept, model_size);
  free(kept);
  free(pixels);
  free(expected);
  if (failures) fprintf(stderr, "%d checks failed\n", failures);
  else printf("C API: all checks passed on %lld images\n", (long long)images);
  return failures ? 1 : 0;
}
