#pragma once
// Token ids for the commands that read text: a JSON array of ids (FILE.json), documents in JSON Lines with a
// "text" field (FILE.jsonl, joined with the tokenizer's end-of-text token when it has one), or plain UTF-8 text.
// Text needs a tokenizer; ids are checked against nothing here (models check them against their vocabulary).
#include <cstdint>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace mnemo::cli {

std::vector<int32_t> read_ids_json(const std::string& path);
std::vector<int32_t> read_token_data(const std::string& path, const Tokenizer* tokenizer);

}  // namespace mnemo::cli
