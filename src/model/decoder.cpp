#include "model/decoder.h"

#include "base/error.h"
#include "model/gpt2.h"

namespace mnemo {

void Decoder::decode_batch(const int32_t* ids, const int64_t* pos, KvCache* const* caches, int64_t B, float* logits) {
  if (B <= 0 || B > max_batch()) throw Error(cat("decode_batch: ", B, " sequences (1 to ", max_batch(), ")"));
  for (int64_t b = 0; b < B; ++b) forward(ids + b, 1, pos[b], *caches[b], logits + b * vocab_size(), false);
}

namespace {

class Gpt2Decoder : public Decoder {
 public:
  explicit Gpt2Decoder(Gpt2& m) : m_(m) {}
  int64_t vocab_size() const override { return m_.config().vocab_size; }
  int64_t context_length() const override { return m_.config().n_positions; }
  int n_layer() const override { return int(m_.config().n_layer); }
  int64_t n_kv_head() const override { return m_.config().n_head; }
  int64_t head_dim() const override { return m_.config().n_embd / m_.config().n_head; }
  int64_t max_batch() const override { return 512; }
  void forward(const int32_t* ids, int64_t n, int64_t pos, KvCache& cache, float* logits, bool all_logits,
               const LayerObserver* observer) override {
    if (n <= 0 || n > max_batch()) throw Error(cat("GPT-2: ", n, " tokens in one call (1 to ", max_batch(), ")"));
    const int64_t V = vocab_size();
    for (int64_t i = 0; i < n; ++i) {
      // Every token's logits land in its row; without all_logits each overwrites the single row.
      float* out = logits + (all_logits ? i * V : 0);
      m_.decode(ids[i], pos + i, cache, out, observer);
    }
  }

 private:
  Gpt2& m_;
};

}  // namespace

std::unique_ptr<Decoder> make_gpt2_decoder(Gpt2& model) { return std::make_unique<Gpt2Decoder>(model); }

}  // namespace mnemo
