#include "io/gguf_tokenizer.h"

#include "base/error.h"
#include "io/gguf.h"
#include "text/bpe.h"

namespace mnemo {

namespace {

// tokenizer.ggml.pre -> the split llama.cpp applies for it (llama-vocab.cpp), for the byte-level BPE kinds mnemo
// implements: GPT-2's regex, optionally after isolating each digit, or Llama-3's regex with ignore_merges.
BpeConfig config_for_pre(const std::string& pre, const std::string& path) {
  BpeConfig cfg;
  if (pre == "gpt2" || pre == "default" || pre == "mpt" || pre == "olmo" || pre == "jais") {
    cfg.pre.pattern = SplitPattern::Gpt2;
  } else if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "codeshell" || pre == "command-r" ||
             pre == "exaone" || pre == "minerva-7b") {
    cfg.pre.pattern = SplitPattern::Gpt2;
    cfg.pre.individual_digits = true;
  } else if (pre == "llama-bpe" || pre == "llama3" || pre == "falcon3" || pre == "smaug-bpe") {
    cfg.pre.pattern = SplitPattern::Llama3;
    cfg.ignore_merges = true;
  } else {
    throw Error(cat(path, ": tokenizer.ggml.pre '", pre, "' is not a pre-tokenizer mnemo implements "
                    "(gpt2, smollm/starcoder, llama-bpe)"));
  }
  return cfg;
}

}  // namespace

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const std::string& path) {
  GgufFile f(path);
  std::string model = f.get_string("tokenizer.ggml.model");
  if (model != "gpt2")
    throw Error(cat(path, ": tokenizer.ggml.model '", model, "' is not supported (only byte-level BPE, 'gpt2')"));
  std::vector<std::string> tokens = f.get_string_array("tokenizer.ggml.tokens");
  std::vector<std::string> merges = f.get_string_array("tokenizer.ggml.merges");
  std::vector<int64_t> types;
  if (f.has("tokenizer.ggml.token_type")) {
    types = f.get_int_array("tokenizer.ggml.token_type");
    if (types.size() != tokens.size())
      throw Error(cat(path, ": tokenizer.ggml.token_type has ", types.size(), " entries for ", tokens.size(), " tokens"));
  }
  // CONTROL (3) and USER_DEFINED (4) tokens are matched in raw text, as llama.cpp and HF tokenizers do.
  std::vector<AddedToken> added;
  for (size_t id = 0; id < types.size(); ++id)
    if (types[id] == 3 || types[id] == 4) added.push_back({tokens[id], int32_t(id), types[id] == 3});
  BpeConfig cfg = config_for_pre(f.string_or("tokenizer.ggml.pre", "default"), path);
  return std::make_unique<BpeTokenizer>(tokens, merges, std::move(added), cfg, path);
}

std::unique_ptr<Tokenizer> load_any_tokenizer(const std::string& path) {
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0) return load_gguf_tokenizer(path);
  return load_tokenizer(path);
}

}  // namespace mnemo
