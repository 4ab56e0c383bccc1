#include "model/llama.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "autograd/ops.h"
#include "base/error.h"
#include "base/rng.h"
#include "base/thread_pool.h"
#include "model/config.h"
#include "tensor/kernels.h"
#include "tensor/llama_kernels.h"
#include "tensor/quant_matmat.h"

namespace mnemo {

// ---------------------------------------------------------------- config

LlamaConfig LlamaConfig::from_json(const Json& j, const std::string& source) {
  if (!j.is_object()) throw Error(cat(source, ": expected a JSON object"));
  LlamaConfig c;
  c.num_hidden_layers = config_int(j, "num_hidden_layers", c.num_hidden_layers, source);
  c.hidden_size = config_int(j, "hidden_size", c.hidden_size, source);
  c.num_attention_heads = config_int(j, "num_attention_heads", c.num_attention_heads, source);
  c.num_key_value_heads = config_int(j, "num_key_value_heads", c.num_attention_heads, source);
  c.head_dim = config_int(j, "head_dim", 0, source);
  c.intermediate_size = config_int(j, "intermediate_size", c.intermediate_size, source);
  c.vocab_size = config_int(j, "vocab_size", c.vocab_size, source);
  c.max_position_embeddings = config_int(j, "max_position_embeddings", c.max_position_embeddings, source);
  c.rms_norm_eps = config_float(j, "rms_norm_eps", 1e-6f, source);
  c.rope_theta = config_float(j, "rope_theta", 10000.0f, source);
  c.bos_token_id = config_int(j, "bos_token_id", c.bos_token_id, source);
  c.eos_token_id = j.find("eos_token_id") && j.find("eos_token_id")->is_array()
                       ? (*j.find("eos_token_id")).as_array().at(0).as_int("eos_token_id")
                       : config_int(j, "eos_token_id", c.eos_token_id, source);
  if (const Json* t = j.find("tie_word_embeddings"); t && !t->is_null()) {
    if (!t->is_bool()) throw Error(cat(source, ": tie_word_embeddings must be true or false"));
    c.tie_word_embeddings = t->as_bool();
  } else {
    c.tie_word_embeddings = false;  // transformers' default for Llama
  }
  if (const Json* rs = j.find("rope_scaling"); rs && !rs->is_null()) {
    if (!rs->is_object()) throw Error(cat(source, ": rope_scaling must be an object or null"));
    std::string type = rs->string_or("rope_type", rs->string_or("type", ""));
    if (type == "linear") {
      c.rope_linear_factor = config_float(*rs, "factor", 1.0f, source + ": rope_scaling");
    } else if (type != "default") {
      throw Error(cat(source, ": rope_scaling type \"", type, "\" is not supported (linear only)"));
    }
  }
  if (const Json* b = j.find("attention_bias"); b && b->is_bool() && b->as_bool())
    throw Error(cat(source, ": attention_bias true is not supported"));
  if (const Json* b = j.find("mlp_bias"); b && b->is_bool() && b->as_bool())
    throw Error(cat(source, ": mlp_bias true is not supported"));
  if (const Json* a = j.find("hidden_act"); a && a->is_string() && a->as_string() != "silu")
    throw Error(cat(source, ": hidden_act \"", a->as_string(), "\" is not supported (silu only)"));
  c.validate(source);
  return c;
}

Json LlamaConfig::to_json() const {
  Json j = Json::object();
  j["architectures"] = Json(Json::Array{Json("LlamaForCausalLM")});
  j["model_type"] = "llama";
  j["num_hidden_layers"] = num_hidden_layers;
  j["hidden_size"] = hidden_size;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = hd();
  j["intermediate_size"] = intermediate_size;
  j["vocab_size"] = vocab_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = double(rms_norm_eps);
  j["rope_theta"] = double(rope_theta);
  if (rope_linear_factor != 1.0f) {
    Json rs = Json::object();
    rs["rope_type"] = "linear";
    rs["factor"] = double(rope_linear_factor);
    j["rope_scaling"] = rs;
  } else {
    j["rope_scaling"] = Json();
  }
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["bos_token_id"] = bos_token_id;
  j["eos_token_id"] = eos_token_id;
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  j["mlp_bias"] = false;
  j["torch_dtype"] = "float32";
  return j;
}

void LlamaConfig::validate(const std::string& source) const {
  auto positive = [&](int64_t v, const char* name) {
    if (v <= 0) throw Error(cat(source, ": ", name, " must be positive, got ", v));
  };
  positive(num_hidden_layers, "num_hidden_layers");
  positive(hidden_size, "hidden_size");
  positive(num_attention_heads, "num_attention_heads");
  positive(num_key_value_heads, "num_key_value_heads");
  positive(intermediate_size, "intermediate_size");
  positive(vocab_size, "vocab_size");
  positive(max_position_embeddings, "max_position_embeddings");
  if (head_dim < 0) throw Error(cat(source, ": head_dim must be positive, got ", head_dim));
  if (!head_dim && hidden_size % num_attention_heads)
    throw Error(cat(source, ": num_attention_heads ", num_attention_heads, " does not divide hidden_size ",
                    hidden_size));
  if (num_attention_heads % num_key_value_heads)
    throw Error(cat(source, ": num_key_value_heads ", num_key_value_heads, " does not divide num_attention_heads ",
                    num_attention_heads));
  if (hd() % 2) throw Error(cat(source, ": head_dim ", hd(), " must be even (rotary pairs)"));
  if (!(rms_norm_eps > 0)) throw Error(cat(source, ": rms_norm_eps must be positive"));
  if (!(rope_theta > 0)) throw Error(cat(source, ": rope_theta must be positive"));
  if (!(rope_linear_factor > 0)) throw Error(cat(source, ": rope_scaling factor must be positive"));
}

std::vector<std::pair<std::string, Shape>> llama_parameter_shapes(const LlamaConfig& c) {
  const int64_t C = c.hidden_size, hd = c.hd(), H = c.num_attention_heads, Hkv = c.num_key_value_heads;
  const int64_t I = c.intermediate_size, V = c.vocab_size;
  std::vector<std::pair<std::string, Shape>> out;
  out.push_back({"model.embed_tokens.weight", {V, C}});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = cat("model.layers.", l, ".");
    out.push_back({p + "input_layernorm.weight", {C}});
    out.push_back({p + "self_attn.q_proj.weight", {H * hd, C}});
    out.push_back({p + "self_attn.k_proj.weight", {Hkv * hd, C}});
    out.push_back({p + "self_attn.v_proj.weight", {Hkv * hd, C}});
    out.push_back({p + "self_attn.o_proj.weight", {C, H * hd}});
    out.push_back({p + "post_attention_layernorm.weight", {C}});
    out.push_back({p + "mlp.gate_proj.weight", {I, C}});
    out.push_back({p + "mlp.up_proj.weight", {I, C}});
    out.push_back({p + "mlp.down_proj.weight", {C, I}});
  }
  out.push_back({"model.norm.weight", {C}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {V, C}});
  return out;
}

