#pragma once
// What the language-model verbs (generate, perplexity, chat) share: token input from --ids / --text / --prompt,
// and log-probabilities from logits.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "text/tokenizer.h"

namespace mnemo::lm {

// The tokenizer of a GGUF file or a model directory (loaded only when text must be encoded or decoded).
std::unique_ptr<Tokenizer> tokenizer_for(const std::string& model);
// Ids from --ids FILE (a JSON array of integers), or the text of --text FILE / --prompt TEXT (if `prompt_flag`)
// encoded with the model's tokenizer. Exactly one source must be given; Error naming the flag otherwise.
std::vector<int32_t> read_input_ids(cli::Args& args, const std::string& model, bool prompt_flag,
                                    std::unique_ptr<Tokenizer>* tokenizer);
// -log softmax(logits (V))[target], computed in double (a sum over 49,152 exps in fp32 loses digits).
double nll(const float* logits, int64_t V, int32_t target);

}  // namespace mnemo::lm
