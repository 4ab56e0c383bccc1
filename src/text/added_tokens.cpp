#include "text/added_tokens.h"

#include <algorithm>

#include "text/unicode.h"

namespace mnemo {

AddedTokens::AddedTokens(std::vector<AddedToken> tokens) {
  for (auto& t : tokens) {
    if (t.content.empty()) continue;
    by_content_[t.content] = t.id;
    first_byte_[uint8_t(t.content[0])] = true;
    tokens_.push_back(std::move(t));
  }
  // Longest first, so the first match at a position is the longest one.
  std::stable_sort(tokens_.begin(), tokens_.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
  for (size_t k = 0; k < tokens_.size(); ++k) {
    index_of_id_[tokens_[k].id] = k;
    lstrip_.push_back(tokens_[k].lstrip);
    rstrip_.push_back(tokens_[k].rstrip);
  }
}

size_t AddedTokens::rtrim_length(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t b = end - 1;
    while (b > 0 && (uint8_t(s[b]) & 0xC0) == 0x80) --b;  // start of the last code point
    std::u32string cp = unicode::decode_utf8(s.substr(b, end - b));
    if (cp.size() != 1 || !unicode::is_whitespace(cp[0])) break;
    end = b;
  }
  return end;
}

size_t AddedTokens::ltrim_length(std::string_view s) {
  std::vector<uint32_t> offsets;
  std::u32string cps = unicode::decode_utf8(s.substr(0, std::min<size_t>(s.size(), 4096)), &offsets);
  size_t k = 0;
  while (k < cps.size() && unicode::is_whitespace(cps[k])) ++k;
  return offsets[k];
}

void AddedTokens::match_at(std::string_view text, size_t i, size_t& len, int32_t& id) const {
  std::string_view rest = text.substr(i);
  for (const auto& t : tokens_) {
    if (rest.size() >= t.content.size() && rest.compare(0, t.content.size(), t.content) == 0) {
      len = t.content.size();
      id = t.id;
      return;
    }
  }
}

int32_t AddedTokens::find(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? -1 : it->second;
}

}  // namespace mnemo
