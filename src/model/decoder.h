#pragma once
// What generation and perplexity need from a decoder-only language model, whatever its architecture (Llama from a
// GGUF file or an HF directory, GPT-2 from an HF directory): run a run of tokens that continues what the cache
// holds, and give logits. The KV cache belongs to the caller, so a bounded cache (src/memory) can stand in for the
// full one.
#include <cstdint>
#include <memory>

#include "model/attention.h"
#include "model/kv_cache.h"

namespace mnemo {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual int64_t vocab_size() const = 0;
  // Longest sequence the model was trained for (positions beyond it are the caller's risk / refused).
  virtual int64_t context_length() const = 0;
  // Cache geometry.
  virtual int n_layer() const = 0;
  virtual int64_t n_kv_head() const = 0;
  virtual int64_t head_dim() const = 0;
  // A cache that keeps every entry, for up to `capacity` tokens.
  std::unique_ptr<KvCache> make_full_cache(int64_t capacity) const {
    return std::make_unique<FullKvCache>(n_layer(), n_kv_head(), head_dim(), capacity);
  }
  // Tokens ids (n) at absolute positions pos .. pos+n-1, appended to `cache` (which holds what came before).
  // logits: (n, V) when all_logits, else (V) for the last token only. observer (may be null) sees each layer's
  // attention probabilities.
  virtual void forward(const int32_t* ids, int64_t n, int64_t pos, KvCache& cache, float* logits, bool all_logits,
                       const LayerObserver* observer = nullptr) = 0;
  // One new token for each of B independent sequences (1 <= B <= max_batch()): token ids[b] at position pos[b],
  // appended to *caches[b] (B distinct caches); logits (B, V). The default decodes the sequences one after another;
  // a decoder that reads each weight matrix once for all B (LlamaRunner) overrides it. Each sequence's logits
  // equal forward() on its own up to fp32 summation order.
  virtual void decode_batch(const int32_t* ids, const int64_t* pos, KvCache* const* caches, int64_t B, float* logits);
  // Largest n one forward() call takes (callers split longer runs), and largest B of decode_batch().
  virtual int64_t max_batch() const = 0;
  // The end-of-sequence id generation stops at; -1 when the model does not say (the tokenizer may).
  virtual int64_t eos_token_id() const { return -1; }
};

class Gpt2;
// GPT-2 as a Decoder: one token at a time through Gpt2::decode (its only cached path). The model must outlive it.
std::unique_ptr<Decoder> make_gpt2_decoder(Gpt2& model);

}  // namespace mnemo
