#pragma once
// The key/value cache a decoder reads while generating one token at a time. The attention layer only talks to
// this interface: it appends the new token's key and value, reads the entries held, and shows the cache the
// attention its query paid to them (so a policy can score entries). What is held — everything, a window, the
// tokens an eviction policy keeps — is the implementation's business (src/memory adds those behind the same
// interface). FullKvCache keeps every entry up to a fixed capacity.
//
// Layout per layer and kv head: keys and values are (n, hs) row blocks with a row stride of hs, so a head's
// scores are one matvec over its keys. Rows need not be in arrival order (a bounded cache puts a new entry where
// an evicted one was); what attention needs is the positions of the rows, and that the entries appended by the
// current forward call are the last rows, in order (so a run of tokens can mask causally by row index).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mnemo {

class KvCache {
 public:
  virtual ~KvCache() = default;
  // Forget everything (a new sequence).
  virtual void reset() = 0;
  // Add the token at absolute position `pos` to `layer`: k, v (Hkv*hs), head-major. A bounded cache may evict
  // here first; append must leave room for the new entry or throw.
  virtual void append(int layer, int64_t pos, const float* k, const float* v) = 0;
  // Entries held in `layer` (after append, this includes the new token).
  virtual int64_t size(int layer) const = 0;
  // Keys / values of kv head h in `layer`: (size, hs), contiguous.
  virtual const float* keys(int layer, int64_t h) const = 0;
  virtual const float* values(int layer, int64_t h) const = 0;
  // Positions (as rotated into the keys) of kv head h's rows in `layer` (size).
  virtual const int64_t* positions(int layer, int64_t h) const = 0;
  // The current query's attention over the held entries, probs (H, size) for H query heads. Default: ignored.
  virtual void observe(int layer, const float* probs, int64_t H) {
    (void)layer, (void)probs, (void)H;
  }
};

// Keeps every entry; capacity fixed up front (one allocation), append throws when full.
class FullKvCache : public KvCache {
 public:
  FullKvCache(int n_layer, int64_t Hkv, int64_t hs, int64_t capacity);
  void reset() override;
  void append(int layer, int64_t pos, const float* k, const float* v) override;
  int64_t size(int layer) const override { return size_[size_t(layer)]; }
  const float* keys(int layer, int64_t h) const override;
  const float* values(int layer, int64_t h) const override;
  const int64_t* positions(int layer, int64_t) const override { return pos_.data() + size_t(layer) * size_t(cap_); }
  int64_t capacity() const { return cap_; }

 private:
  int n_layer_;
  int64_t Hkv_, hs_, cap_;
  std::vector<float> k_, v_;       // (L, Hkv, cap, hs) each
  std::vector<int64_t> pos_;       // (L, cap)
  std::vector<int64_t> size_;      // (L)
};

}  // namespace mnemo
