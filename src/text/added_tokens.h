#pragma once
// Added (special) tokens such as <|endoftext|>, <|im_start|>, [CLS]: found in raw text before any normalization or
// pre-tokenization, leftmost-longest (as Hugging Face tokenizers does), and emitted as their own id.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mnemo {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = true;
  bool lstrip = false;  // also swallows the whitespace before it
  bool rstrip = false;  // also swallows the whitespace after it
};

class AddedTokens {
 public:
  AddedTokens() = default;
  explicit AddedTokens(std::vector<AddedToken> tokens);

  // Calls on_text(piece) for text between matches and on_token(id) for each match, in order.
  template <typename OnText, typename OnToken>
  void split(std::string_view text, OnText&& on_text, OnToken&& on_token) const {
    size_t start = 0, i = 0;
    while (i < text.size()) {
      size_t len = 0;
      int32_t id = -1;
      if (!tokens_.empty() && first_byte_[uint8_t(text[i])]) match_at(text, i, len, id);
      if (len == 0) {
        ++i;
        continue;
      }
      size_t text_end = i;
      if (lstrip_[id_index(id)]) text_end = start + rtrim_length(text.substr(start, i - start));
      if (text_end > start) on_text(text.substr(start, text_end - start));
      on_token(id);
      i += len;
      if (rstrip_[id_index(id)]) i += ltrim_length(text.substr(i));
      start = i;
    }
    if (start < text.size()) on_text(text.substr(start));
  }

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  int32_t find(std::string_view content) const;  // -1 when absent

 private:
  void match_at(std::string_view text, size_t i, size_t& len, int32_t& id) const;
  size_t id_index(int32_t id) const { return index_of_id_.at(id); }
  static size_t rtrim_length(std::string_view s);  // length of s without its trailing whitespace
  static size_t ltrim_length(std::string_view s);  // bytes of leading whitespace
  std::unordered_map<int32_t, size_t> index_of_id_;
  std::vector<bool> lstrip_, rstrip_;  // by index into tokens_
  std::vector<AddedToken> tokens_;
  std::unordered_map<std::string, int32_t> by_content_;
  bool first_byte_[256] = {};
};

}  // namespace mnemo
