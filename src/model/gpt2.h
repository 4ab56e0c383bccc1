#pragma once
// The GPT-2 decoder, exactly Hugging Face's GPT2LMHeadModel: learned token and position embeddings, pre-LayerNorm
// blocks (ln_1 -> attention -> residual, ln_2 -> MLP with tanh-GELU -> residual), a final ln_f, and the LM head
// tied to the token embedding. Parameter names are HF's ("transformer.h.0.attn.c_attn.weight"); Linear weights
// are (out, in) here and Conv1D's (in, out) on disk (Parameter::transposed_on_disk).
//
// Two paths: forward() over whole sequences on an autograd tape (training, scoring), and decode() one token at a
// time over a KvCache with matvecs (generation), which allocates nothing per token.
#include <cstdint>
#include <vector>

#include "autograd/parameter.h"
#include "autograd/tape.h"
#include "model/attention.h"
#include "model/config.h"
#include "model/kv_cache.h"

namespace mnemo {

class Gpt2 {
 public:
  explicit Gpt2(const Gpt2Config& config);  // parameters allocated, zero

  const Gpt2Config& config() const { return cfg_; }
  ParameterSet& params() { return params_; }
  const ParameterSet& params() const { return params_; }
  // HF's init: weights N(0, 0.02) (residual projections c_proj N(0, 0.02/sqrt(2*n_layer))), LayerNorm 1/0,
  // biases 0.
  void init_random(uint64_t seed);

  // ids (B*T) -> final hidden states after ln_f (B*T, C). key_valid (B,T) may be null (0 = padding key).
  // Throws Error for an id outside the vocabulary or T > n_positions.
  Var hidden_states(Tape& t, const int32_t* ids, int64_t B, int64_t T, const uint8_t* key_valid = nullptr,
                    const LayerObserver* observer = nullptr);
  // ids (B*T) -> logits (B*T, V).
  Var forward(Tape& t, const int32_t* ids, int64_t B, int64_t T, const uint8_t* key_valid = nullptr,
              const LayerObserver* observer = nullptr);
  // GPT2LMHeadModel(input_ids=ids, labels=labels).loss: position t of each row predicts labels[t+1]; labels < 0
  // are ignored; mean over the rest. Returns the loss (1); logits (B*T, V) go to *logits when non-null.
  Var lm_loss(Tape& t, const int32_t* ids, const int32_t* labels, int64_t B, int64_t T, Var* logits = nullptr,
              const uint8_t* key_valid = nullptr);

  // One token at absolute position pos: appends its keys/values to `cache` and writes logits (V).
  void decode(int32_t token, int64_t pos, KvCache& cache, float* logits, const LayerObserver* observer = nullptr);

  // Parameter indices, per block in the order HF names them.
  struct Block {
    int64_t ln_1_w, ln_1_b, c_attn_w, c_attn_b, attn_c_proj_w, attn_c_proj_b, ln_2_w, ln_2_b, c_fc_w, c_fc_b,
        mlp_c_proj_w, mlp_c_proj_b;
  };

 private:
  void check_input(const int32_t* ids, int64_t N, int64_t T) const;

  Gpt2Config cfg_;
  ParameterSet params_;
  int64_t wte_, wpe_, ln_f_w_, ln_f_b_;
  std::vector<Block> blocks_;
  // Decode scratch, sized once: x, h, att (C); qkv (3C); fc (inner); scores (n_head * n_positions).
  std::vector<float> dx_, dh_, datt_, dqkv_, dfc_, dscores_;
};

}  // namespace mnemo
