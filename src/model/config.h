#pragma once
// Model configurations, read from and written to Hugging Face config.json keys, so a directory saved by
// transformers' save_pretrained loads here and one saved here loads there.
#include <cstdint>
#include <string>

#include "base/json.h"
#include "tensor/kernels.h"

namespace mnemo {

// GPT2Config (transformers/models/gpt2/configuration_gpt2.py).
struct Gpt2Config {
  int64_t n_layer = 12, n_head = 12, n_embd = 768, n_positions = 1024, vocab_size = 50257;
  int64_t n_inner = 0;  // 0 = 4 * n_embd (HF: null)
  float layer_norm_epsilon = 1e-5f;
  std::string activation_function = "gelu_new";  // gelu_new/gelu_pytorch_tanh (tanh) or gelu (erf)

  int64_t inner() const { return n_inner ? n_inner : 4 * n_embd; }
  Gelu gelu() const;
  // `source` names the file in errors ("DIR/config.json: n_head 5 does not divide n_embd 768").
  static Gpt2Config from_json(const Json& j, const std::string& source);
  Json to_json() const;
  void validate(const std::string& source) const;
};

// What sits on top of a BERT encoder; named by HF's architectures.
enum class BertHead { None, MaskedLM, SequenceClassification };

// BertConfig (transformers/models/bert/configuration_bert.py).
struct BertConfig {
  int64_t num_hidden_layers = 12, hidden_size = 768, num_attention_heads = 12, intermediate_size = 3072;
  int64_t max_position_embeddings = 512, type_vocab_size = 2, vocab_size = 30522, num_labels = 2;
  int64_t pad_token_id = 0;
  float layer_norm_eps = 1e-12f;
  std::string hidden_act = "gelu";  // gelu (erf) or gelu_new (tanh)
  BertHead head = BertHead::None;   // from "architectures"; BertModel when absent

  Gelu gelu() const;
  static BertConfig from_json(const Json& j, const std::string& source);
  Json to_json() const;
  void validate(const std::string& source) const;
};

// A config.json key of any architecture: `fallback` when absent or null, else the value, which must have the type
// asked for ("DIR/config.json: n_head: expected a number, found string").
int64_t config_int(const Json& j, const char* key, int64_t fallback, const std::string& source);
float config_float(const Json& j, const char* key, float fallback, const std::string& source);
std::string config_string(const Json& j, const char* key, const std::string& fallback, const std::string& source);

// "gpt2" or "bert" from config.json's model_type (or architectures when model_type is missing).
std::string model_type_of(const Json& j, const std::string& source);

}  // namespace mnemo
