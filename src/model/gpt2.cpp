#include "model/gpt2.h"

#include <cmath>
#include <cstring>

#include "autograd/ops.h"
#include "base/error.h"
#include "base/rng.h"

namespace mnemo {

Gpt2::Gpt2(const Gpt2Config& config) : cfg_(config) {
  cfg_.validate("GPT-2 config");
  const int64_t C = cfg_.n_embd, V = cfg_.vocab_size, P = cfg_.n_positions, I = cfg_.inner();
  wte_ = params_.declare("transformer.wte.weight", {V, C});  // (V,C), also the LM head
  wpe_ = params_.declare("transformer.wpe.weight", {P, C});  // (P,C)
  for (int64_t l = 0; l < cfg_.n_layer; ++l) {
    const std::string p = cat("transformer.h.", l, ".");
    Block b;
    b.ln_1_w = params_.declare(p + "ln_1.weight", {C});
    b.ln_1_b = params_.declare(p + "ln_1.bias", {C});
    b.c_attn_w = params_.declare(p + "attn.c_attn.weight", {3 * C, C}, true);  // (3C,C); disk (C,3C)
    b.c_attn_b = params_.declare(p + "attn.c_attn.bias", {3 * C});
    b.attn_c_proj_w = params_.declare(p + "attn.c_proj.weight", {C, C}, true);
    b.attn_c_proj_b = params_.declare(p + "attn.c_proj.bias", {C});
    b.ln_2_w = params_.declare(p + "ln_2.weight", {C});
    b.ln_2_b = params_.declare(p + "ln_2.bias", {C});
    b.c_fc_w = params_.declare(p + "mlp.c_fc.weight", {I, C}, true);  // (I,C); disk (C,I)
    b.c_fc_b = params_.declare(p + "mlp.c_fc.bias", {I});
    b.mlp_c_proj_w = params_.declare(p + "mlp.c_proj.weight", {C, I}, true);  // (C,I); disk (I,C)
    b.mlp_c_proj_b = params_.declare(p + "mlp.c_proj.bias", {C});
    blocks_.push_back(b);
  }
  ln_f_w_ = params_.declare("transformer.ln_f.weight", {C});
  ln_f_b_ = params_.declare("transformer.ln_f.bias", {C});
  params_.allocate();
  for (auto i : {ln_f_w_}) params_[i].value.fill(1.0f);
  for (auto& b : blocks_) {
    params_[b.ln_1_w].value.fill(1.0f);
    params_[b.ln_2_w].value.fill(1.0f);
  }
  dx_.resize(size_t(C));
  dh_.resize(size_t(C));
  datt_.resize(size_t(C));
  dqkv_.resize(size_t(3 * C));
  dfc_.resize(size_t(I));
  dscores_.resize(size_t(cfg_.n_head * P));
}

void Gpt2::init_random(uint64_t seed) {
  Rng rng(seed);
  const float proj_std = 0.02f / std::sqrt(2.0f * float(cfg_.n_layer));
  for (auto& p : params_.all()) {
    const std::string& n = p.name;
    auto ends_with = [&](const char* s) {
      size_t k = std::strlen(s);
      return n.size() >= k && n.compare(n.size() - k, k, s) == 0;
    };
    if (n.find(".ln_") != std::string::npos) {
      p.value.fill(ends_with(".weight") ? 1.0f : 0.0f);
    } else if (ends_with(".bias")) {
      p.value.fill(0.0f);
    } else {
      const float sd = ends_with("c_proj.weight") ? proj_std : 0.02f;
      for (int64_t i = 0; i < p.value.numel(); ++i) p.value[i] = float(rng.normal()) * sd;
    }
  }
}

void Gpt2::check_input(const int32_t* ids, int64_t N, int64_t T) const {
  if (T > cfg_.n_positions)
    throw Error(cat("GPT-2: sequence of ", T, " tokens exceeds n_positions ", cfg_.n_positions));
  for (int64_t i = 0; i < N; ++i)
    if (ids[i] < 0 || ids[i] >= cfg_.vocab_size)
      throw Error(cat("GPT-2: token id ", ids[i], " at index ", i, " outside the vocabulary [0, ", cfg_.vocab_size,
                      ")"));
}

Var Gpt2::hidden_states(Tape& t, const int32_t* ids, int64_t B, int64_t T, const uint8_t* key_valid,
                        const LayerObserver* observer) {
  const int64_t N = B * T, C = cfg_.n_embd, H = cfg_.n_head;
  check_input(ids, N, T);
  auto P = [&](int64_t i) { return params_.var(t, i); };
  // Positions 0..T-1 in every row.
  auto* pos = static_cast<int32_t*>(t.alloc_bytes(size_t(N) * sizeof(int32_t)));  // (N)
  for (int64_t n = 0; n < N; ++n) pos[n] = int32_t(n % T);
  Var x = ag::add(t, ag::embedding(t, ids, N, P(wte_)), ag::embedding(t, pos, N, P(wpe_)));  // (N,C)
  AttentionShape s;
  s.B = B, s.Tq = T, s.Tk = T, s.H = H, s.Hkv = H, s.hs = C / H, s.causal = true;
  for (int64_t l = 0; l < cfg_.n_layer; ++l) {
    const Block& b = blocks_[size_t(l)];
    Var h = ag::layernorm(t, x, P(b.ln_1_w), P(b.ln_1_b), cfg_.layer_norm_epsilon);  // (N,C)
    Var qkv = ag::linear(t, h, P(b.c_attn_w), P(b.c_attn_b));                         // (N,3C)
    Var q = ag::slice_cols(t, qkv, 0, C), k = ag::slice_cols(t, qkv, C, 2 * C),
        v = ag::slice_cols(t, qkv, 2 * C, 3 * C);  // (N,C) each = (B,T,H,hs)
    AttentionObserver per_layer;
    if (observer) per_layer = [observer, l](const float* p, const AttentionShape& sh) { (*observer)(int(l), p, sh); };
    Var a = ag::attention(t, q, k, v, s, key_valid, observer ? &per_layer : nullptr);  // (N,C)
    x = ag::add(t, x, ag::linear(t, a, P(b.attn_c_proj_w), P(b.attn_c_proj_b)));
    h = ag::layernorm(t, x, P(b.ln_2_w), P(b.ln_2_b), cfg_.layer_norm_epsilon);
    Var f = ag::gelu(t, ag::linear(t, h, P(b.c_fc_w), P(b.c_fc_b)), cfg_.gelu());  // (N,I)
    x = ag::add(t, x, ag::linear(t, f, P(b.mlp_c_proj_w), P(b.mlp_c_proj_b)));
  }
  return ag::layernorm(t, x, P(ln_f_w_), P(ln_f_b_), cfg_.layer_norm_epsilon);
}

Var Gpt2::forward(Tape& t, const int32_t* ids, int64_t B, int64_t T, const uint8_t* key_valid,
                  const LayerObserver* observer) {
  Var h = hidden_states(t, ids, B, T, key_valid, observer);
  return ag::linear(t, h, params_.var(t, wte_), Var{});  // (N,V), tied head, no bias
}

Var Gpt2::lm_loss(Tape& t, const int32_t* ids, const int32_t* labels, int64_t B, int64_t T, Var* logits,
                  const uint8_t* key_valid) {
  Var lg = forward(t, ids, B, T, key_valid);
  auto* targets = static_cast<int32_t*>(t.alloc_bytes(size_t(B * T) * sizeof(int32_t)));  // (B*T)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < T; ++i) {
      int32_t y = i + 1 < T ? labels[b * T + i + 1] : -1;
      if (y >= cfg_.vocab_size) throw Error(cat("GPT-2: label ", y, " outside the vocabulary"));
      targets[b * T + i] = y < 0 ? -1 : y;
    }
  if (logits) *logits = lg;
  return ag::cross_entropy(t, lg, targets);
}

