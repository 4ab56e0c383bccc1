#include "text/wordpiece.h"

#include <algorithm>

#include "base/error.h"
#include "base/file.h"
#include "text/unicode.h"

namespace mnemo {

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, WordPieceConfig config, std::string source,
                                       std::vector<AddedToken> added)
    : source_(std::move(source)), vocab_(std::move(vocab)), config_(std::move(config)) {
  if (vocab_.empty()) throw Error(cat(source_, ": empty vocabulary"));
  for (size_t id = 0; id < vocab_.size(); ++id) {
    ids_.emplace(vocab_[id], int32_t(id));  // first id wins for a duplicated line
    max_token_bytes_ = std::max(max_token_bytes_, vocab_[id].size());
  }
  auto it = ids_.find(config_.unk_token);
  if (it == ids_.end()) throw Error(cat(source_, ": unknown token '", config_.unk_token, "' is not in the vocabulary"));
  unk_id_ = it->second;
  for (const auto& a : added)
    if (a.id < 0 || size_t(a.id) >= vocab_.size())
      throw Error(cat(source_, ": added token '", a.content, "' has id ", a.id, " outside the vocabulary"));
  added_ = AddedTokens(std::move(added));
}

std::unique_ptr<WordPieceTokenizer> WordPieceTokenizer::from_vocab_txt(const std::string& path, bool lowercase) {
  std::string text = read_file(path);
  size_t bad = unicode::find_invalid_utf8(text);
  if (bad != std::string::npos) throw Error(cat(path, ": invalid UTF-8 at byte ", bad, " (not a vocab.txt)"));
  std::vector<std::string> vocab;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t e = text.find('\n', pos);
    if (e == std::string::npos) e = text.size();
    std::string line = text.substr(pos, e - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    vocab.push_back(std::move(line));
    pos = e + 1;
  }
  WordPieceConfig cfg;
  cfg.lowercase = lowercase;
  std::vector<AddedToken> added;
  for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"})
    for (size_t id = 0; id < vocab.size(); ++id)
      if (vocab[id] == s) {
        added.push_back({s, int32_t(id), true});
        break;
      }
  if (std::find(vocab.begin(), vocab.end(), "[UNK]") == vocab.end())
    throw Error(cat(path, ": not a WordPiece vocab.txt (no [UNK] token)"));
  return std::make_unique<WordPieceTokenizer>(std::move(vocab), cfg, path, std::move(added));
}

std::unique_ptr<WordPieceTokenizer> WordPieceTokenizer::from_tokenizer_json(const Json& j, const std::string& source) {
  const Json* model = j.find("model");
  if (!model || model->string_or("type", "") != "WordPiece") throw Error(cat(source, ": model type is not WordPiece"));
  WordPieceConfig cfg;
  cfg.unk_token = model->string_or("unk_token", "[UNK]");
  cfg.prefix = model->string_or("continuing_subword_prefix", "##");
  cfg.max_chars = int(model->int_or("max_input_chars_per_word", 100));
  cfg.lowercase = false;
  cfg.clean_text = false;
  cfg.handle_chinese_chars = false;
  cfg.strip_accents = false;
  if (const Json* norm = j.find("normalizer"); norm && !norm->is_null()) {
    std::string type = norm->string_or("type", "");
    if (type != "BertNormalizer") throw Error(cat(source, ": normalizer '", type, "' is not supported for WordPiece"));
    cfg.lowercase = norm->bool_or("lowercase", true);
    cfg.clean_text = norm->bool_or("clean_text", true);
    cfg.handle_chinese_chars = norm->bool_or("handle_chinese_chars", true);
    const Json* sa = norm->find("strip_accents");
    cfg.strip_accents = (sa && !sa->is_null()) ? std::optional<bool>(sa->as_bool()) : std::nullopt;
  }
  if (const Json* pre = j.find("pre_tokenizer"); pre && !pre->is_null()) {
    std::string type = pre->string_or("type", "");
    if (type != "BertPreTokenizer") throw Error(cat(source, ": pre_tokenizer '", type, "' is not supported for WordPiece"));
  }
  const Json* vocab = model->find("vocab");
  if (!vocab || !vocab->is_object()) throw Error(cat(source, ": model.vocab is missing"));
  std::vector<std::string> tokens(vocab->size());
  for (const auto& [tok, idv] : vocab->as_object()) {
    int64_t id = idv.as_int(cat(source, ": model.vocab['", tok, "']"));
    if (id < 0 || id >= int64_t(tokens.size())) throw Error(cat(source, ": model.vocab['", tok, "'] = ", id, " is out of range"));
    tokens[id] = tok;
  }
  std::vector<AddedToken> added;
  if (const Json* a = j.find("added_tokens"); a && !a->is_null()) {
    for (const Json& t : a->as_array(cat(source, ": added_tokens"))) {
      AddedToken at{t.string_or("content", ""), int32_t(t.int_or("id", -1)), t.bool_or("special", false),
                    t.bool_or("lstrip", false), t.bool_or("rstrip", false)};
      if (t.bool_or("single_word", false))
        throw Error(cat(source, ": added token '", at.content, "' has single_word, which is not supported"));
      added.push_back(std::move(at));
    }
  }
  return std::make_unique<WordPieceTokenizer>(std::move(tokens), cfg, source, std::move(added));
}

