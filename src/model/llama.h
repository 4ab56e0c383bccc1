#pragma once
// The Llama decoder, exactly Hugging Face's LlamaForCausalLM: token embedding, pre-RMSNorm blocks (input_layernorm
// -> grouped-query attention with rotary positions -> residual, post_attention_layernorm -> SwiGLU MLP ->
// residual), a final norm and an LM head that is its own matrix or tied to the embedding. Parameter names are HF's
// ("model.layers.0.self_attn.q_proj.weight"); Linear weights are (out, in).
//
// Two ways to run it:
//   - Llama: fp32 parameters on the autograd tape (training, fine-tuning, scoring with gradients);
//   - LlamaRunner: inference over LlamaWeights, whose matrices may be any GGUF block type read in place from a
//     mapped file (Q4_1, Q8_0, ...) or fp32 (a Llama's own parameters). One token is a quantized matvec per
//     matrix; a run of tokens (prefill) dequantizes each weight block of rows once into scratch and multiplies
//     with GEMM. Keys are cached after rotation. All scratch is sized at construction.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "autograd/parameter.h"
#include "autograd/tape.h"
#include "base/json.h"
#include "model/decoder.h"
#include "model/precision.h"
#include "tensor/quant.h"

namespace mnemo {

// LlamaConfig (transformers/models/llama/configuration_llama.py), the keys mnemo uses.
struct LlamaConfig {
  int64_t num_hidden_layers = 30, hidden_size = 576, num_attention_heads = 9, num_key_value_heads = 3;
  int64_t head_dim = 0;  // 0 = hidden_size / num_attention_heads
  int64_t intermediate_size = 1536, vocab_size = 49152, max_position_embeddings = 8192;
  float rms_norm_eps = 1e-5f, rope_theta = 10000.0f;
  float rope_linear_factor = 1.0f;  // rope_scaling {"rope_type": "linear", "factor": f}; 1 = none
  bool tie_word_embeddings = true;
  int64_t bos_token_id = 1, eos_token_id = 2;

  int64_t hd() const { return head_dim ? head_dim : hidden_size / num_attention_heads; }
  // `source` names the file in errors ("DIR/config.json: num_key_value_heads 4 does not divide ...").
  static LlamaConfig from_json(const Json& j, const std::string& source);
  Json to_json() const;
  void validate(const std::string& source) const;
};

// A (rows, cols) matrix stored as rows of `type` (row r at data + r * row_bytes(type, cols)).
struct WeightRef {
  QType type = QType::F32;
  const void* data = nullptr;
  int64_t rows = 0, cols = 0;
};

// Everything inference reads. Matrices (out, in); norms fp32 (C). `owner` keeps the storage alive (a mapped file,
// re-ordered copies, or the Llama whose parameters these are).
struct LlamaWeights {
  struct Layer {
    const float* attn_norm = nullptr;  // (C)
    const float* ffn_norm = nullptr;   // (C)
    WeightRef q, k, v, o;              // (H*hd, C), (Hkv*hd, C) x2, (C, H*hd)
    WeightRef gate, up, down;          // (I, C), (I, C), (C, I)
  };
  WeightRef embed;             // (V, C)
  WeightRef lm_head;           // (V, C): the embedding itself when tied
  const float* norm = nullptr;  // (C)
  std::vector<Layer> layers;
  std::shared_ptr<void> owner;
};

// Inference over LlamaWeights. Not thread-safe (owns its scratch); kernels use the thread pool.
class LlamaRunner : public Decoder {
 public:
  // max_batch: most tokens one forward() takes (longer runs are split by the caller); scratch is sized for
  // max_batch tokens attending to max_context entries (defaults: 512, the model's context).
  LlamaRunner(const LlamaConfig& cfg, LlamaWeights weights, int64_t max_batch = 512, int64_t max_context = 0);

  const LlamaConfig& config() const { return cfg_; }
  const LlamaWeights& weights() const { return w_; }
  int64_t vocab_size() const override { return cfg_.vocab_size; }
  int64_t context_length() const override { return max_ctx_; }
  int n_layer() const override { return int(cfg_.num_hidden_layers); }
  int64_t n_kv_head() const override { return cfg_.num_key_value_heads; }
  int64_t head_dim() const override { return cfg_.hd(); }
  int64_t max_batch() const override { return max_batch_; }
  int64_t eos_token_id() const override { return cfg_.eos_token_id; }
  void forward(const int32_t* ids, int64_t n, int64_t pos, KvCache& cache, float* logits, bool all_logits,
               const LayerObserver* observer = nullptr) override;
  // B sequences, one token each: every weight matrix is read and decoded once per step for all B (quant_matmat,
  // fp32 activations even under set_int8_decode; B = 1 is forward()'s own single-token path).
  void decode_batch(const int32_t* ids, const int64_t* pos, KvCache* const* caches, int64_t B,
                    float* logits) override;