void Gpt2::decode(int32_t token, int64_t pos, KvCache& cache, float* logits, const LayerObserver* observer) {
  const int64_t C = cfg_.n_embd, H = cfg_.n_head, hs = C / H, I = cfg_.inner();
  check_input(&token, 1, pos + 1);
  const float eps = cfg_.layer_norm_epsilon;
  const Gelu g = cfg_.gelu();
  auto W = [&](int64_t i) { return params_[i].value.data(); };
  float *x = dx_.data(), *h = dh_.data(), *att = datt_.data(), *qkv = dqkv_.data(), *fc = dfc_.data();
  const float* te = W(wte_) + int64_t(token) * C;
  const float* pe = W(wpe_) + pos * C;
  for (int64_t c = 0; c < C; ++c) x[c] = te[c] + pe[c];  // (C)
  for (int64_t l = 0; l < cfg_.n_layer; ++l) {
    const Block& b = blocks_[size_t(l)];
    layernorm_forward(h, nullptr, nullptr, x, W(b.ln_1_w), W(b.ln_1_b), 1, C, eps);
    matvec(qkv, W(b.c_attn_w), h, W(b.c_attn_b), 3 * C, C);  // (3C) = q | k | v
    cache.append(int(l), pos, qkv + C, qkv + 2 * C);
    MNEMO_CHECK(cache.size(int(l)) <= cfg_.n_positions, "KV cache holds more than n_positions entries");
    cached_attention(att, dscores_.data(), qkv, cache, int(l), pos, H, H, hs, observer);
    matvec(h, W(b.attn_c_proj_w), att, W(b.attn_c_proj_b), C, C);
    for (int64_t c = 0; c < C; ++c) x[c] += h[c];
    layernorm_forward(h, nullptr, nullptr, x, W(b.ln_2_w), W(b.ln_2_b), 1, C, eps);
    matvec(fc, W(b.c_fc_w), h, W(b.c_fc_b), I, C);
    gelu_forward(fc, fc, I, g);  // element-wise, safe in place
    matvec(h, W(b.mlp_c_proj_w), fc, W(b.mlp_c_proj_b), C, I);
    for (int64_t c = 0; c < C; ++c) x[c] += h[c];
  }
  layernorm_forward(h, nullptr, nullptr, x, W(ln_f_w_), W(ln_f_b_), 1, C, eps);
  matvec(logits, W(wte_), h, nullptr, cfg_.vocab_size, C);
}

}  // namespace mnemo