// ---------------------------------------------------------------- inference

namespace {
constexpr int64_t kWeightChunk = int64_t(1) << 20;  // floats of dequantized weight rows per GEMM (4 MB)
// Up to this many rows (tokens of one run, or sequences of a batched decode step) a projection reads each weight
// row once for all rows (quant_matmat); beyond it, dequantized blocks of rows and a GEMM are faster.
constexpr int64_t kFewRows = 16;
}  // namespace

LlamaRunner::LlamaRunner(const LlamaConfig& cfg, LlamaWeights weights, int64_t max_batch, int64_t max_context)
    : cfg_(cfg), w_(std::move(weights)), max_batch_(max_batch),
      max_ctx_(max_context > 0 ? max_context : cfg.max_position_embeddings) {
  cfg_.validate("Llama config");
  MNEMO_CHECK(max_batch_ > 0 && int64_t(w_.layers.size()) == cfg_.num_hidden_layers, "LlamaRunner weights");
  const int64_t B = max_batch_, C = cfg_.hidden_size, hd = cfg_.hd(), H = cfg_.num_attention_heads;
  const int64_t Hkv = cfg_.num_key_value_heads, I = cfg_.intermediate_size;
  inv_freq_.resize(size_t(hd / 2));
  rope_inv_freq(inv_freq_.data(), hd, cfg_.rope_theta, cfg_.rope_linear_factor);
  x_.resize(size_t(B * C));
  h_.resize(size_t(B * std::max(C, H * hd)));
  att_.resize(size_t(B * H * hd));
  q_.resize(size_t(B * H * hd));
  k_.resize(size_t(B * Hkv * hd));
  v_.resize(size_t(B * Hkv * hd));
  gate_.resize(size_t(B * I));
  up_.resize(size_t(B * I));
  cos_.resize(size_t(B * hd / 2));
  sin_.resize(size_t(B * hd / 2));
  // Decode: (H, ctx) probabilities; prefill: (B, ctx) per head plus the last rows (H, ctx) for the cache.
  scores_.resize(size_t((B + H) * max_ctx_));
  wbuf_.resize(size_t(std::max<int64_t>(kWeightChunk, C)));
  pos_.resize(size_t(B));
}

