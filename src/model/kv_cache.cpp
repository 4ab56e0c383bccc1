#include "model/kv_cache.h"

#include <cstring>

#include "base/error.h"

namespace mnemo {

FullKvCache::FullKvCache(int n_layer, int64_t Hkv, int64_t hs, int64_t capacity)
    : n_layer_(n_layer), Hkv_(Hkv), hs_(hs), cap_(capacity) {
  MNEMO_CHECK(n_layer > 0 && Hkv > 0 && hs > 0 && capacity > 0, "FullKvCache shape");
  const size_t n = size_t(n_layer) * size_t(Hkv) * size_t(capacity) * size_t(hs);
  k_.assign(n, 0.0f);
  v_.assign(n, 0.0f);
  pos_.assign(size_t(n_layer) * size_t(capacity), 0);
  size_.assign(size_t(n_layer), 0);
}

void FullKvCache::reset() { std::fill(size_.begin(), size_.end(), 0); }

void FullKvCache::append(int layer, int64_t pos, const float* k, const float* v) {
  MNEMO_CHECK(layer >= 0 && layer < n_layer_, "layer ", layer);
  int64_t& n = size_[size_t(layer)];
  if (n >= cap_) throw Error(cat("KV cache full: ", cap_, " entries in layer ", layer, " (a full cache keeps all)"));
  for (int64_t h = 0; h < Hkv_; ++h) {
    size_t row = ((size_t(layer) * size_t(Hkv_) + size_t(h)) * size_t(cap_) + size_t(n)) * size_t(hs_);
    std::memcpy(k_.data() + row, k + h * hs_, size_t(hs_) * sizeof(float));
    std::memcpy(v_.data() + row, v + h * hs_, size_t(hs_) * sizeof(float));
  }
  pos_[size_t(layer) * size_t(cap_) + size_t(n)] = pos;
  ++n;
}

const float* FullKvCache::keys(int layer, int64_t h) const {
  return k_.data() + (size_t(layer) * size_t(Hkv_) + size_t(h)) * size_t(cap_) * size_t(hs_);
}

const float* FullKvCache::values(int layer, int64_t h) const {
  return v_.data() + (size_t(layer) * size_t(Hkv_) + size_t(h)) * size_t(cap_) * size_t(hs_);
}

}  // namespace mnemo
