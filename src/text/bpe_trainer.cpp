#include "text/bpe_trainer.h"

#include <algorithm>
#include <queue>

#include "base/error.h"
#include "text/byte_level.h"
#include "text/unicode.h"

namespace mnemo {

namespace {
inline uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
}  // namespace

BpeTrainer::BpeTrainer(BpeTrainerConfig config) : config_(std::move(config)) {
  std::vector<AddedToken> sp;
  for (size_t i = 0; i < config_.special_tokens.size(); ++i) sp.push_back({config_.special_tokens[i], int32_t(i), true});
  specials_ = AddedTokens(std::move(sp));
  int64_t min_size = int64_t(config_.special_tokens.size()) + 256;
  if (config_.vocab_size < min_size)
    throw Error(cat("--vocab-size: ", config_.vocab_size, " is below the ", min_size,
                    " tokens of the byte alphabet plus special tokens"));
}

void BpeTrainer::add_text(std::string_view text, std::string_view source) {
  size_t bad = unicode::find_invalid_utf8(text);
  if (bad != std::string_view::npos) throw Error(cat(source, ": invalid UTF-8 at byte ", bad));
  std::vector<std::pair<uint32_t, uint32_t>> pieces;
  specials_.split(
      text,
      [&](std::string_view part) {
        pieces.clear();
        config_.pre.split(part, pieces);
        for (auto [b, e] : pieces) ++counts_[std::string(part.substr(b, e - b))];
      },
      [](int32_t) {});
}

std::unique_ptr<BpeTokenizer> BpeTrainer::train() const {
  const int32_t n_special = int32_t(config_.special_tokens.size());
  std::vector<std::string> tok;  // (V) raw bytes per id, specials first
  for (const auto& s : config_.special_tokens) tok.push_back(s);
  std::unordered_map<std::string, int32_t> id_of;  // raw bytes -> id (non-special)
  for (int b = 0; b < 256; ++b) {
    id_of[std::string(1, char(b))] = int32_t(tok.size());
    tok.emplace_back(1, char(b));
  }
  // Pieces in a fixed order (sorted bytes) so training is deterministic whatever the hash map's order.
  std::vector<std::pair<std::string, int64_t>> sorted(counts_.begin(), counts_.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::vector<int32_t>> words(sorted.size());  // (W) symbols per piece
  std::vector<int64_t> freq(sorted.size());                // (W)
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;  // pair -> pieces that had it (may be stale)
  for (size_t w = 0; w < sorted.size(); ++w) {
    const std::string& s = sorted[w].first;
    freq[w] = sorted[w].second;
    for (unsigned char c : s) words[w].push_back(n_special + c);
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      uint64_t k = pair_key(words[w][i], words[w][i + 1]);
      pair_count[k] += freq[w];
      auto& list = where[k];
      if (list.empty() || list.back() != int32_t(w)) list.push_back(int32_t(w));
    }
  }
  struct Entry {
    int64_t count;
    uint64_t key;
    bool operator<(const Entry& o) const { return count != o.count ? count < o.count : key > o.key; }
  };
  std::priority_queue<Entry> heap;
  for (auto& [k, c] : pair_count) heap.push({c, k});

  std::vector<std::string> merges;
  std::vector<int32_t> seen(words.size(), -1);
  std::unordered_map<uint64_t, int64_t> delta;
  std::vector<int32_t> merged;
  while (int64_t(tok.size()) < config_.vocab_size && !heap.empty()) {
    Entry top = heap.top();
    heap.pop();
    auto pc = pair_count.find(top.key);
    int64_t current = pc == pair_count.end() ? 0 : pc->second;
    if (current != top.count) {  // stale entry: re-queue with the true count
      if (current > 0) heap.push({current, top.key});
      continue;
    }
    if (current < config_.min_frequency || current <= 0) break;
    const int32_t a = int32_t(top.key >> 32), b = int32_t(top.key & 0xFFFFFFFFu);
    std::string joined = tok[a] + tok[b];
    int32_t new_id;
    if (auto it = id_of.find(joined); it != id_of.end()) {
      new_id = it->second;
    } else {
      new_id = int32_t(tok.size());
      id_of.emplace(joined, new_id);
      tok.push_back(joined);
    }
    merges.push_back(byte_level::encode(tok[a]) + " " + byte_level::encode(tok[b]));
    const int32_t step = int32_t(merges.size());
    delta.clear();
    std::vector<int32_t> affected = std::move(where[top.key]);
    where.erase(top.key);
    for (int32_t w : affected) {
      if (seen[w] == step) continue;
      seen[w] = step;
      auto& sym = words[w];
      bool has = false;
      for (size_t i = 0; i + 1 < sym.size() && !has; ++i) has = sym[i] == a && sym[i + 1] == b;
      if (!has) continue;
      for (size_t i = 0; i + 1 < sym.size(); ++i) delta[pair_key(sym[i], sym[i + 1])] -= freq[w];
      merged.clear();
      for (size_t i = 0; i < sym.size();) {
        if (i + 1 < sym.size() && sym[i] == a && sym[i + 1] == b) {
          merged.push_back(new_id);
          i += 2;
        } else {
          merged.push_back(sym[i++]);
        }
      }
      sym.swap(merged);
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        uint64_t k = pair_key(sym[i], sym[i + 1]);
        delta[k] += freq[w];
        if (sym[i] == new_id || sym[i + 1] == new_id) {
          auto& list = where[k];
          if (list.empty() || list.back() != w) list.push_back(w);
        }
      }
    }
    for (auto& [k, d] : delta) {
      if (d == 0) continue;
      int64_t& c = pair_count[k];
      c += d;
      if (d > 0) heap.push({c, k});
      if (c <= 0) pair_count.erase(k);
    }
  }
  std::vector<std::string> tokens(tok.size());
  std::vector<AddedToken> added;
  for (size_t id = 0; id < tok.size(); ++id) {
    if (int32_t(id) < n_special) {
      tokens[id] = tok[id];
      added.push_back({tok[id], int32_t(id), true});
    } else {
      tokens[id] = byte_level::encode(tok[id]);
    }
  }
  BpeConfig cfg;
  cfg.pre = config_.pre;
  return std::make_unique<BpeTokenizer>(tokens, merges, std::move(added), cfg, "trained vocabulary");
}

}  // namespace mnemo