void LlamaRunner::linear(float* out, const float* x, const WeightRef& W, int64_t n) {
  const int64_t rows = W.rows, cols = W.cols;
  if (n == 1) return decode_matvec(W.type, out, W.data, x, rows, cols);
  if (W.type == QType::F32) return linear_forward(out, x, static_cast<const float*>(W.data), nullptr, n, cols, rows);
  const int64_t chunk = std::max<int64_t>(1, kWeightChunk / cols), rb = row_bytes(W.type, cols);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t r = std::min(chunk, rows - r0);
    dequantize_rows(W.type, static_cast<const char*>(W.data) + r0 * rb, wbuf_.data(), r, cols);  // (r, cols)
    gemm(false, true, n, r, cols, 1.0f, x, cols, wbuf_.data(), cols, 0.0f, out + r0, rows);
  }
}

void LlamaRunner::attention(float* out, const float* q, int64_t n, int64_t pos, KvCache& cache, int layer,
                            const LayerObserver* observer) {
  const int64_t H = cfg_.num_attention_heads, Hkv = cfg_.num_key_value_heads, hd = cfg_.hd(), G = H / Hkv;
  const int64_t N = cache.size(layer);
  if (N > max_ctx_)
    throw Error(cat("Llama: the KV cache holds ", N, " entries, more than the ", max_ctx_, " this runner was sized for"));
  if (n == 1) return cached_attention(out, scores_.data(), q, cache, layer, pos, H, Hkv, hd, observer);
  const float scale = 1.0f / std::sqrt(float(hd));
  // Query i (at position pos + i) sees the entries of earlier steps and the run's own up to itself. The run's
  // entries are the last n rows, in order (KvCache's contract; earlier rows may be in any order), so that is the
  // prefix of N - n + i + 1 rows (a decode step sees every row).
  for (int64_t g = 0; g < Hkv; ++g) {
    const int64_t* P = cache.positions(layer, g);  // (N)
    for (int64_t j = 0; j < N; ++j)
      MNEMO_CHECK(j < N - n ? P[j] < pos : P[j] == pos + j - (N - n), "Llama: KV cache row ", j, " at position ",
                  P[j], " in a run of ", n, " tokens from ", pos);
  }
  auto visible = [&](int64_t i) { return N - n + i + 1; };
  AttentionShape shape;
  shape.B = 1, shape.Tq = n, shape.Tk = N, shape.H = H, shape.Hkv = Hkv, shape.hs = hd, shape.q_offset = pos;
  shape.causal = true;

  // A run of n tokens: per query head, S (n, N) = Q_h K^T by GEMM, masked softmax per row, O_h = S V.
  // With an observer every head's probabilities are kept (H, n, N) (a buffer that only grows: the H2O policy
  // observes every prompt chunk).
  std::vector<float>& all = observed_;
  if (observer && all.size() < size_t(H * n * N)) all.resize(size_t(H * n * N));
  float* last = scores_.data() + max_batch_ * max_ctx_;  // (H, N): the last query row of each head
  for (int64_t h = 0; h < H; ++h) {
    const int64_t g = h / G;
    float* s = observer ? all.data() + h * n * N : scores_.data();  // (n, N)
    gemm(false, true, n, N, hd, scale, q + h * hd, H * hd, cache.keys(layer, g), hd, 0.0f, s, N);
    for (int64_t i = 0; i < n; ++i) attn_softmax(s + i * N, visible(i), N);
    gemm(false, false, n, hd, N, 1.0f, s, N, cache.values(layer, g), hd, 0.0f, out + h * hd, H * hd);
    std::memcpy(last + h * N, s + (n - 1) * N, size_t(N) * sizeof(float));
  }
  cache.observe(layer, last, H);
  if (observer) (*observer)(layer, all.data(), shape);
}

