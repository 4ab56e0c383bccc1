#pragma once
// WordPiece (BERT): added tokens ([CLS], [SEP], ...) are found first; the rest goes through BERT's normalizer
// (drop controls and U+FFFD, whitespace to ' ', spaces around CJK ideographs, then for uncased: strip accents by NFD
// minus nonspacing marks, and lowercase), BERT's pre-tokenizer (split on whitespace, each punctuation character
// alone) and greedy longest-match-first with the "##" continuation prefix; a word longer than max_chars characters
// or with no full segmentation is one [UNK]. Matches Hugging Face tokenizers' BertNormalizer/BertPreTokenizer.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/json.h"
#include "text/added_tokens.h"
#include "text/tokenizer.h"

namespace mnemo {

struct WordPieceConfig {
  bool lowercase = true;
  std::optional<bool> strip_accents;  // unset: follows lowercase (as BERT does)
  bool clean_text = true;
  bool handle_chinese_chars = true;
  std::string unk_token = "[UNK]";
  std::string prefix = "##";
  int max_chars = 100;
};

class WordPieceTokenizer : public Tokenizer {
 public:
  // vocab[id] = token text. Tokens in `specials` that are in the vocabulary become added tokens.
  WordPieceTokenizer(std::vector<std::string> vocab, WordPieceConfig config, std::string source = "vocabulary",
                     std::vector<AddedToken> added = {});
  // A BERT vocab.txt, one token per line; [PAD] [UNK] [CLS] [SEP] [MASK] are special when present.
  static std::unique_ptr<WordPieceTokenizer> from_vocab_txt(const std::string& path, bool lowercase);
  // A parsed tokenizer.json whose model is WordPiece (normalizer BertNormalizer or none).
  static std::unique_ptr<WordPieceTokenizer> from_tokenizer_json(const Json& j, const std::string& source);

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return int64_t(vocab_.size()); }
  int32_t special_id(std::string_view token) const override;
  const WordPieceConfig& config() const { return config_; }

  // BERT's normalizer + pre-tokenizer alone: the words WordPiece segments (for tests).
  std::vector<std::string> pre_tokenize(std::string_view text) const;

 private:
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, size_t n_chars, std::vector<int32_t>& out) const;

  std::string source_;
  std::vector<std::string> vocab_;                 // (V)
  std::unordered_map<std::string, int32_t> ids_;   // token text -> id
  size_t max_token_bytes_ = 0;
  int32_t unk_id_ = -1;
  AddedTokens added_;
  WordPieceConfig config_;
};

}  // namespace mnemo
