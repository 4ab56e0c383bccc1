#include "text/bpe.h"

#include <algorithm>
#include <queue>

#include "base/error.h"
#include "base/file.h"
#include "text/byte_level.h"
#include "text/unicode.h"

namespace mnemo {

namespace {
constexpr size_t kMaxCacheEntries = 1 << 20;  // cleared when full: bounded memory on unbounded text
inline uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
}  // namespace

BpeTokenizer::BpeTokenizer(const std::vector<std::string>& tokens, const std::vector<std::string>& merges,
                           std::vector<AddedToken> added, BpeConfig config, std::string source)
    : source_(std::move(source)), config_(config) {
  size_t n = tokens.size();
  for (const auto& a : added) {
    if (a.id < 0) throw Error(cat(source_, ": added token '", a.content, "' has a negative id"));
    n = std::max(n, size_t(a.id) + 1);
  }
  bytes_.resize(n);
  byte_level_.assign(n, false);
  std::string raw;
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (byte_level::decode(tokens[id], raw) && !raw.empty()) {
      bytes_[id] = raw;
      byte_level_[id] = true;
      ids_.emplace(raw, int32_t(id));  // first id wins for duplicate spellings
    } else {
      bytes_[id] = tokens[id];
    }
  }
  for (const auto& a : added) bytes_[a.id] = a.content;
  // A byte without a token (SmolLM2 has none for some control bytes) is dropped from the text, as Hugging Face
  // tokenizers does when the model has no unk_token; the printable ASCII range must all be there.
  std::fill(std::begin(byte_id_), std::end(byte_id_), -1);
  for (int b = 0; b < 256; ++b) {
    auto it = ids_.find(std::string(1, char(b)));
    if (it != ids_.end()) byte_id_[b] = it->second;
    else if (b >= '!' && b <= '~')
      throw Error(cat(source_, ": not a byte-level vocabulary (no token for '", char(b), "')"));
  }
  merges_.reserve(merges.size() * 2);
  merge_list_.reserve(merges.size());
  std::string left, right;
  for (size_t r = 0; r < merges.size(); ++r) {
    const std::string& m = merges[r];
    size_t sp = m.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 >= m.size() || m.find(' ', sp + 1) != std::string::npos)
      throw Error(cat(source_, ": merge ", r, " '", m, "' is not two tokens separated by one space"));
    if (!byte_level::decode(std::string_view(m).substr(0, sp), left) ||
        !byte_level::decode(std::string_view(m).substr(sp + 1), right))
      throw Error(cat(source_, ": merge ", r, " '", m, "' is not in the byte-level alphabet"));
    auto a = ids_.find(left), b = ids_.find(right), c = ids_.find(left + right);
    if (a == ids_.end() || b == ids_.end() || c == ids_.end())
      throw Error(cat(source_, ": merge ", r, " '", m, "' refers to a token not in the vocabulary"));
    // The first (lowest-rank) merge of a pair wins, as in Hugging Face tokenizers.
    if (merges_.emplace(pair_key(a->second, b->second), std::make_pair(int32_t(r), c->second)).second)
      merge_list_.emplace_back(a->second, b->second);
  }
  added_ = AddedTokens(std::move(added));
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_gpt2_files(const std::string& encoder_json,
                                                           const std::string& vocab_bpe) {
  Json enc = Json::parse(read_file(encoder_json), encoder_json);
  if (!enc.is_object()) throw Error(cat(encoder_json, ": not a GPT-2 encoder.json (expected an object of token -> id)"));
  std::vector<std::string> tokens(enc.size());
  for (const auto& [tok, idv] : enc.as_object()) {
    int64_t id = idv.as_int(cat(encoder_json, ": id of '", tok, "'"));
    if (id < 0 || id >= int64_t(tokens.size()))
      throw Error(cat(encoder_json, ": id ", id, " of '", tok, "' is out of range (ids must be 0..", tokens.size() - 1, ")"));
    tokens[id] = tok;
  }
  std::string text = read_file(vocab_bpe);
  std::vector<std::string> merges;
  size_t pos = 0;
  bool first = true;
  while (pos < text.size()) {
    size_t e = text.find('\n', pos);
    if (e == std::string::npos) e = text.size();
    std::string line = text.substr(pos, e - pos);
    pos = e + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (first && line.rfind("#version", 0) == 0) {
      first = false;
      continue;
    }
    first = false;
    if (line.empty()) continue;
    merges.push_back(std::move(line));
  }
  std::vector<AddedToken> added;
  for (size_t id = 0; id < tokens.size(); ++id)
    if (tokens[id] == "<|endoftext|>") added.push_back({tokens[id], int32_t(id), true});
  return std::make_unique<BpeTokenizer>(tokens, merges, std::move(added), BpeConfig{}, vocab_bpe);
}

