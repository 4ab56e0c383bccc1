#pragma once
// Pre-tokenization of byte-level BPE: the regex splits of GPT-2 and Llama-3 written by hand over code points (no
// regex engine), and the "individual digits" split of SmolLM2/StarCoder. The patterns, exactly as tokenizer.json
// files spell them, are kGpt2Pattern and kLlama3Pattern; a hand-written splitter is only ever selected by an exact
// match of the pattern string, so a file with a different regex is refused instead of silently split differently.
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace mnemo {

enum class SplitPattern : uint8_t { None, Gpt2, Llama3 };

extern const char* const kGpt2Pattern;   // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
extern const char* const kLlama3Pattern;

// Pattern string -> splitter; None when the string is not one of the known patterns (callers refuse it).
SplitPattern split_pattern_from_regex(std::string_view regex);
const char* split_pattern_regex(SplitPattern p);
const char* split_pattern_name(SplitPattern p);  // "gpt2", "llama3", "none"

struct PreTokenizer {
  SplitPattern pattern = SplitPattern::Gpt2;
  bool individual_digits = false;  // every \p{N} code point becomes its own piece before the pattern split

  // Splits valid UTF-8 text into pieces, appended to `out` as byte ranges [begin, end) of `text`.
  void split(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& out) const;
};

}  // namespace mnemo
