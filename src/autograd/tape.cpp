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
  while (cur_ >= blocks_.size() || used_ + bytes > blocks_[cur_]->size) {
    if (cur_ + 1 < blocks_.size()) {  // a block freed by reset() or release(): an earlier pass faulted it in
      ++cur_, used_ = 0;
      continue;
    }
    // Grow geometrically so a first pass makes few blocks, up to kMaxBlock: doubling without end left a 16-segment
    // decoder step (19 GB of activations) with 35 GB of blocks, and a later pass that skipped a block's tail faulted
    // in enough of the last one for the kernel to kill the run. Capped, the space held but never used is one block.
    constexpr size_t kMaxBlock = size_t(256) << 20;
    const size_t next = blocks_.empty() ? (size_t(1) << 20) : std::min(blocks_.back()->size * 2, kMaxBlock);
    blocks_.push_back(std::make_shared<Block>(std::max(bytes, next)));
    cur_ = blocks_.size() - 1, used_ = 0;
  }
  void* p = blocks_[cur_]->data + used_;
  used_ += bytes;
  return p;
}

Var Tape::release(const Mark& m, const Var& keep) {
  MNEMO_CHECK(!recording(), "release() on a recording tape: backward needs every saved value");
  cur_ = m.block, used_ = m.used;
  Var out;
  out.value = alloc(keep.shape());
  // keep lies after the mark and its new place at or before its old one: an overlapping copy moves down.
  if (out.value.numel()) std::memmove(out.data(), keep.data(), size_t(out.value.numel()) * sizeof(float));
  return out;
}

Tensor Tape::alloc(Shape shape) {
  int64_t n = shape_numel(shape);
  auto* p = static_cast<float*>(alloc_bytes(size_t(n) * sizeof(float)));
  return Tensor::borrow(std::move(shape), p, blocks_[cur_]);
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
  cur_ = used_ = 0;
}

size_t Tape::arena_bytes() const {
  size_t n = 0;
  for (auto& b : blocks_) n += b->size;
  return n;
}

}  // namespace mnemo
