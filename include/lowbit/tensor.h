// Dense float tensor: row-major, batch first ([N, features] for vectors, [N, C, H, W] for images).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <string>
#include <vector>

namespace lowbit {

using Shape = std::vector<int64_t>;

// Storage aligned to 64 bytes: vectorized loops then split a buffer the same way on every run
// (an unaligned head is summed in another order), which keeps results bit-identical.
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{64};
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlignment)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlignment); }
  bool operator==(const AlignedAllocator&) const { return true; }
};

// The product of the dimensions; throws lowbit::Error on a negative dimension or int64 overflow.
int64_t shape_numel(const Shape& shape);
std::string shape_string(const Shape& shape);  // "[64, 784]"

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape);                      // zero-filled
  Tensor(Shape shape, const std::vector<float>& values);  // values.size() must equal the numel

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int axis) const { return shape_.at(axis); }
  int64_t size() const { return static_cast<int64_t>(data_.size()); }
  // Elements per leading index: size() / dim(0). For [N, C, H, W] that is C*H*W.
  int64_t row_size() const { return shape_.empty() || shape_[0] == 0 ? 0 : size() / shape_[0]; }

  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  std::span<float> values() { return data_; }
  std::span<const float> values() const { return data_; }
  float& operator[](int64_t i) { return data_[i]; }
  float operator[](int64_t i) const { return data_[i]; }

  // Changes the shape; reuses the allocation when it is large enough. Contents are unspecified.
  void resize(const Shape& shape);
  void fill(float value);

 private:
  Shape shape_;
  std::vector<float, AlignedAllocator<float>> data_;
};

}  // namespace lowbit
