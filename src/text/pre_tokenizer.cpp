#include "text/pre_tokenizer.h"

#include <string>

#include "text/unicode.h"

namespace mnemo {

const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

SplitPattern split_pattern_from_regex(std::string_view regex) {
  if (regex == kGpt2Pattern) return SplitPattern::Gpt2;
  if (regex == kLlama3Pattern) return SplitPattern::Llama3;
  return SplitPattern::None;
}

const char* split_pattern_regex(SplitPattern p) {
  return p == SplitPattern::Gpt2 ? kGpt2Pattern : p == SplitPattern::Llama3 ? kLlama3Pattern : "";
}

const char* split_pattern_name(SplitPattern p) {
  return p == SplitPattern::Gpt2 ? "gpt2" : p == SplitPattern::Llama3 ? "llama3" : "none";
}

namespace {

using unicode::is_letter;
using unicode::is_number;
using unicode::is_whitespace;

// Length (in code points) of a contraction 's 't 're 've 'm 'll 'd at cp[i] (cp[i] == '\''), or 0.
size_t contraction(const char32_t* cp, size_t i, size_t n, bool ignore_case) {
  auto at = [&](size_t k) -> char32_t {
    if (i + k >= n) return 0;
    char32_t c = cp[i + k];
    return (ignore_case && c >= 'A' && c <= 'Z') ? c + 32 : c;
  };
  char32_t a = at(1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  char32_t b = at(2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

bool is_other_symbol(char32_t c) { return !is_whitespace(c) && !is_letter(c) && !is_number(c); }

// Whitespace alternatives shared by both patterns: \s+(?!\S) then \s+. Greedy \s+ takes the whole run; if a
// non-space follows, backtracking gives the run minus its last code point, unless that leaves nothing.
size_t whitespace_run(const char32_t* cp, size_t i, size_t n) {
  size_t j = i;
  while (j < n && is_whitespace(cp[j])) ++j;
  if (j < n && j - i > 1) return j - 1 - i;
  return j - i;
}

// One match of GPT-2's pattern at cp[i] (always at least one code point).
size_t match_gpt2(const char32_t* cp, size_t i, size_t n) {
  char32_t c = cp[i];
  if (c == '\'') {
    if (size_t k = contraction(cp, i, n, false)) return k;
  }
  size_t s = (c == ' ' && i + 1 < n) ? i + 1 : i;  // the optional leading space
  for (int pass = 0; pass < 2; ++pass, s = i) {
    char32_t d = cp[s];
    size_t j = s;
    if (is_letter(d)) {
      while (j < n && is_letter(cp[j])) ++j;
    } else if (is_number(d)) {
      while (j < n && is_number(cp[j])) ++j;
    } else if (is_other_symbol(d)) {
      while (j < n && is_other_symbol(cp[j])) ++j;
    }
    if (j > s) return j - i;
    if (s == i) break;
  }
  if (is_whitespace(c)) return whitespace_run(cp, i, n);
  return 1;  // unreachable for valid classes; keeps progress guaranteed
}

// One match of the Llama-3 pattern at cp[i].
size_t match_llama3(const char32_t* cp, size_t i, size_t n) {
  char32_t c = cp[i];
  if (c == '\'') {
    if (size_t k = contraction(cp, i, n, true)) return k;
  }
  // [^\r\n\p{L}\p{N}]?\p{L}+
  {
    size_t s = i;
    if (c != '\r' && c != '\n' && !is_letter(c) && !is_number(c) && i + 1 < n && is_letter(cp[i + 1])) s = i + 1;
    size_t j = s;
    while (j < n && is_letter(cp[j])) ++j;
    if (j > s) return j - i;
  }
  // \p{N}{1,3}
  if (is_number(c)) {
    size_t j = i;
    while (j < n && j - i < 3 && is_number(cp[j])) ++j;
    return j - i;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  {
    size_t s = (c == ' ' && i + 1 < n && is_other_symbol(cp[i + 1])) ? i + 1 : i;
    size_t j = s;
    while (j < n && is_other_symbol(cp[j])) ++j;
    if (j > s) {
      while (j < n && (cp[j] == '\r' || cp[j] == '\n')) ++j;
      return j - i;
    }
  }
  // \s*[\r\n]+ : up to and including the last newline of the whitespace run.
  size_t j = i;
  size_t last_newline = n;
  while (j < n && is_whitespace(cp[j])) {
    if (cp[j] == '\r' || cp[j] == '\n') last_newline = j;
    ++j;
  }
  if (last_newline != n) return last_newline + 1 - i;
  if (j > i) return whitespace_run(cp, i, n);
  return 1;
}

}  // namespace

void PreTokenizer::split(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& out) const {
  if (text.empty()) return;
  thread_local std::vector<uint32_t> offsets;
  std::u32string cps = unicode::decode_utf8(text, &offsets);
  const size_t n = cps.size();
  auto run_pattern = [&](size_t b, size_t e) {  // code point range [b, e)
    if (pattern == SplitPattern::None) {
      out.emplace_back(offsets[b], offsets[e]);
      return;
    }
    size_t i = b;
    while (i < e) {
      size_t k = pattern == SplitPattern::Gpt2 ? match_gpt2(cps.data(), i, e) : match_llama3(cps.data(), i, e);
      out.emplace_back(offsets[i], offsets[i + k]);
      i += k;
    }
  };
  if (!individual_digits) {
    run_pattern(0, n);
    return;
  }
  size_t start = 0;
  for (size_t i = 0; i < n; ++i) {
    if (is_number(cps[i])) {
      if (i > start) run_pattern(start, i);
      run_pattern(i, i + 1);
      start = i + 1;
    }
  }
  if (start < n) run_pattern(start, n);
}

}  // namespace mnemo