namespace {

// Rows [split(rows, ith, nth), split(rows, ith + 1, nth)) of a matrix are worker ith's.
inline int64_t split(int64_t rows, int ith, int nth) { return rows * ith / nth; }

}  // namespace

void LlamaRunner::project(std::initializer_list<std::pair<const WeightRef*, float*>> mats, const float* x, int64_t n) {
  if (n > kFewRows) {
    for (const auto& [W, y] : mats) linear(y, x, *W, n);
    return;
  }
  // One pool wake for several matrices that read the same input (q, k, v; gate, up); each worker takes the same
  // share of rows of every matrix, so each output row is computed by one worker in a fixed order.
  parallel_run([&](int ith, int nth) {
    for (const auto& [W, y] : mats) {
      const int64_t r0 = split(W->rows, ith, nth), r1 = split(W->rows, ith + 1, nth);
      if (r1 <= r0) continue;
      const char* rows = static_cast<const char*>(W->data) + r0 * row_bytes(W->type, W->cols);
      if (n == 1) {
        decode_matvec(W->type, y + r0, rows, x, r1 - r0, W->cols);
      } else {  // a few sequences' tokens: each weight row read and decoded once for all n
        quant_matmat(W->type, y + r0, W->rows, rows, x, r1 - r0, W->cols, n);
      }
    }
  });
}

void LlamaRunner::embed(const int32_t* ids, int64_t n) {
  const int64_t C = cfg_.hidden_size, V = cfg_.vocab_size, erb = row_bytes(w_.embed.type, C);
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= V) throw Error(cat("Llama: token id ", ids[i], " outside the vocabulary of ", V));
    dequantize_row(w_.embed.type, static_cast<const char*>(w_.embed.data) + ids[i] * erb, x_.data() + i * C, C);
  }
}

void LlamaRunner::blocks(int64_t n, const std::function<void(int layer)>& attend) {
  const int64_t C = cfg_.hidden_size, hd = cfg_.hd(), H = cfg_.num_attention_heads, Hkv = cfg_.num_key_value_heads;
  const int64_t I = cfg_.intermediate_size;
  float *x = x_.data(), *h = h_.data(), *q = q_.data(), *k = k_.data(), *v = v_.data();
  rope_tables(cos_.data(), sin_.data(), pos_.data(), inv_freq_.data(), n, hd / 2);  // (n, hd/2) each
  const float eps = cfg_.rms_norm_eps;
  for (int l = 0; l < n_layer(); ++l) {
    const LlamaWeights::Layer& L = w_.layers[size_t(l)];
    rmsnorm_forward(h, nullptr, x, L.attn_norm, n, C, eps);  // (n, C)
    project({{&L.q, q}, {&L.k, k}, {&L.v, v}}, h, n);  // (n, H*hd), (n, Hkv*hd) x2
    rope_forward(q, q, cos_.data(), sin_.data(), n, H, hd);
    rope_forward(k, k, cos_.data(), sin_.data(), n, Hkv, hd);
    attend(l);                      // att_ (n, H*hd) from q, k, v and the cache(s)
    project({{&L.o, h}}, att_.data(), n);  // (n, C)
    for (int64_t i = 0; i < n * C; ++i) x[i] += h[i];
    rmsnorm_forward(h, nullptr, x, L.ffn_norm, n, C, eps);
    project({{&L.gate, gate_.data()}, {&L.up, up_.data()}}, h, n);  // (n, I) x2
    swiglu_forward(gate_.data(), gate_.data(), up_.data(), n * I);
    project({{&L.down, h}}, gate_.data(), n);  // (n, C)
    for (int64_t i = 0; i < n * C; ++i) x[i] += h[i];
  }
}

