/* Classifies raw 8-bit images with the C API: classify MODEL.lbq IMAGES.u8 prints one class a line.
 * IMAGES.u8 holds images of the model's input size back to back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lowbit/c_api.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL.lbq IMAGES.u8\n", argv[0]);
    return 2;
  }
  lowbit_model* model = NULL;
  if (lowbit_model_load(argv[1], &model) != LOWBIT_OK) {
    fprintf(stderr, "classify: %s\n", lowbit_last_error());
    return 1;
  }
  int64_t size = 0;
  lowbit_model_input_size(model, &size);
  FILE* file = fopen(argv[2], "rb");
  if (!file) {
    fprintf(stderr, "classify: cannot open %s\n", argv[2]);
    return 1;
  }
  fseek(file, 0, SEEK_END);
  const size_t bytes = (size_t)ftell(file);
  fseek(file, 0, SEEK_SET);
  uint8_t* pixels = malloc(bytes);
  if (fread(pixels, 1, bytes, file) != bytes) return 1;
  fclose(file);
  const int64_t count = (int64_t)bytes / size;
  int32_t* classes = malloc(sizeof(int32_t) * (size_t)count);
  /* The wrong size is refused with a message rather than read out of bounds. */
  if (lowbit_model_classify(model, pixels, bytes + 1, count, classes, (size_t)count) != LOWBIT_INVALID_ARGUMENT)
    return 1;
  if (lowbit_model_classify(model, pixels, bytes, count, classes, (size_t)count) != LOWBIT_OK) {
    fprintf(stderr, "classify: %s\n", lowbit_last_error());
    return 1;
  }
  for (int64_t i = 0; i < count; ++i) printf("%d\n", classes[i]);
  free(pixels);
  free(classes);
  lowbit_model_free(model);
  return 0;
}
