#pragma once
// Inference precision of a model's linear layers. fp32 is the training arithmetic. bf16 rounds each weight to bf16
// once (when the precision is set: later changes to the weights are not seen) and each input as it is multiplied
// (tensor/bf16_linear.h): about twice the fp32 speed where the CPU has bf16 arithmetic (docs/performance.md),
// hidden states within about 1 % of fp32 (tests/oracle). Inference only: a tape that records refuses bf16.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "autograd/parameter.h"
#include "autograd/tape.h"

namespace mnemo {

enum class Precision { fp32, bf16 };
// "fp32" or "bf16"; anything else throws Error "<what>: '<name>' is not fp32 or bf16".
Precision parse_precision(const std::string& name, const std::string& what);
const char* precision_name(Precision p);

// A model's linear layers at its chosen precision: the bf16 copies of their weights, by parameter index.
class Linears {
 public:
  // fp32 drops every copy; bf16 rounds the weights `which` of ps (each (OC, C)).
  void set(Precision p, const ParameterSet& ps, const std::vector<int64_t>& which);
  Precision precision() const { return precision_; }
  // x (N,C) @ w^T + b (b < 0: none): through w's bf16 copy when it has one, else ag::linear.
  Var operator()(Tape& t, const Var& x, ParameterSet& ps, int64_t w, int64_t b) const;

 private:
  Precision precision_ = Precision::fp32;
  std::unordered_map<int64_t, std::vector<uint16_t>> bf16_;
};

}  // namespace mnemo