void LlamaRunner::forward(const int32_t* ids, int64_t n, int64_t pos, KvCache& cache, float* logits, bool all_logits,
                          const LayerObserver* observer) {
  const int64_t C = cfg_.hidden_size, kvw = cfg_.num_key_value_heads * cfg_.hd();
  if (n <= 0 || n > max_batch_) throw Error(cat("Llama: ", n, " tokens in one call (1 to ", max_batch_, ")"));
  if (pos < 0) throw Error(cat("Llama: negative position ", pos));
  embed(ids, n);  // x_ (n, C)
  for (int64_t i = 0; i < n; ++i) pos_[size_t(i)] = pos + i;
  blocks(n, [&](int l) {
    for (int64_t i = 0; i < n; ++i) cache.append(l, pos + i, k_.data() + i * kvw, v_.data() + i * kvw);
    attention(att_.data(), q_.data(), n, pos, cache, l, observer);  // (n, H*hd)
  });
  float* x = x_.data();
  if (all_logits) {
    rmsnorm_forward(x, nullptr, x, w_.norm, n, C, cfg_.rms_norm_eps);
    project({{&w_.lm_head, logits}}, x, n);  // (n, V)
  } else {
    float* last = x + (n - 1) * C;
    rmsnorm_forward(last, nullptr, last, w_.norm, 1, C, cfg_.rms_norm_eps);
    project({{&w_.lm_head, logits}}, last, 1);  // (V)
  }
}

void LlamaRunner::decode_batch(const int32_t* ids, const int64_t* pos, KvCache* const* caches, int64_t B,
                               float* logits) {
  const int64_t C = cfg_.hidden_size, qw = cfg_.num_attention_heads * cfg_.hd();
  const int64_t kvw = cfg_.num_key_value_heads * cfg_.hd();
  if (B <= 0 || B > max_batch_) throw Error(cat("Llama: ", B, " sequences in one step (1 to ", max_batch_, ")"));
  for (int64_t b = 0; b < B; ++b) {
    if (pos[b] < 0) throw Error(cat("Llama: negative position ", pos[b]));
    for (int64_t c = 0; c < b; ++c) MNEMO_CHECK(caches[b] != caches[c], "decode_batch: sequences share a cache");
  }
  embed(ids, B);  // x_ (B, C): one token per sequence
  std::copy(pos, pos + B, pos_.begin());
  blocks(B, [&](int l) {
    for (int64_t b = 0; b < B; ++b) {
      caches[b]->append(l, pos[b], k_.data() + b * kvw, v_.data() + b * kvw);
      attention(att_.data() + b * qw, q_.data() + b * qw, 1, pos[b], *caches[b], l, nullptr);  // (H*hd)
    }
  });
  rmsnorm_forward(x_.data(), nullptr, x_.data(), w_.norm, B, C, cfg_.rms_norm_eps);
  project({{&w_.lm_head, logits}}, x_.data(), B);  // (B, V)
}

// ---------------------------------------------------------------- training (autograd tape)

namespace {

float* grad_or_null(const Var& v) { return v.needs_grad() ? const_cast<float*>(v.grad.data()) : nullptr; }

// RMSNorm over the last dim of x (N, C) with weight (C).
Var rmsnorm(Tape& t, const Var& x, const Var& w, float eps) {
  const int64_t C = x.value.dim(-1), N = x.value.numel() / C;
  Var out = t.output(x.shape(), x.needs_grad() || w.needs_grad());  // (N, C)
  if (!out.needs_grad()) {
    rmsnorm_forward(out.data(), nullptr, x.data(), w.data(), N, C, eps);
    return out;
  }
  Tensor rstd = t.alloc({N});  // (N), saved for backward
  rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, eps);
  t.record([out, x, w, rstd, N, C]() {
    rmsnorm_backward(grad_or_null(x), grad_or_null(w), out.grad.data(), x.data(), w.data(), rstd.data(), N, C);
  });
  return out;
}

