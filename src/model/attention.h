#pragma once
// Attention pieces shared by the models: the per-layer observer that later code (attention maps, eviction
// scoring) uses to see attention probabilities, and the one-token attention step over a KvCache.
#include <cstdint>
#include <functional>

#include "model/kv_cache.h"
#include "tensor/kernels.h"

namespace mnemo {

// Called once per layer per forward with the probabilities (B,H,Tq,Tk) after masking and softmax.
using LayerObserver = std::function<void(int layer, const float* probs, const AttentionShape& shape)>;

// One query token at absolute position `pos` attends to every entry `cache` holds in `layer` (the caller has
// already appended this token's key and value). q (H*hs), out (H*hs); scores is scratch of at least
// H * cache.size(layer) floats and holds the probabilities (H, n) afterwards; they go to cache.observe() and to
// the observer (may be null) with shape {B=1, Tq=1, Tk=n, q_offset=pos}.
void cached_attention(float* out, float* scores, const float* q, KvCache& cache, int layer, int64_t pos, int64_t H,
                      int64_t Hkv, int64_t hs, const LayerObserver* observer);

}  // namespace mnemo
