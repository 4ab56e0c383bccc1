#include "tensor/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "base/error.h"

namespace mnemo {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    MNEMO_CHECK(d >= 0, "negative dimension in ", shape_str(s));
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

Tensor Tensor::zeros(Shape shape) {
  Tensor t;
  t.numel_ = shape_numel(shape);
  t.shape_ = std::move(shape);
  size_t bytes = std::max<size_t>(64, (size_t(t.numel_) * sizeof(float) + 63) / 64 * 64);
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw Error(cat("out of memory allocating a tensor of shape ", shape_str(t.shape_)));
  std::memset(p, 0, bytes);
  t.storage_ = std::shared_ptr<void>(p, std::free);
  t.data_ = static_cast<float*>(p);
  return t;
}

Tensor Tensor::from(Shape shape, const std::vector<float>& values) {
  Tensor t = zeros(std::move(shape));
  MNEMO_CHECK(int64_t(values.size()) == t.numel_, values.size(), " values for shape ", shape_str(t.shape_));
  std::copy(values.begin(), values.end(), t.data_);
  return t;
}

Tensor Tensor::borrow(Shape shape, float* data, std::shared_ptr<void> owner) {
  Tensor t;
  t.numel_ = shape_numel(shape);
  t.shape_ = std::move(shape);
  t.storage_ = owner ? std::move(owner) : std::shared_ptr<void>(data, [](void*) {});
  t.data_ = data;
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  MNEMO_CHECK(shape_numel(shape) == numel_, "reshape ", shape_str(shape_), " to ", shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  MNEMO_CHECK(rank() >= 1 && 0 <= begin && begin <= end && end <= shape_[0], "slice_rows ", begin, ":", end,
              " of ", shape_str(shape_));
  Tensor t = *this;
  int64_t row = shape_[0] ? numel_ / shape_[0] : 0;
  t.shape_[0] = end - begin;
  t.numel_ = row * (end - begin);
  t.data_ = data_ + row * begin;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = zeros(shape_);
  if (numel_) std::memcpy(t.data_, data_, size_t(numel_) * sizeof(float));
  return t;
}

void Tensor::fill(float v) { std::fill(data_, data_ + numel_, v); }

void Tensor::copy_from(const Tensor& other) {
  MNEMO_CHECK(other.shape_ == shape_, "copy_from ", shape_str(other.shape_), " into ", shape_str(shape_));
  if (numel_) std::memmove(data_, other.data_, size_t(numel_) * sizeof(float));
}

std::vector<float> Tensor::to_vector() const { return std::vector<float>(data_, data_ + numel_); }

}  // namespace mnemo