// x (N, heads*hs) rotated by the tables cos, sin (N, hs/2).
Var rope(Tape& t, const Var& x, const Tensor& cos, const Tensor& sin, int64_t heads, int64_t hs) {
  const int64_t N = x.value.numel() / (heads * hs);
  Var out = t.output(x.shape(), x.needs_grad());
  rope_forward(out.data(), x.data(), cos.data(), sin.data(), N, heads, hs);
  if (out.needs_grad()) {
    t.record([out, x, cos, sin, N, heads, hs]() {
      rope_backward(const_cast<float*>(x.grad.data()), out.grad.data(), cos.data(), sin.data(), N, heads, hs);
    });
  }
  return out;
}

Var swiglu(Tape& t, const Var& gate, const Var& up) {
  Var out = t.output(gate.shape(), gate.needs_grad() || up.needs_grad());
  const int64_t n = gate.value.numel();
  swiglu_forward(out.data(), gate.data(), up.data(), n);
  if (out.needs_grad()) {
    t.record([out, gate, up, n]() {
      swiglu_backward(grad_or_null(gate), grad_or_null(up), out.grad.data(), gate.data(), up.data(), n);
    });
  }
  return out;
}

}  // namespace

Llama::Llama(const LlamaConfig& config) : cfg_(config) {
  cfg_.validate("Llama config");
  auto shapes = llama_parameter_shapes(cfg_);
  std::vector<int64_t> idx;
  for (auto& [name, shape] : shapes) idx.push_back(params_.declare(name, shape));
  params_.allocate();
  size_t i = 0;
  embed_ = idx[i++];
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    Block b;
    b.attn_norm = idx[i++], b.q = idx[i++], b.k = idx[i++], b.v = idx[i++], b.o = idx[i++];
    b.ffn_norm = idx[i++], b.gate = idx[i++], b.up = idx[i++], b.down = idx[i++];
    blocks_.push_back(b);
  }
  norm_ = idx[i++];
  lm_head_ = cfg_.tie_word_embeddings ? embed_ : idx[i++];
}

void Llama::init_random(uint64_t seed) {
  Rng rng(seed);
  for (auto& p : params_.all()) {
    float* d = p.value.data();
    if (p.value.rank() == 1) {
      std::fill(d, d + p.value.numel(), 1.0f);
    } else {
      for (int64_t i = 0; i < p.value.numel(); ++i) d[i] = float(rng.normal() * 0.02);
    }
  }
}

void Llama::set_precision(Precision p) {
  std::vector<int64_t> weights;
  for (const Block& b : blocks_) weights.insert(weights.end(), {b.q, b.k, b.v, b.o, b.gate, b.up, b.down});
  linears_.set(p, params_, weights);
}

Var Llama::embed(Tape& t, const int32_t* ids, int64_t N) {
  for (int64_t i = 0; i < N; ++i)
    if (ids[i] < 0 || ids[i] >= cfg_.vocab_size)
      throw Error(cat("Llama: token id ", ids[i], " outside the vocabulary of ", cfg_.vocab_size));
  return ag::embedding(t, ids, N, params_.var(t, embed_));  // (N, C)
}

