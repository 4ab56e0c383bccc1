#include "text/added_tokens.h"

#include <algorithm>

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
