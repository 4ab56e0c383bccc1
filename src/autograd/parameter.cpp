#include "autograd/parameter.h"

#include <cstring>

#include "base/error.h"

namespace mnemo {

Shape Parameter::disk_shape() const {
  if (!transposed_on_disk) return value.shape();
  MNEMO_CHECK(value.rank() == 2, name, ": only matrices are transposed on disk");
  return {value.dim(1), value.dim(0)};
}

int64_t ParameterSet::declare(std::string name, Shape shape, bool transposed_on_disk) {
  MNEMO_CHECK(!values_.defined(), "declare '", name, "' after allocate()");
  MNEMO_CHECK(find(name) == nullptr, "parameter '", name, "' declared twice");
  Parameter p;
  p.name = std::move(name);
  p.transposed_on_disk = transposed_on_disk;
  params_.push_back(std::move(p));
  shapes_.push_back(std::move(shape));
  return int64_t(params_.size()) - 1;
}

void ParameterSet::allocate() {
  MNEMO_CHECK(!values_.defined(), "allocate() twice");
  // Each parameter starts on a 64-byte boundary (16 floats) so kernels see aligned rows.
  std::vector<int64_t> offsets;
  total_ = 0;
  int64_t padded = 0;
  for (auto& s : shapes_) {
    offsets.push_back(padded);
    int64_t n = shape_numel(s);
    total_ += n;
    padded += (n + 15) / 16 * 16;
  }
  values_ = Tensor::zeros({padded});
  grads_ = Tensor::zeros({padded});
  for (size_t i = 0; i < params_.size(); ++i) {
    int64_t n = shape_numel(shapes_[i]);
    // Views into the shared storage (slice of the flat buffer, then the parameter's shape).
    params_[i].value = values_.slice_rows(offsets[i], offsets[i] + n).reshape(shapes_[i]);
    params_[i].grad = grads_.slice_rows(offsets[i], offsets[i] + n).reshape(shapes_[i]);
  }
}

Parameter* ParameterSet::find(const std::string& name) {
  for (auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

const Parameter* ParameterSet::find(const std::string& name) const {
  for (auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

void ParameterSet::zero_grad() {
  if (grads_.defined()) grads_.fill(0.0f);
}

Var ParameterSet::var(Tape& tape, int64_t i) {
  MNEMO_CHECK(values_.defined(), "parameters used before allocate()");
  Var v;
  v.value = params_[size_t(i)].value;
  if (tape.recording()) v.grad = params_[size_t(i)].grad;
  return v;
}

}  // namespace mnemo
