#pragma once
// The autograd tape. A forward pass runs ops (autograd/ops.h) that compute their outputs at once and, when the
// tape is recording, push a closure that knows how to send the output's gradient back to the inputs. backward()
// runs those closures in reverse; gradients ACCUMULATE (+=), so a parameter used twice (GPT-2's tied embedding)
// collects both contributions.
//
// Memory: every activation and activation-gradient of a pass comes from the tape's arena. The first pass grows it;
// reset() rewinds it to its first block, so later passes of the same shapes allocate nothing and touch no fresh
// page (merging the blocks into a new one, as reset() once did, made the second pass fault all its memory in again:
// ~1 GB, 0.3-0.8 s of kernel time for an RMT training step). Tensors a pass returns stay valid until the next
// reset() — clone() what must outlive it. An inference pass may also give back what it allocated since a mark()
// (release()), so a layer-by-layer pass holds one layer's temporaries.
//
// Inference: a tape built with Mode::Inference records nothing and gives no value a gradient, so a forward pass
// saves nothing for backward and allocates no gradient buffers.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "tensor/tensor.h"

namespace mnemo {

// A value in a pass: its data and, when a gradient flows to it, its gradient buffer (same shape, zeroed).
struct Var {
  Tensor value;
  Tensor grad;  // undefined when no gradient is needed
  bool needs_grad() const { return grad.defined(); }
  const Shape& shape() const { return value.shape(); }
  float* data() { return value.data(); }
  const float* data() const { return value.data(); }
};

class Tape {
 public:
  enum class Mode { Train, Inference };
  explicit Tape(Mode mode = Mode::Train);
  ~Tape();
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  bool recording() const { return mode_ == Mode::Train; }

  // Arena storage for this pass: alloc() is uninitialised, zeros() is zero-filled. 64-byte aligned.
  Tensor alloc(Shape shape);
  Tensor zeros(Shape shape);
  // Scratch bytes for ops (ids, masks), same lifetime as alloc().
  void* alloc_bytes(size_t bytes);

  // A fresh op output: value from the arena; a zeroed gradient iff recording and any input needs one.
  Var output(Shape shape, bool needs_grad);
  // Inference tapes only: release(m, keep) frees everything allocated since m = mark() except keep, which is
  // copied to the mark and returned; later allocations reuse the space. Values from after the mark become invalid.
  struct Mark {
    size_t block = 0, used = 0;
  };
  Mark mark() const { return {cur_, used_}; }
  Var release(const Mark& m, const Var& keep);

  // Record how to send gradients back (called by ops only when the output needs a gradient).
  void record(std::function<void()> backward) { steps_.push_back(std::move(backward)); }

  // Seed d(loss)/d(loss) = 1 (loss must be a single element) and run the recorded steps in reverse.
  void backward(const Var& loss);
  // Forget recorded steps and rewind the arena (values from this pass become invalid).
  void reset();

  size_t arena_bytes() const;  // capacity held, for tests and reports
  size_t steps() const { return steps_.size(); }

 private:
  struct Block;
  Mode mode_;
  std::vector<std::function<void()>> steps_;
  std::vector<std::shared_ptr<Block>> blocks_;  // in order of filling; blocks after cur_ are free
  size_t cur_ = 0;                               // the block being filled
  size_t used_ = 0;                              // bytes used in blocks_[cur_]
};

}  // namespace mnemo
