#pragma once
// Model directories in Hugging Face's layout: config.json + model.safetensors. Loading checks every parameter the
// config implies — present, a float dtype (F32, or F16/BF16 converted), the right shape — and fails with one line
// naming the file and the tensor. It accepts the variants found in the wild:
//   - checkpoints without the tied heads (lm_head.weight, cls.predictions.decoder.weight): the embedding is used;
//   - BERT names with or without the "bert." prefix (MiniLM's BertModel has "embeddings.word_embeddings.weight");
//   - GPT-2 names with or without the "transformer." prefix (OpenAI's original conversion);
//   - tensors the model does not use (buffers such as position_ids or attn.bias) are ignored.
// Saving writes config.json and model.safetensors (each atomically, tied copies left out, safetensors metadata
// {"format": "pt"} as transformers expects), so transformers' from_pretrained loads the directory back.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/parameter.h"
#include "io/safetensors.h"
#include "model/bert.h"
#include "model/gpt2.h"

namespace mnemo {

// A loaded directory: exactly one of gpt2 / bert is set.
struct LoadedModel {
  std::string type;  // "gpt2" or "bert"
  std::unique_ptr<Gpt2> gpt2;
  std::unique_ptr<Bert> bert;
  ParameterSet& params() { return gpt2 ? gpt2->params() : bert->params(); }
};

// config.json of DIR, parsed (Error naming DIR/config.json when missing or malformed).
Json read_config(const std::string& dir);
LoadedModel load_model_dir(const std::string& dir);
std::unique_ptr<Gpt2> load_gpt2(const std::string& dir);  // Error when DIR is not a GPT-2 directory
std::unique_ptr<Bert> load_bert(const std::string& dir);  // Error when DIR is not a BERT directory

// Fill `params` from `file`; `alternatives(name)` lists other names a tensor may have in the file (tried after
// the canonical one). Every parameter must be found.
void load_parameters(ParameterSet& params, const SafetensorsFile& file,
                     const std::function<std::vector<std::string>(const std::string&)>& alternatives);

// Write DIR/config.json and DIR/model.safetensors (DIR is created if needed).
void save_model_dir(const std::string& dir, const Gpt2& model);
void save_model_dir(const std::string& dir, const Bert& model);
// The parameters as safetensors items in their on-disk layout (Conv1D weights transposed back).
std::vector<SafetensorsItem> parameter_items(const ParameterSet& params);

}  // namespace mnemo
