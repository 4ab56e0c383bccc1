#pragma once
// The BERT encoder, exactly Hugging Face's BertModel: word + position + token-type embeddings, LayerNorm, then
// post-LayerNorm blocks (attention -> dense -> LayerNorm(x + .), intermediate dense -> erf-GELU -> dense ->
// LayerNorm(x + .)); padding keys are masked. Heads, chosen by BertConfig::head (HF's "architectures"):
//   None                    BertModel: encoder + pooler (dense + tanh on [CLS]); names without a prefix
//                           ("embeddings.word_embeddings.weight", as in MiniLM).
//   MaskedLM                BertForMaskedLM: "bert." encoder (no pooler) + cls.predictions (dense, GELU,
//                           LayerNorm, decoder tied to the word embeddings, bias "cls.predictions.bias").
//   SequenceClassification  BertForSequenceClassification: "bert." encoder + pooler + "classifier" on the pooled
//                           [CLS] vector.
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/parameter.h"
#include "autograd/tape.h"
#include "model/attention.h"
#include "model/config.h"
#include "model/precision.h"

namespace mnemo {

class Bert {
 public:
  explicit Bert(const BertConfig& config);  // parameters allocated, zero

  const BertConfig& config() const { return cfg_; }
  ParameterSet& params() { return params_; }
  const ParameterSet& params() const { return params_; }
  // HF's init: weights N(0, 0.02), LayerNorm 1/0, biases 0.
  void init_random(uint64_t seed);
  // Precision of the encoder blocks' linear layers (model/precision.h; the embeddings and heads stay fp32). bf16
  // rounds the weights as they are now, for inference.
  void set_precision(Precision p);
  Precision precision() const { return linears_.precision(); }
  // The name prefix of encoder parameters: "" for BertModel, "bert." with a head.
  const std::string& prefix() const { return prefix_; }

  // ids (B*T); token_types (B*T) may be null (all 0); key_valid (B,T) may be null (no padding) -> last hidden
  // states (B*T, C). Throws Error for ids, token types or lengths the config does not allow.
  Var encode(Tape& t, const int32_t* ids, const int32_t* token_types, const uint8_t* key_valid, int64_t B,
             int64_t T, const LayerObserver* observer = nullptr);
  // encode() in two steps, for callers that edit the word embeddings first (HF's inputs_embeds; RMT writes its
  // memory rows there): ids (N) -> word embeddings (N, C), then (B*T, C) -> last hidden states (B*T, C).
  Var embed_words(Tape& t, const int32_t* ids, int64_t N);
  Var encode_embeds(Tape& t, const Var& inputs_embeds, const int32_t* token_types, const uint8_t* key_valid,
                    int64_t B, int64_t T, const LayerObserver* observer = nullptr);
  // Pooler: tanh(dense(hidden[b, 0])) -> (B, C). Needs head None or SequenceClassification.
  Var pool(Tape& t, const Var& hidden, int64_t B, int64_t T);
  // MLM head: hidden (N,C) -> logits (N,V). Needs head MaskedLM.
  Var mlm_logits(Tape& t, const Var& hidden);
  // Classifier on the pooled [CLS] vector -> logits (B, num_labels). Needs head SequenceClassification.
  Var classify(Tape& t, const Var& hidden, int64_t B, int64_t T);

  struct Layer {
    int64_t q_w, q_b, k_w, k_b, v_w, v_b, ao_w, ao_b, ao_ln_w, ao_ln_b, i_w, i_b, o_w, o_b, o_ln_w, o_ln_b;
  };

 private:
  BertConfig cfg_;
  std::string prefix_;
  ParameterSet params_;
  int64_t word_, pos_, type_, emb_ln_w_, emb_ln_b_;
  std::vector<Layer> layers_;
  Linears linears_;
  int64_t pool_w_ = -1, pool_b_ = -1;                                          // pooler
  int64_t tr_w_ = -1, tr_b_ = -1, tr_ln_w_ = -1, tr_ln_b_ = -1, mlm_b_ = -1;  // MLM head
  int64_t cls_w_ = -1, cls_b_ = -1;                                            // classifier
};

}  // namespace mnemo
