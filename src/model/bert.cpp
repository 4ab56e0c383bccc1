#include "model/bert.h"

#include <cstring>

#include "autograd/ops.h"
#include "base/error.h"
#include "base/rng.h"

namespace mnemo {

Bert::Bert(const BertConfig& config) : cfg_(config) {
  cfg_.validate("BERT config");
  const int64_t C = cfg_.hidden_size, I = cfg_.intermediate_size, V = cfg_.vocab_size;
  prefix_ = cfg_.head == BertHead::None ? "" : "bert.";
  const std::string e = prefix_ + "embeddings.";
  word_ = params_.declare(e + "word_embeddings.weight", {V, C});                                 // (V,C)
  pos_ = params_.declare(e + "position_embeddings.weight", {cfg_.max_position_embeddings, C});   // (P,C)
  type_ = params_.declare(e + "token_type_embeddings.weight", {cfg_.type_vocab_size, C});        // (TV,C)
  emb_ln_w_ = params_.declare(e + "LayerNorm.weight", {C});
  emb_ln_b_ = params_.declare(e + "LayerNorm.bias", {C});
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    const std::string p = cat(prefix_, "encoder.layer.", l, ".");
    Layer y;
    y.q_w = params_.declare(p + "attention.self.query.weight", {C, C});
    y.q_b = params_.declare(p + "attention.self.query.bias", {C});
    y.k_w = params_.declare(p + "attention.self.key.weight", {C, C});
    y.k_b = params_.declare(p + "attention.self.key.bias", {C});
    y.v_w = params_.declare(p + "attention.self.value.weight", {C, C});
    y.v_b = params_.declare(p + "attention.self.value.bias", {C});
    y.ao_w = params_.declare(p + "attention.output.dense.weight", {C, C});
    y.ao_b = params_.declare(p + "attention.output.dense.bias", {C});
    y.ao_ln_w = params_.declare(p + "attention.output.LayerNorm.weight", {C});
    y.ao_ln_b = params_.declare(p + "attention.output.LayerNorm.bias", {C});
    y.i_w = params_.declare(p + "intermediate.dense.weight", {I, C});  // (I,C)
    y.i_b = params_.declare(p + "intermediate.dense.bias", {I});
    y.o_w = params_.declare(p + "output.dense.weight", {C, I});  // (C,I)
    y.o_b = params_.declare(p + "output.dense.bias", {C});
    y.o_ln_w = params_.declare(p + "output.LayerNorm.weight", {C});
    y.o_ln_b = params_.declare(p + "output.LayerNorm.bias", {C});
    layers_.push_back(y);
  }
  if (cfg_.head != BertHead::MaskedLM) {
    pool_w_ = params_.declare(prefix_ + "pooler.dense.weight", {C, C});
    pool_b_ = params_.declare(prefix_ + "pooler.dense.bias", {C});
  }
  if (cfg_.head == BertHead::MaskedLM) {
    tr_w_ = params_.declare("cls.predictions.transform.dense.weight", {C, C});
    tr_b_ = params_.declare("cls.predictions.transform.dense.bias", {C});
    tr_ln_w_ = params_.declare("cls.predictions.transform.LayerNorm.weight", {C});
    tr_ln_b_ = params_.declare("cls.predictions.transform.LayerNorm.bias", {C});
    mlm_b_ = params_.declare("cls.predictions.bias", {V});  // decoder weight is the word embedding (tied)
  }
  if (cfg_.head == BertHead::SequenceClassification) {
    cls_w_ = params_.declare("classifier.weight", {cfg_.num_labels, C});
    cls_b_ = params_.declare("classifier.bias", {cfg_.num_labels});
  }
  params_.allocate();
  for (auto& p : params_.all())
    if (p.name.find("LayerNorm.weight") != std::string::npos) p.value.fill(1.0f);
}

void Bert::init_random(uint64_t seed) {
  Rng rng(seed);
  for (auto& p : params_.all()) {
    const std::string& n = p.name;
    const bool is_bias = n.size() >= 4 && n.compare(n.size() - 4, 4, "bias") == 0;
    if (n.find("LayerNorm") != std::string::npos) {
      p.value.fill(is_bias ? 0.0f : 1.0f);
    } else if (is_bias) {
      p.value.fill(0.0f);
    } else {
      for (int64_t i = 0; i < p.value.numel(); ++i) p.value[i] = float(rng.normal()) * 0.02f;
    }
  }
}

Var Bert::embed_words(Tape& t, const int32_t* ids, int64_t N) {
  for (int64_t i = 0; i < N; ++i)
    if (ids[i] < 0 || ids[i] >= cfg_.vocab_size)
      throw Error(cat("BERT: token id ", ids[i], " at index ", i, " outside the vocabulary [0, ", cfg_.vocab_size,
                      ")"));
  return ag::embedding(t, ids, N, params_.var(t, word_));  // (N,C)
}

Var Bert::encode(Tape& t, const int32_t* ids, const int32_t* token_types, const uint8_t* key_valid, int64_t B,
                 int64_t T, const LayerObserver* observer) {
  return encode_embeds(t, embed_words(t, ids, B * T), token_types, key_valid, B, T, observer);
}

