#pragma once
// Parameters: named tensors a model learns, with their gradients. A ParameterSet holds all of a model's
// parameters in two allocations (values, gradients), in a fixed order, so optimizers and checkpoints walk one list
// and the gradient of everything can be zeroed with one memset.
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/tape.h"
#include "tensor/tensor.h"

namespace mnemo {

struct Parameter {
  std::string name;  // the Hugging Face name, e.g. "transformer.h.0.attn.c_attn.weight"
  Tensor value;      // internal layout (Linear weights (out, in))
  Tensor grad;       // same shape; accumulated by backward
  // GPT-2's Conv1D keeps weights as (in, out) on disk; internally they are (out, in). io transposes at load/save.
  bool transposed_on_disk = false;
  Shape disk_shape() const;  // shape as stored in the checkpoint
};

class ParameterSet {
 public:
  // Declare a parameter; returns its index. All declarations come before allocate().
  int64_t declare(std::string name, Shape shape, bool transposed_on_disk = false);
  // One allocation for all values and one for all gradients, both zeroed.
  void allocate();

  int64_t size() const { return int64_t(params_.size()); }
  Parameter& operator[](int64_t i) { return params_[size_t(i)]; }
  const Parameter& operator[](int64_t i) const { return params_[size_t(i)]; }
  std::vector<Parameter>& all() { return params_; }
  const std::vector<Parameter>& all() const { return params_; }
  // nullptr when absent.
  Parameter* find(const std::string& name);
  const Parameter* find(const std::string& name) const;
  int64_t numel() const { return total_; }
  // Every gradient in one flat tensor (padded,): each parameter's followed by zeros up to a 16-float boundary,
  // so one call reduces or scales them all. Undefined before allocate().
  Tensor& grad_storage() { return grads_; }

  void zero_grad();
  // The parameter as a graph input: its gradient flows when the tape records.
  Var var(Tape& tape, int64_t i);

 private:
  std::vector<Parameter> params_;
  std::vector<Shape> shapes_;
  Tensor values_, grads_;  // (total,) each
  int64_t total_ = 0;
};

}  // namespace mnemo