Var Llama::forward_embedded(Tape& t, const Var& x0, int64_t B, int64_t T, const uint8_t* key_valid,
                            const AttentionObserver* observer) {
  const int64_t C = cfg_.hidden_size, hd = cfg_.hd(), H = cfg_.num_attention_heads, Hkv = cfg_.num_key_value_heads;
  const int64_t N = B * T;
  MNEMO_CHECK(x0.value.numel() == N * C, "Llama::forward_embedded: x ", shape_str(x0.shape()), " for B=", B,
              " T=", T);
  // Rotary tables for positions 0..T-1 of every row.
  auto* pos = static_cast<int64_t*>(t.alloc_bytes(size_t(N) * sizeof(int64_t)));  // (N)
  for (int64_t i = 0; i < N; ++i) pos[i] = i % T;
  std::vector<float> inv(size_t(hd / 2));
  rope_inv_freq(inv.data(), hd, cfg_.rope_theta, cfg_.rope_linear_factor);
  Tensor cos = t.alloc({N, hd / 2}), sin = t.alloc({N, hd / 2});  // (N, hd/2) each
  rope_tables(cos.data(), sin.data(), pos, inv.data(), N, hd / 2);

  Var x = x0;  // (N, C)
  AttentionShape s;
  s.B = B, s.Tq = T, s.Tk = T, s.H = H, s.Hkv = Hkv, s.hs = hd, s.causal = true;
  auto linear = [&](const Var& in, int64_t w) { return linears_(t, in, params_, w, -1); };
  for (const Block& b : blocks_) {
    Var h = rmsnorm(t, x, params_.var(t, b.attn_norm), cfg_.rms_norm_eps);
    Var q = rope(t, linear(h, b.q), cos, sin, H, hd);    // (N, H*hd)
    Var k = rope(t, linear(h, b.k), cos, sin, Hkv, hd);  // (N, Hkv*hd)
    Var v = linear(h, b.v);                              // (N, Hkv*hd)
    Var a = ag::attention(t, q, k, v, s, key_valid, observer);  // (N, H*hd)
    x = ag::add(t, x, linear(a, b.o));
    h = rmsnorm(t, x, params_.var(t, b.ffn_norm), cfg_.rms_norm_eps);
    Var m = swiglu(t, linear(h, b.gate), linear(h, b.up));
    x = ag::add(t, x, linear(m, b.down));  // (N, C)
  }
  return rmsnorm(t, x, params_.var(t, norm_), cfg_.rms_norm_eps);
}

Var Llama::lm_head(Tape& t, const Var& hidden) {
  return ag::linear(t, hidden, params_.var(t, lm_head_), Var{});  // (N, V)
}

Var Llama::forward(Tape& t, const int32_t* ids, int64_t B, int64_t T, const AttentionObserver* observer) {
  return lm_head(t, forward_embedded(t, embed(t, ids, B * T), B, T, nullptr, observer));
}

Var Llama::lm_loss(Tape& t, const int32_t* ids, const int32_t* labels, int64_t B, int64_t T, Var* logits) {
  Var lg = forward(t, ids, B, T);
  auto* targets = static_cast<int32_t*>(t.alloc_bytes(size_t(B * T) * sizeof(int32_t)));  // (B*T)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < T; ++i) {
      int32_t y = i + 1 < T ? labels[b * T + i + 1] : -1;
      if (y >= cfg_.vocab_size) throw Error(cat("Llama: label ", y, " outside the vocabulary of ", cfg_.vocab_size));
      targets[b * T + i] = y < 0 ? -1 : y;
    }
  if (logits) *logits = lg;
  return ag::cross_entropy(t, lg, targets);
}

LlamaWeights Llama::weights() const {
  auto ref = [&](int64_t i) {
    const Tensor& v = params_[i].value;
    WeightRef w;
    w.type = QType::F32, w.data = v.data(), w.rows = v.dim(0), w.cols = v.dim(1);
    return w;
  };
  auto vec = [&](int64_t i) { return params_[i].value.data(); };
  LlamaWeights w;
  w.embed = ref(embed_);
  w.lm_head = ref(lm_head_);
  w.norm = vec(norm_);
  for (const Block& b : blocks_) {
    LlamaWeights::Layer L;
    L.attn_norm = vec(b.attn_norm), L.ffn_norm = vec(b.ffn_norm);
    L.q = ref(b.q), L.k = ref(b.k), L.v = ref(b.v), L.o = ref(b.o);
    L.gate = ref(b.gate), L.up = ref(b.up), L.down = ref(b.down);
    w.layers.push_back(L);
  }
  return w;
}

}  // namespace mnemo
