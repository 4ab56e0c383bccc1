#include "model/config.h"

#include "base/error.h"

namespace mnemo {
namespace {

Gelu gelu_of(const std::string& act, const char* key, const std::string& source) {
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") return Gelu::Tanh;
  if (act == "gelu") return Gelu::Erf;
  throw Error(cat(source, ": ", key, " '", act, "' is not supported (gelu, gelu_new, gelu_pytorch_tanh)"));
}

void positive(int64_t v, const char* key, const std::string& source) {
  if (v <= 0) throw Error(cat(source, ": ", key, " must be positive, got ", v));
}

}  // namespace

Gelu Gpt2Config::gelu() const { return gelu_of(activation_function, "activation_function", "config"); }

Gpt2Config Gpt2Config::from_json(const Json& j, const std::string& source) {
  if (!j.is_object()) throw Error(cat(source, ": expected a JSON object"));
  Gpt2Config c;
  c.n_layer = config_int(j, "n_layer", c.n_layer, source);
  c.n_head = config_int(j, "n_head", c.n_head, source);
  c.n_embd = config_int(j, "n_embd", c.n_embd, source);
  c.n_positions = config_int(j, "n_positions", c.n_positions, source);
  c.vocab_size = config_int(j, "vocab_size", c.vocab_size, source);
  c.n_inner = config_int(j, "n_inner", 0, source);
  c.layer_norm_epsilon = config_float(j, "layer_norm_epsilon", c.layer_norm_epsilon, source);
  c.activation_function = config_string(j, "activation_function", c.activation_function, source);
  c.validate(source);
  return c;
}

void Gpt2Config::validate(const std::string& source) const {
  positive(n_layer, "n_layer", source);
  positive(n_head, "n_head", source);
  positive(n_embd, "n_embd", source);
  positive(n_positions, "n_positions", source);
  positive(vocab_size, "vocab_size", source);
  if (n_inner < 0) throw Error(cat(source, ": n_inner must be positive, got ", n_inner));
  if (n_embd % n_head) throw Error(cat(source, ": n_head ", n_head, " does not divide n_embd ", n_embd));
  if (!(layer_norm_epsilon > 0)) throw Error(cat(source, ": layer_norm_epsilon must be positive"));
  gelu_of(activation_function, "activation_function", source);
}

Json Gpt2Config::to_json() const {
  Json j = Json::object();
  j["architectures"] = Json(Json::Array{Json("GPT2LMHeadModel")});
  j["model_type"] = "gpt2";
  j["n_layer"] = n_layer;
  j["n_head"] = n_head;
  j["n_embd"] = n_embd;
  j["n_positions"] = n_positions;
  j["n_ctx"] = n_positions;
  j["vocab_size"] = vocab_size;
  j["n_inner"] = n_inner ? Json(n_inner) : Json();
  j["layer_norm_epsilon"] = double(layer_norm_epsilon);
  j["activation_function"] = activation_function;
  j["tie_word_embeddings"] = true;
  return j;
}

Gelu BertConfig::gelu() const { return gelu_of(hidden_act, "hidden_act", "config"); }

BertConfig BertConfig::from_json(const Json& j, const std::string& source) {
  if (!j.is_object()) throw Error(cat(source, ": expected a JSON object"));
  BertConfig c;
  c.num_hidden_layers = config_int(j, "num_hidden_layers", c.num_hidden_layers, source);
  c.hidden_size = config_int(j, "hidden_size", c.hidden_size, source);
  c.num_attention_heads = config_int(j, "num_attention_heads", c.num_attention_heads, source);
  c.intermediate_size = config_int(j, "intermediate_size", c.intermediate_size, source);
  c.max_position_embeddings = config_int(j, "max_position_embeddings", c.max_position_embeddings, source);
  c.type_vocab_size = config_int(j, "type_vocab_size", c.type_vocab_size, source);
  c.vocab_size = config_int(j, "vocab_size", c.vocab_size, source);
  c.pad_token_id = config_int(j, "pad_token_id", c.pad_token_id, source);
  c.layer_norm_eps = config_float(j, "layer_norm_eps", c.layer_norm_eps, source);
  c.hidden_act = config_string(j, "hidden_act", c.hidden_act, source);
  // HF derives num_labels from id2label when present.
  if (const Json* id2label = j.find("id2label"); id2label && id2label->is_object())
    c.num_labels = int64_t(id2label->size());
  c.num_labels = config_int(j, "num_labels", c.num_labels, source);
  std::string pet = config_string(j, "position_embedding_type", "absolute", source);
  if (pet != "absolute")
    throw Error(cat(source, ": position_embedding_type '", pet, "' is not supported (absolute)"));
  if (const Json* arch = j.find("architectures"); arch && arch->is_array() && arch->size() > 0) {
    const std::string& a = arch->as_array()[0].as_string(source + ": architectures");
    if (a == "BertForMaskedLM") c.head = BertHead::MaskedLM;
    else if (a == "BertForSequenceClassification") c.head = BertHead::SequenceClassification;
    else if (a == "BertModel") c.head = BertHead::None;
    else throw Error(cat(source, ": architecture '", a,
                         "' is not supported (BertModel, BertForMaskedLM, BertForSequenceClassification)"));
  }
  c.validate(source);
  return c;
}

void BertConfig::validate(const std::string& source) const {
  positive(num_hidden_layers, "num_hidden_layers", source);
  positive(hidden_size, "hidden_size", source);
  positive(num_attention_heads, "num_attention_heads", source);
  positive(intermediate_size, "intermediate_size", source);
  positive(max_position_embeddings, "max_position_embeddings", source);
  positive(type_vocab_size, "type_vocab_size", source);
  positive(vocab_size, "vocab_size", source);
  if (head == BertHead::SequenceClassification) positive(num_labels, "num_labels", source);
  if (hidden_size % num_attention_heads)
    throw Error(cat(source, ": num_attention_heads ", num_attention_heads, " does not divide hidden_size ",
                    hidden_size));
  if (!(layer_norm_eps > 0)) throw Error(cat(source, ": layer_norm_eps must be positive"));
  gelu_of(hidden_act, "hidden_act", source);
}

Json BertConfig::to_json() const {
  Json j = Json::object();
  const char* arch = head == BertHead::MaskedLM                 ? "BertForMaskedLM"
                     : head == BertHead::SequenceClassification ? "BertForSequenceClassification"
                                                                : "BertModel";
  j["architectures"] = Json(Json::Array{Json(arch)});
  j["model_type"] = "bert";
  j["num_hidden_layers"] = num_hidden_layers;
  j["hidden_size"] = hidden_size;
  j["num_attention_heads"] = num_attention_heads;
  j["intermediate_size"] = intermediate_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["type_vocab_size"] = type_vocab_size;
  j["vocab_size"] = vocab_size;
  j["pad_token_id"] = pad_token_id;
  j["layer_norm_eps"] = double(layer_norm_eps);
  j["hidden_act"] = hidden_act;
  j["position_embedding_type"] = "absolute";
  if (head == BertHead::SequenceClassification) {
    Json id2label = Json::object(), label2id = Json::object();
    for (int64_t i = 0; i < num_labels; ++i) {
      id2label[std::to_string(i)] = cat("LABEL_", i);
      label2id[cat("LABEL_", i)] = i;
    }
    j["id2label"] = id2label;
    j["label2id"] = label2id;
  }
  return j;
}

int64_t config_int(const Json& j, const char* key, int64_t fallback, const std::string& source) {
  const Json* v = j.find(key);
  return v && !v->is_null() ? v->as_int(source + ": " + key) : fallback;
}

float config_float(const Json& j, const char* key, float fallback, const std::string& source) {
  const Json* v = j.find(key);
  return v && !v->is_null() ? float(v->as_number(source + ": " + key)) : fallback;
}

std::string config_string(const Json& j, const char* key, const std::string& fallback, const std::string& source) {
  const Json* v = j.find(key);
  return v && !v->is_null() ? v->as_string(source + ": " + key) : fallback;
}

std::string model_type_of(const Json& j, const std::string& source) {
  if (!j.is_object()) throw Error(cat(source, ": expected a JSON object"));
  std::string t = config_string(j, "model_type", "", source);
  if (t.empty()) {
    if (const Json* arch = j.find("architectures"); arch && arch->is_array() && arch->size() > 0) {
      const std::string& a = arch->as_array()[0].as_string(source + ": architectures");
      if (a.rfind("GPT2", 0) == 0) t = "gpt2";
      if (a.rfind("Bert", 0) == 0) t = "bert";
    }
  }
  if (t != "gpt2" && t != "bert")
    throw Error(cat(source, ": model_type '", t, "' is not supported (gpt2, bert)"));
  return t;
}

}  // namespace mnemo