namespace {

// Walks a tokenizer.json pre_tokenizer into a BpeConfig; refuses anything that would split differently.
void read_pre_tokenizer(const Json& p, BpeConfig& cfg, bool& byte_level_seen, const std::string& source) {
  std::string type = p.string_or("type", "");
  if (type == "Sequence") {
    const Json* list = p.find("pretokenizers");
    if (!list) throw Error(cat(source, ": pre_tokenizer Sequence without 'pretokenizers'"));
    for (const Json& q : list->as_array(cat(source, ": pretokenizers"))) read_pre_tokenizer(q, cfg, byte_level_seen, source);
  } else if (type == "ByteLevel") {
    byte_level_seen = true;
    cfg.add_prefix_space = p.bool_or("add_prefix_space", false);
    if (p.bool_or("use_regex", true)) {
      if (cfg.pre.pattern != SplitPattern::None)
        throw Error(cat(source, ": pre_tokenizer has two regex splits (Split and ByteLevel use_regex), unsupported"));
      cfg.pre.pattern = SplitPattern::Gpt2;
    }
  } else if (type == "Digits") {
    if (!p.bool_or("individual_digits", false) || cfg.pre.pattern != SplitPattern::None)
      throw Error(cat(source, ": pre_tokenizer Digits is supported only as individual_digits before the regex split"));
    cfg.pre.individual_digits = true;
  } else if (type == "Split") {
    const Json* pat = p.find("pattern");
    const Json* re = pat ? pat->find("Regex") : nullptr;
    if (!re) throw Error(cat(source, ": pre_tokenizer Split without a Regex pattern is not supported"));
    SplitPattern sp = split_pattern_from_regex(re->as_string(cat(source, ": Split pattern")));
    if (sp == SplitPattern::None)
      throw Error(cat(source, ": pre_tokenizer Split regex is not one mnemo implements (GPT-2's or Llama-3's): ",
                      re->as_string()));
    if (p.string_or("behavior", "Isolated") != "Isolated" || p.bool_or("invert", false))
      throw Error(cat(source, ": pre_tokenizer Split must have behavior Isolated and invert false"));
    if (cfg.pre.pattern != SplitPattern::None)
      throw Error(cat(source, ": pre_tokenizer has two regex splits, unsupported"));
    cfg.pre.pattern = sp;
  } else {
    throw Error(cat(source, ": pre_tokenizer type '", type, "' is not supported for byte-level BPE"));
  }
}

}  // namespace

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_tokenizer_json(const Json& j, const std::string& source) {
  const Json* model = j.find("model");
  if (!model || !model->is_object()) throw Error(cat(source, ": not a tokenizer.json (no 'model' object)"));
  std::string type = model->string_or("type", "BPE");
  if (type != "BPE") throw Error(cat(source, ": model type '", type, "' is not BPE"));
  if (!model->string_or("continuing_subword_prefix", "").empty() || !model->string_or("end_of_word_suffix", "").empty())
    throw Error(cat(source, ": BPE with a subword prefix/suffix is not byte-level BPE"));
  if (model->bool_or("byte_fallback", false)) throw Error(cat(source, ": byte_fallback BPE is not supported"));
  if (const Json* norm = j.find("normalizer"); norm && !norm->is_null())
    throw Error(cat(source, ": normalizer '", norm->string_or("type", "?"), "' is not supported for byte-level BPE"));
  BpeConfig cfg;
  cfg.pre.pattern = SplitPattern::None;
  bool byte_level_seen = false;
  if (const Json* pre = j.find("pre_tokenizer"); pre && !pre->is_null()) read_pre_tokenizer(*pre, cfg, byte_level_seen, source);
  if (!byte_level_seen) throw Error(cat(source, ": BPE without a ByteLevel pre-tokenizer is not byte-level BPE"));
  cfg.ignore_merges = model->bool_or("ignore_merges", false);
  std::string unk = model->string_or("unk_token", "");

  const Json* vocab = model->find("vocab");
  if (!vocab || !vocab->is_object()) throw Error(cat(source, ": model.vocab is missing"));
  std::vector<std::string> tokens;
  for (const auto& [tok, idv] : vocab->as_object()) {
    int64_t id = idv.as_int(cat(source, ": model.vocab['", tok, "']"));
    if (id < 0 || id > (1 << 24)) throw Error(cat(source, ": model.vocab['", tok, "'] = ", id, " is out of range"));
    if (size_t(id) >= tokens.size()) tokens.resize(id + 1);
    tokens[id] = tok;
  }
  std::vector<std::string> merges;
  if (const Json* m = model->find("merges")) {
    for (const Json& e : m->as_array(cat(source, ": model.merges"))) {
      if (e.is_string()) {
        merges.push_back(e.as_string());
      } else {  // newer files: ["left", "right"]
        const auto& pr = e.as_array(cat(source, ": model.merges entry"));
        if (pr.size() != 2) throw Error(cat(source, ": model.merges entry is not a pair"));
        merges.push_back(pr[0].as_string() + " " + pr[1].as_string());
      }
    }
  }
  std::vector<AddedToken> added;
  if (const Json* a = j.find("added_tokens"); a && !a->is_null()) {
    for (const Json& t : a->as_array(cat(source, ": added_tokens"))) {
      AddedToken at;
      at.content = t.find("content") ? t.find("content")->as_string(cat(source, ": added_tokens content")) : "";
      at.id = int32_t(t.int_or("id", -1));
      at.special = t.bool_or("special", false);
      at.lstrip = t.bool_or("lstrip", false);
      at.rstrip = t.bool_or("rstrip", false);
      if (t.bool_or("single_word", false))
        throw Error(cat(source, ": added token '", at.content, "' has single_word, which is not supported"));
      if (at.id < 0) throw Error(cat(source, ": added token '", at.content, "' has no id"));
      added.push_back(std::move(at));
    }
  }
  auto tok = std::make_unique<BpeTokenizer>(tokens, merges, std::move(added), cfg, source);
  if (!unk.empty()) {
    tok->unk_id_ = tok->special_id(unk);
    if (tok->unk_id_ < 0) throw Error(cat(source, ": unk_token '", unk, "' is not in the vocabulary"));
  }
  return tok;
}

