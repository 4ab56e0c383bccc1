#pragma once
// The cache that --memory POLICY --budget K asks for, for a given decoder: every verb that runs a decoder makes
// its cache here, so they all take the same flags with the same meaning (memory/memory_spec.h).
#include <memory>

#include "memory/memory_spec.h"
#include "model/decoder.h"
#include "model/kv_cache.h"

namespace mnemo {

struct CacheOptions {
  int64_t max_tokens = 0;    // longest sequence (the full cache's capacity; caps a bounded cache's allocation)
  int64_t max_new = 1;       // most tokens one forward() appends (decode 1; a prompt reduced in one step: its chunk)
  bool reposition = false;   // StreamingLLM's rolling positions (bounded caches on rotary models only)
};

// Full: the decoder's own cache for max_tokens entries. Bounded: a BoundedKvCache with the policy and budgets.
std::unique_ptr<KvCache> make_cache(const MemorySpec& spec, const Decoder& decoder, const CacheOptions& options);

// The position to give token number t of the sequence (0-based) on this cache: t, or for a re-positioning cache
// the number of entries it holds.
int64_t cache_position(const KvCache& cache, int64_t t);

}  // namespace mnemo
