#pragma once
// Training a byte-level BPE vocabulary on a corpus: count the pre-tokenized pieces of the text (special tokens
// removed), start from the 256 single bytes, and repeatedly merge the most frequent adjacent pair (ties: the pair
// of smaller ids) until the vocabulary has the requested size or no pair occurs min_frequency times. The result is
// a BpeTokenizer; BpeTokenizer::to_tokenizer_json() writes the Hugging Face form.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/bpe.h"

namespace mnemo {

struct BpeTrainerConfig {
  int64_t vocab_size = 8192;  // specials + 256 bytes + merges
  int64_t min_frequency = 2;
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  PreTokenizer pre;  // GPT-2 split by default
};

class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainerConfig config);
  // Adds one document (valid UTF-8; throws Error naming `source` and the byte offset otherwise).
  void add_text(std::string_view text, std::string_view source = "text");
  std::unique_ptr<BpeTokenizer> train() const;
  size_t distinct_pieces() const { return counts_.size(); }

 private:
  BpeTrainerConfig config_;
  AddedTokens specials_;
  std::unordered_map<std::string, int64_t> counts_;  // piece bytes -> occurrences
};

}  // namespace mnemo