int32_t WordPieceTokenizer::special_id(std::string_view token) const {
  int32_t id = added_.find(token);
  if (id >= 0) return id;
  auto it = ids_.find(std::string(token));
  return it == ids_.end() ? -1 : it->second;
}

namespace {

bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}
// BERT counts all ASCII non-alphanumeric printable characters as punctuation ('$', '+', '^' ... too).
bool is_bert_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return c >= 128 && unicode::is_punctuation(c);
}
bool is_bert_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return c < 32 || c == 127 || (c >= 128 && unicode::is_other(c));
}

}  // namespace

// Words as code point strings, after BERT's normalizer and pre-tokenizer.
static void bert_words(std::string_view text, const WordPieceConfig& cfg, std::vector<std::u32string>& words) {
  std::u32string in = unicode::decode_utf8(text);
  std::u32string s;
  s.reserve(in.size());
  for (char32_t c : in) {
    if (cfg.clean_text) {
      if (c == 0 || c == 0xFFFD || is_bert_control(c)) continue;
      if (unicode::is_whitespace(c)) c = ' ';
    }
    if (cfg.handle_chinese_chars && is_cjk(c)) {
      s.push_back(' ');
      s.push_back(c);
      s.push_back(' ');
    } else {
      s.push_back(c);
    }
  }
  if (cfg.strip_accents.value_or(cfg.lowercase)) {
    bool ascii = std::all_of(s.begin(), s.end(), [](char32_t c) { return c < 0xC0; });
    if (!ascii) {
      std::u32string d = unicode::nfd(s);
      s.clear();
      for (char32_t c : d)
        if (!unicode::is_mark_nonspacing(c)) s.push_back(c);
    }
  }
  if (cfg.lowercase) {
    std::u32string l;
    l.reserve(s.size());
    for (char32_t c : s) unicode::append_lower(c, l);
    s.swap(l);
  }
  std::u32string word;
  for (char32_t c : s) {
    if (unicode::is_whitespace(c)) {
      if (!word.empty()) words.push_back(std::move(word)), word.clear();
    } else if (is_bert_punctuation(c)) {
      if (!word.empty()) words.push_back(std::move(word)), word.clear();
      words.push_back(std::u32string(1, c));
    } else {
      word.push_back(c);
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
}

std::vector<std::string> WordPieceTokenizer::pre_tokenize(std::string_view text) const {
  size_t bad = unicode::find_invalid_utf8(text);
  if (bad != std::string_view::npos) throw Error(cat("text: invalid UTF-8 at byte ", bad));
  std::vector<std::u32string> words;
  bert_words(text, config_, words);
  std::vector<std::string> out;
  for (const auto& w : words) out.push_back(unicode::encode_utf8(w));
  return out;
}

std::vector<int32_t> WordPieceTokenizer::encode(std::string_view text) const {
  size_t bad = unicode::find_invalid_utf8(text);
  if (bad != std::string_view::npos) throw Error(cat("text: invalid UTF-8 at byte ", bad));
  std::vector<int32_t> out;
  out.reserve(text.size() / 4 + 1);
  added_.split(text, [&](std::string_view piece) { encode_ordinary(piece, out); },
               [&](int32_t id) { out.push_back(id); });
  return out;
}

void WordPieceTokenizer::encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<std::u32string> words;
  bert_words(text, config_, words);
  for (const auto& w : words) encode_word(unicode::encode_utf8(w), w.size(), out);
}

// Greedy longest-match-first over character boundaries; pieces after the first carry the "##" prefix.
void WordPieceTokenizer::encode_word(std::string_view word, size_t n_chars, std::vector<int32_t>& out) const {
  if (int(n_chars) > config_.max_chars) {
    out.push_back(unk_id_);
    return;
  }
  const size_t mark = out.size();
  std::string candidate;
  size_t start = 0;
  while (start < word.size()) {
    size_t end = std::min(word.size(), start + max_token_bytes_);
    int32_t found = -1;
    while (end > start) {
      // only cut at a character boundary
      while (end > start && end < word.size() && (uint8_t(word[end]) & 0xC0) == 0x80) --end;
      if (end == start) break;
      candidate.clear();
      if (start > 0) candidate = config_.prefix;
      candidate.append(word.substr(start, end - start));
      auto it = ids_.find(candidate);
      if (it != ids_.end()) {
        found = it->second;
        break;
      }
      --end;
    }
    if (found < 0) {
      out.resize(mark);
      out.push_back(unk_id_);
      return;
    }
    out.push_back(found);
    start = end;
  }
}

std::string WordPieceTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  const std::string& pre = config_.prefix;
  for (int32_t id : ids) {
    if (id < 0 || size_t(id) >= vocab_.size())
      throw Error(cat(source_, ": token id ", id, " is out of range [0, ", vocab_.size(), ")"));
    const std::string& t = vocab_[id];
    if (!pre.empty() && t.compare(0, pre.size(), pre) == 0) {
      out.append(t, pre.size());
    } else {
      if (!out.empty()) out.push_back(' ');
      out += t;
    }
  }
  return out;
}

}  // namespace mnemo
