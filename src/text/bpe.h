#pragma once
// Byte-level BPE (GPT-2, SmolLM2, Llama-3 style): added tokens are found first, the rest is pre-tokenized (regex
// split, see pre_tokenizer.h), each piece's bytes start as single-byte tokens and are merged by rank, lowest first
// and leftmost among equals, as Hugging Face tokenizers does. Merged pieces are cached per piece.
//
// Three ways in: GPT-2's original encoder.json + vocab.bpe; a Hugging Face tokenizer.json of the byte-level BPE
// kind; or plain vectors (tokens and merges in the byte-level alphabet, as GGUF metadata holds them).
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/json.h"
#include "text/added_tokens.h"
#include "text/pre_tokenizer.h"
#include "text/tokenizer.h"

namespace mnemo {

// Lets the piece cache be probed with a string_view (no allocation on a hit).
struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct BpeConfig {
  PreTokenizer pre;              // GPT-2 split by default
  bool ignore_merges = false;    // Llama-3: a piece that is itself a token is emitted whole
  bool add_prefix_space = false; // prepend ' ' to text that does not start with one
};

class BpeTokenizer : public Tokenizer {
 public:
  // tokens[id]: token text in the byte-level alphabet (byte_level.h); a token outside that alphabet is kept as raw
  // UTF-8 and never produced by merging. merges: "left right" in rank order. added: tokens matched in raw text
  // (their ids may lie beyond tokens.size()). `source` names the vocabulary in errors.
  BpeTokenizer(const std::vector<std::string>& tokens, const std::vector<std::string>& merges,
               std::vector<AddedToken> added, BpeConfig config, std::string source = "vocabulary");

  // GPT-2's original files; <|endoftext|> is an added special token (as in Hugging Face's GPT-2 tokenizer).
  static std::unique_ptr<BpeTokenizer> from_gpt2_files(const std::string& encoder_json, const std::string& vocab_bpe);
  // A parsed tokenizer.json whose model is BPE with a ByteLevel pre-tokenizer; `source` names the file in errors.
  static std::unique_ptr<BpeTokenizer> from_tokenizer_json(const Json& j, const std::string& source);

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return int64_t(bytes_.size()); }
  int32_t special_id(std::string_view token) const override;

  // Raw bytes of one token (an added token's content for added tokens).
  const std::string& token_bytes(int32_t id) const;
  const BpeConfig& config() const { return config_; }
  size_t num_merges() const { return merge_list_.size(); }
  // The Hugging Face tokenizer.json form of this tokenizer (loads in `tokenizers` and encodes identically).
  Json to_tokenizer_json() const;

 private:
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  void merge_symbols(std::vector<int32_t>& ids) const;

  std::string source_;
  std::vector<std::string> bytes_;                 // (V) raw bytes of each id
  std::vector<bool> byte_level_;                   // (V) whether the token is in the byte-level alphabet
  std::unordered_map<std::string, int32_t> ids_;   // raw bytes -> id (byte-level tokens only)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (left << 32 | right) -> (rank, merged id)
  std::vector<std::pair<int32_t, int32_t>> merge_list_;               // (M) (left, right) in rank order
  int32_t byte_id_[256];                           // id of each single-byte token, -1 when it has none
  int32_t unk_id_ = -1;                            // for bytes without a token; -1: such bytes are dropped
  AddedTokens added_;
  BpeConfig config_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringViewHash, std::equal_to<>> cache_;  // piece -> ids
};

}  // namespace mnemo
