#pragma once
// AdamW over a ParameterSet, gradient clipping, and the learning-rate schedule. The optimizer's moments live in two
// allocations parallel to the parameter set's values, so a checkpoint saves them as two tensors and a resumed run
// continues bit for bit.
#include <cstdint>
#include <initializer_list>
#include <string>

#include "autograd/parameter.h"
#include "tensor/kernels.h"

namespace mnemo {

class AdamW {
 public:
  // Weight decay applies to matrices (rank >= 2: linear weights and embeddings) and never to vectors (biases,
  // norm gains), the usual rule for transformers (nanoGPT, llm.c).
  AdamW(ParameterSet& params, AdamWConfig cfg);

  // One update with learning rate lr using the gradients in the parameter set (which it does not zero).
  void step(float lr);
  int64_t steps() const { return step_; }
  const AdamWConfig& config() const { return cfg_; }

  // State for checkpoints: first and second moments (numel,) each, and the step count.
  Tensor& m() { return m_; }
  Tensor& v() { return v_; }
  void set_steps(int64_t s) { step_ = s; }

 private:
  ParameterSet& params_;
  AdamWConfig cfg_;
  Tensor m_, v_;  // (numel,) in parameter order
  int64_t step_ = 0;
};

// Scale all gradients of the sets so their global L2 norm is at most max_norm (no-op when max_norm <= 0); returns
// the norm before clipping. A non-finite norm is returned as is and nothing is scaled (the caller decides to skip
// the step). The norm is the same bits for every thread count.
double clip_grad_norm(std::initializer_list<ParameterSet*> sets, double max_norm);
inline double clip_grad_norm(ParameterSet& params, double max_norm) { return clip_grad_norm({&params}, max_norm); }

// Linear warm-up from 0 to peak over `warmup` steps, then linear decay to peak * final_fraction at `total`.
struct LrSchedule {
  double peak = 1e-3;
  int64_t warmup = 0;
  int64_t total = 1;
  double final_fraction = 0.0;
  double at(int64_t step) const;  // step is 0-based: the rate for the (step+1)-th update
};

}  // namespace mnemo
