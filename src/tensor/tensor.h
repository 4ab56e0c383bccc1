#pragma once
// A dense, row-major fp32 tensor whose storage is shared (views and copies of the handle share it). Storage is
// either owned (64-byte aligned, zero-initialised) or borrowed from an owner kept alive by the tensor (a
// memory-mapped file, say). Kernels take raw pointers and sizes; Tensor only carries data between them.
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace mnemo {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "[2, 3, 4]"

class Tensor {
 public:
  Tensor() = default;
  static Tensor zeros(Shape shape);
  static Tensor from(Shape shape, const std::vector<float>& values);  // values.size() must equal numel
  // Borrow `data` (numel floats) while `owner` is alive; writes through the tensor modify the borrowed memory.
  static Tensor borrow(Shape shape, float* data, std::shared_ptr<void> owner);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int rank() const { return int(shape_.size()); }
  int64_t dim(int i) const { return shape_[size_t(i < 0 ? i + rank() : i)]; }
  int64_t numel() const { return numel_; }
  float* data() { return data_; }
  const float* data() const { return data_; }
  float& operator[](int64_t i) { return data_[i]; }
  float operator[](int64_t i) const { return data_[i]; }

  // Same storage, new shape (numel must agree).
  Tensor reshape(Shape shape) const;
  // Same storage, rows [begin, end) of the first dimension.
  Tensor slice_rows(int64_t begin, int64_t end) const;
  // Fresh storage with the same values.
  Tensor clone() const;
  void fill(float v);
  void copy_from(const Tensor& other);  // shapes must match
  std::vector<float> to_vector() const;

 private:
  std::shared_ptr<void> storage_;
  float* data_ = nullptr;
  Shape shape_;
  int64_t numel_ = 0;
};

}  // namespace mnemo