int32_t BpeTokenizer::special_id(std::string_view token) const {
  int32_t id = added_.find(token);
  if (id >= 0) return id;
  auto it = ids_.find(std::string(token));
  return it == ids_.end() ? -1 : it->second;
}

const std::string& BpeTokenizer::token_bytes(int32_t id) const {
  if (id < 0 || size_t(id) >= bytes_.size())
    throw Error(cat(source_, ": token id ", id, " is out of range [0, ", bytes_.size(), ")"));
  return bytes_[id];
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  size_t bad = unicode::find_invalid_utf8(text);
  if (bad != std::string_view::npos) throw Error(cat("text: invalid UTF-8 at byte ", bad));
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 1);
  added_.split(text, [&](std::string_view piece) { encode_ordinary(piece, out); },
               [&](int32_t id) { out.push_back(id); });
  return out;
}

void BpeTokenizer::encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
  std::string prefixed;
  if (config_.add_prefix_space && !text.empty() && text[0] != ' ') {
    prefixed.reserve(text.size() + 1);
    prefixed.push_back(' ');
    prefixed.append(text);
    text = prefixed;
  }
  std::vector<std::pair<uint32_t, uint32_t>> pieces;
  config_.pre.split(text, pieces);
  for (auto [b, e] : pieces) encode_piece(text.substr(b, e - b), out);
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() == 1) {
    if (int32_t id = byte_id_[uint8_t(piece[0])]; id >= 0) out.push_back(id);
    else if (unk_id_ >= 0) out.push_back(unk_id_);
    return;
  }
  if (config_.ignore_merges) {
    auto it = ids_.find(std::string(piece));
    if (it != ids_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(piece);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;  // (n) one symbol per byte to start
  ids.reserve(piece.size());
  for (unsigned char c : piece) {
    if (byte_id_[c] >= 0) ids.push_back(byte_id_[c]);
    else if (unk_id_ >= 0) ids.push_back(unk_id_);
  }
  merge_symbols(ids);
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  cache_.emplace(std::string(piece), std::move(ids));
}

// Merges symbols in place: repeatedly the lowest-rank adjacent pair, leftmost first among equal ranks, with a heap
// of candidate merges that are re-validated when popped (a neighbour may have changed since it was pushed).
void BpeTokenizer::merge_symbols(std::vector<int32_t>& ids) const {
  const int n = int(ids.size());
  struct Candidate {
    int32_t rank, pos, new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<int32_t> prev(n), next(n);  // (n) linked list over live symbols; -1 at the ends
  std::vector<bool> alive(n, true);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push = [&](int pos) {
    int nx = next[pos];
    if (nx < 0) return;
    auto it = merges_.find(pair_key(ids[pos], ids[nx]));
    if (it != merges_.end()) heap.push({it->second.first, pos, it->second.second});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    if (!alive[c.pos] || next[c.pos] < 0) continue;
    int nx = next[c.pos];
    auto it = merges_.find(pair_key(ids[c.pos], ids[nx]));
    if (it == merges_.end() || it->second.second != c.new_id || it->second.first != c.rank) continue;  // stale
    ids[c.pos] = c.new_id;
    alive[nx] = false;
    next[c.pos] = next[nx];
    if (next[nx] >= 0) prev[next[nx]] = c.pos;
    if (prev[c.pos] >= 0) push(prev[c.pos]);
    push(c.pos);
  }
  int w = 0;
  for (int i = 0; i >= 0 && i < n; i = next[i]) ids[w++] = ids[i];
  ids.resize(w);
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes(id);
  return unicode::repair_utf8(out);
}

Json BpeTokenizer::to_tokenizer_json() const {
  Json j = Json::object();
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  Json added = Json::array();
  for (int32_t id = 0; id < int32_t(bytes_.size()); ++id) {
    for (const auto& a : added_.tokens()) {
      if (a.id != id) continue;
      Json t = Json::object();
      t["id"] = int64_t(a.id);
      t["content"] = a.content;
      t["single_word"] = false;
      t["lstrip"] = a.lstrip;
      t["rstrip"] = a.rstrip;
      t["normalized"] = false;
      t["special"] = a.special;
      added.push_back(std::move(t));
    }
  }
  j["added_tokens"] = std::move(added);
  j["normalizer"] = nullptr;
  auto byte_level_json = [&](bool use_regex) {
    Json b = Json::object();
    b["type"] = "ByteLevel";
    b["add_prefix_space"] = config_.add_prefix_space;
    b["trim_offsets"] = true;
    b["use_regex"] = use_regex;
    return b;
  };
  Json seq = Json::array();
  if (config_.pre.individual_digits) {
    Json d = Json::object();
    d["type"] = "Digits";
    d["individual_digits"] = true;
    seq.push_back(std::move(d));
  }
  if (config_.pre.pattern == SplitPattern::Llama3) {
    Json s = Json::object();
    s["type"] = "Split";
    Json pat = Json::object();
    pat["Regex"] = kLlama3Pattern;
    s["pattern"] = std::move(pat);
    s["behavior"] = "Isolated";
    s["invert"] = false;
    seq.push_back(std::move(s));
    seq.push_back(byte_level_json(false));
  } else {
    seq.push_back(byte_level_json(config_.pre.pattern == SplitPattern::Gpt2));
  }
  if (seq.size() == 1) {
    j["pre_tokenizer"] = seq.as_array()[0];
  } else {
    Json s = Json::object();
    s["type"] = "Sequence";
    s["pretokenizers"] = std::move(seq);
    j["pre_tokenizer"] = std::move(s);
  }
  j["post_processor"] = nullptr;
  Json dec = Json::object();
  dec["type"] = "ByteLevel";
  dec["add_prefix_space"] = true;
  dec["trim_offsets"] = true;
  dec["use_regex"] = true;
  j["decoder"] = std::move(dec);
  Json model = Json::object();
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  model["unk_token"] = nullptr;
  model["continuing_subword_prefix"] = nullptr;
  model["end_of_word_suffix"] = nullptr;
  model["fuse_unk"] = false;
  model["byte_fallback"] = false;
  model["ignore_merges"] = config_.ignore_merges;
  Json::Object vocab;  // built directly: Json::operator[] searches keys linearly
  vocab.reserve(bytes_.size());
  for (size_t id = 0; id < bytes_.size(); ++id) {
    if (bytes_[id].empty()) continue;  // an id the vocabulary left unused
    vocab.emplace_back(byte_level_[id] ? byte_level::encode(bytes_[id]) : bytes_[id], Json(int64_t(id)));
  }
  model["vocab"] = Json(std::move(vocab));
  Json::Array merges;
  merges.reserve(merge_list_.size());
  for (auto [a, b] : merge_list_) merges.emplace_back(byte_level::encode(bytes_[a]) + " " + byte_level::encode(bytes_[b]));
  model["merges"] = Json(std::move(merges));
  j["model"] = std::move(model);
  return j;
}

}  // namespace mnemo