 private:
  // y (n, W.rows) = x (n, W.cols) @ W^T for each (W, y) of matrices that read the same x, in one parallel region:
  // a matvec (n = 1), a multi-vector matvec (a few rows), or linear() (long runs).
  void project(std::initializer_list<std::pair<const WeightRef*, float*>> mats, const float* x, int64_t n);
  // out (n, W.rows) = x (n, W.cols) @ W^T by dequantized blocks of rows and GEMM.
  void linear(float* out, const float* x, const WeightRef& W, int64_t n);
  void attention(float* out, const float* q, int64_t n, int64_t pos, KvCache& cache, int layer,
                 const LayerObserver* observer);
  // x_ (n, C) = embeddings of ids (n).
  void embed(const int32_t* ids, int64_t n);
  // The blocks over x_ (n, C) in place, rows at positions pos_ (n); attend(layer) fills att_ (n, H*hd) from q_, k_,
  // v_ (rotated) — one sequence's run (forward) or n sequences' single tokens (decode_batch).
  void blocks(int64_t n, const std::function<void(int layer)>& attend);

  LlamaConfig cfg_;
  LlamaWeights w_;
  int64_t max_batch_, max_ctx_;
  std::vector<float> inv_freq_;  // (hd/2)
  // Scratch, sized once (B = max_batch): x, h, att (B, C); q (B, H*hd); k, v (B, Hkv*hd); gate, up (B, I);
  // cos, sin (B, hd/2); scores (H, B, max_ctx) for the observer or (B, max_ctx) per head; wbuf: a dequantized
  // block of weight rows (kWeightChunk floats).
  std::vector<float> x_, h_, att_, q_, k_, v_, gate_, up_, cos_, sin_, scores_, wbuf_;
  std::vector<float> observed_;  // (H, n, N) every head's probabilities of a run, for an observer
  std::vector<int64_t> pos_;  // (B)
};

// fp32 Llama with parameters on the autograd tape.
class Llama {
 public:
  explicit Llama(const LlamaConfig& config);  // parameters allocated, zero
  const LlamaConfig& config() const { return cfg_; }
  ParameterSet& params() { return params_; }
  const ParameterSet& params() const { return params_; }
  // HF's init: every matrix N(0, 0.02), norms 1.
  void init_random(uint64_t seed);
  // Precision of the blocks' linear layers (model/precision.h; embeddings, norms, attention and the LM head stay
  // fp32). bf16 rounds the weights as they are now, for inference.
  void set_precision(Precision p);
  Precision precision() const { return linears_.precision(); }

  // ids (B*T) at positions 0..T-1 of each row -> logits (B*T, V). Throws Error for an id outside the vocabulary.
  Var forward(Tape& t, const int32_t* ids, int64_t B, int64_t T, const AttentionObserver* observer = nullptr);
  // LlamaForCausalLM(input_ids=ids, labels=labels).loss: position t predicts labels[t+1]; labels < 0 are ignored.
  Var lm_loss(Tape& t, const int32_t* ids, const int32_t* labels, int64_t B, int64_t T, Var* logits = nullptr);

  // The three parts of forward(), for callers that replace some input embeddings (HF's inputs_embeds; the RMT
  // decoder writes its memory rows there). embed: ids (N) -> (N, C), Error for an id outside the vocabulary.
  // forward_embedded: x (B*T, C) at positions 0..T-1 of each row -> the last hidden state after the final norm
  // (B*T, C), LlamaModel's last_hidden_state; key_valid (B,T) may be null (0 = padding key, HF's attention_mask).
  // lm_head: hidden (N, C) -> logits (N, V).
  Var embed(Tape& t, const int32_t* ids, int64_t N);
  Var forward_embedded(Tape& t, const Var& x, int64_t B, int64_t T, const uint8_t* key_valid = nullptr,
                       const AttentionObserver* observer = nullptr);
  Var lm_head(Tape& t, const Var& hidden);

  // The parameters as inference weights (fp32, borrowed: this Llama must outlive them).
  LlamaWeights weights() const;

  struct Block {
    int64_t attn_norm, q, k, v, o, ffn_norm, gate, up, down;
  };

 private:
  LlamaConfig cfg_;
  ParameterSet params_;
  int64_t embed_, norm_, lm_head_;  // lm_head_ = embed_ when tied
  std::vector<Block> blocks_;
  Linears linears_;
};

// HF parameter names of a Llama with `cfg`, in declaration order, with their (out, in) shapes.
std::vector<std::pair<std::string, Shape>> llama_parameter_shapes(const LlamaConfig& cfg);

}  // namespace mnemo
