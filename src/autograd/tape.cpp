#include "autograd/tape.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "base/error.h"

namespace mnemo {

struct Tape::Block {
  explicit Block(size_t n) : size(n) {
    data = static_cast<uint8_t*>(std::aligned_alloc(64, n));
    if (!data) throw Error(cat("out of memory: autograd arena block of ", n, " bytes"));
  }
  ~Block() { std::free(data); }
  uint8_t* data;
  size_t size;
};

Tape::Tape(Mode mode) : mode_(mode) {}
Tape::~Tape() = default;

void* Tape::alloc_bytes(size_t bytes) {
  bytes = std::max<size_t>(64, (bytes + 63) / 64 * 64);
  if (blocks_.empty() || used_ + bytes > blocks_.back()->size) {
    // Grow geometrically so a first pass makes few blocks; reset() merges them into one.
    size_t want = std::max<size_t>(bytes, blocks_.empty() ? (size_t(1) << 20) : blocks_.back()->size * 2);
    blocks_.push_back(std::make_shared<Block>(want));
    used_ = 0;
  }
  void* p = blocks_.back()->data + used_;
  used_ += bytes;
  total_used_ += bytes;
  return p;
}

Tensor Tape::alloc(Shape shape) {
  int64_t n = shape_numel(shape);
  auto* p = static_cast<float*>(alloc_bytes(size_t(n) * sizeof(float)));
  return Tensor::borrow(std::move(shape), p, blocks_.back());
}

Tensor Tape::zeros(Shape shape) {
  Tensor t = alloc(std::move(shape));
  if (t.numel()) std::memset(t.data(), 0, size_t(t.numel()) * sizeof(float));
  return t;
}

Var Tape::output(Shape shape, bool needs_grad) {
  Var v;
  v.value = alloc(shape);
  if (needs_grad && recording()) v.grad = zeros(std::move(shape));
  return v;
}

void Tape::backward(const Var& loss) {
  MNEMO_CHECK(recording(), "backward() on an inference tape");
  MNEMO_CHECK(loss.value.numel() == 1, "backward() needs a single-element loss, got ", shape_str(loss.shape()));
  MNEMO_CHECK(loss.needs_grad(), "backward() on a loss that depends on no parameter");
  Tensor g = loss.grad;  // a handle on the same storage
  g.data()[0] += 1.0f;
  for (size_t i = steps_.size(); i-- > 0;) steps_[i]();
}

void Tape::reset() {
  steps_.clear();
  if (blocks_.size() > 1) {
    // One block big enough for the whole pass: the next pass of the same shapes allocates nothing.
    size_t need = total_used_;
    blocks_.clear();
    blocks_.push_back(std::make_shared<Block>(need));
  }
  used_ = 0;
  total_used_ = 0;
}

size_t Tape::arena_bytes() const {
  size_t n = 0;
  for (auto& b : blocks_) n += b->size;
  return n;
}

}  // namespace mnemo