Var Bert::encode_embeds(Tape& t, const Var& inputs_embeds, const int32_t* token_types, const uint8_t* key_valid,
                        int64_t B, int64_t T, const LayerObserver* observer) {
  const int64_t N = B * T, C = cfg_.hidden_size, H = cfg_.num_attention_heads;
  if (T > cfg_.max_position_embeddings)
    throw Error(cat("BERT: sequence of ", T, " tokens exceeds max_position_embeddings ",
                    cfg_.max_position_embeddings));
  MNEMO_CHECK(inputs_embeds.value.numel() == N * C, "BERT: inputs_embeds ", shape_str(inputs_embeds.shape()),
              " for B=", B, " T=", T);
  for (int64_t i = 0; token_types && i < N; ++i)
    if (token_types[i] < 0 || token_types[i] >= cfg_.type_vocab_size)
      throw Error(cat("BERT: token type ", token_types[i], " at index ", i, " outside [0, ", cfg_.type_vocab_size,
                      ")"));
  auto P = [&](int64_t i) { return params_.var(t, i); };
  auto* pos = static_cast<int32_t*>(t.alloc_bytes(size_t(N) * sizeof(int32_t)));    // (N)
  auto* types = static_cast<int32_t*>(t.alloc_bytes(size_t(N) * sizeof(int32_t)));  // (N)
  for (int64_t n = 0; n < N; ++n) {
    pos[n] = int32_t(n % T);
    types[n] = token_types ? token_types[n] : 0;
  }
  Var x = ag::add(t, inputs_embeds, ag::embedding(t, types, N, P(type_)));  // (N,C)
  x = ag::add(t, x, ag::embedding(t, pos, N, P(pos_)));
  x = ag::layernorm(t, x, P(emb_ln_w_), P(emb_ln_b_), cfg_.layer_norm_eps);
  AttentionShape s;
  s.B = B, s.Tq = T, s.Tk = T, s.H = H, s.Hkv = H, s.hs = C / H, s.causal = false;
  const Gelu g = cfg_.gelu();
  auto linear = [&](const Var& in, int64_t w, int64_t b) { return linears_(t, in, params_, w, b); };
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    const Layer& y = layers_[size_t(l)];
    const Tape::Mark layer_start = t.mark();
    Var q = linear(x, y.q_w, y.q_b);  // (N,C) = (B,T,H,hs)
    Var k = linear(x, y.k_w, y.k_b);
    Var v = linear(x, y.v_w, y.v_b);
    AttentionObserver per_layer;
    if (observer) per_layer = [observer, l](const float* p, const AttentionShape& sh) { (*observer)(int(l), p, sh); };
    Var a = ag::attention(t, q, k, v, s, key_valid, observer ? &per_layer : nullptr);  // (N,C)
    a = linear(a, y.ao_w, y.ao_b);
    x = ag::layernorm(t, ag::add(t, a, x), P(y.ao_ln_w), P(y.ao_ln_b), cfg_.layer_norm_eps);  // post-LN
    Var f = ag::gelu(t, linear(x, y.i_w, y.i_b), g);                                         // (N,I)
    f = linear(f, y.o_w, y.o_b);
    x = ag::layernorm(t, ag::add(t, f, x), P(y.o_ln_w), P(y.o_ln_b), cfg_.layer_norm_eps);
    // Inference: only x outlives the layer; its temporaries (~20 (N,C) buffers and the (B,H,T,T) probabilities)
    // are given back, so every layer reuses the first one's memory, already faulted in and warm in cache.
    if (!t.recording()) x = t.release(layer_start, x);
  }
  return x;
}

void Bert::set_precision(Precision p) {
  std::vector<int64_t> weights;
  for (const Layer& y : layers_) weights.insert(weights.end(), {y.q_w, y.k_w, y.v_w, y.ao_w, y.i_w, y.o_w});
  linears_.set(p, params_, weights);
}

Var Bert::pool(Tape& t, const Var& hidden, int64_t B, int64_t T) {
  MNEMO_CHECK(pool_w_ >= 0, "BERT pooler needs a BertModel or BertForSequenceClassification config");
  std::vector<int64_t> rows(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) rows[size_t(b)] = b * T;  // [CLS] is the first token of each sequence
  Var cls = ag::select_rows(t, hidden, rows);                // (B,C)
  return ag::tanh(t, ag::linear(t, cls, params_.var(t, pool_w_), params_.var(t, pool_b_)));
}

Var Bert::mlm_logits(Tape& t, const Var& hidden) {
  MNEMO_CHECK(tr_w_ >= 0, "BERT MLM head needs a BertForMaskedLM config");
  auto P = [&](int64_t i) { return params_.var(t, i); };
  Var h = ag::gelu(t, ag::linear(t, hidden, P(tr_w_), P(tr_b_)), cfg_.gelu());
  h = ag::layernorm(t, h, P(tr_ln_w_), P(tr_ln_b_), cfg_.layer_norm_eps);
  return ag::linear(t, h, P(word_), P(mlm_b_));  // (N,V), decoder tied to the word embeddings
}

Var Bert::classify(Tape& t, const Var& hidden, int64_t B, int64_t T) {
  MNEMO_CHECK(cls_w_ >= 0, "BERT classifier needs a BertForSequenceClassification config");
  Var pooled = pool(t, hidden, B, T);  // (B,C)
  return ag::linear(t, pooled, params_.var(t, cls_w_), params_.var(t, cls_b_));  // (B, num_labels)
}

}  // namespace mnemo
