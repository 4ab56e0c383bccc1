#pragma once
// Tokenizers from GGUF files (llama.cpp's format): the byte-level BPE held in the tokenizer.ggml.* metadata, built
// with text's BpeTokenizer vector constructor. The text layer cannot read GGUF (it sits below io), so the one
// loader that accepts every tokenizer path — model directory, tokenizer file or GGUF file — lives here.
#include <memory>
#include <string>

#include "text/tokenizer.h"

namespace mnemo {

// The tokenizer of a GGUF file (tokenizer.ggml.model "gpt2": tokens, merges, token_type; CONTROL and USER_DEFINED
// tokens become added tokens; tokenizer.ggml.pre selects the split). Error naming the file otherwise.
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const std::string& path);
// load_gguf_tokenizer for *.gguf, load_tokenizer (text layer) for everything else.
std::unique_ptr<Tokenizer> load_any_tokenizer(const std::string& path);

}  // namespace mnemo
