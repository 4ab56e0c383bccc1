#include "memory/make_cache.h"

#include "base/error.h"
#include "memory/bounded_kv_cache.h"
#include "model/llama.h"

namespace mnemo {

std::unique_ptr<KvCache> make_cache(const MemorySpec& spec, const Decoder& decoder, const CacheOptions& options) {
  if (spec.full()) {
    if (options.reposition) throw Error("--reposition: the full cache keeps absolute positions (use a policy)");
    if (options.max_tokens <= 0) throw Error("make_cache: a full cache needs the sequence length");
    return decoder.make_full_cache(options.max_tokens);
  }
  CacheShape shape;
  shape.n_layer = decoder.n_layer();
  shape.Hkv = decoder.n_kv_head();
  shape.H = shape.Hkv;
  RopeSpec rope;
  bool rotary = false;
  if (const auto* llama = dynamic_cast<const LlamaRunner*>(&decoder)) {
    shape.H = llama->config().num_attention_heads;
    rope.theta = llama->config().rope_theta;
    rope.linear_scale = llama->config().rope_linear_factor;
    rotary = true;
  }
  if (options.reposition && !rotary) throw Error("--reposition: the model has no rotary positions");
  return std::make_unique<BoundedKvCache>(shape, decoder.head_dim(), spec.budgets, make_policy(spec.policy),
                                          options.max_new, options.max_tokens,
                                          options.reposition ? &rope : nullptr);
}

int64_t cache_position(const KvCache& cache, int64_t t) {
  const auto* b = dynamic_cast<const BoundedKvCache*>(&cache);
  return b ? b->next_position() : t;
}

}  // namespace mnemo
