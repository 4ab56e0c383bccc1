#include "text/unicode.h"

#include <algorithm>

namespace mnemo::unicode {
namespace {

struct CategoryRange {
  uint32_t lo, hi;
  uint8_t value;
};
struct MappingEntry {
  uint32_t cp;
  uint32_t offset;
  uint8_t length;
};

#include "text/unicode_data.inc"

template <size_t N>
const CategoryRange* find_range(const CategoryRange (&table)[N], char32_t cp) {
  auto it = std::upper_bound(std::begin(table), std::end(table), uint32_t(cp),
                             [](uint32_t c, const CategoryRange& r) { return c < r.lo; });
  if (it == std::begin(table)) return nullptr;
  --it;
  return cp <= it->hi ? it : nullptr;
}

template <size_t N>
const MappingEntry* find_mapping(const MappingEntry (&table)[N], char32_t cp) {
  auto it = std::lower_bound(std::begin(table), std::end(table), uint32_t(cp),
                             [](const MappingEntry& e, uint32_t c) { return e.cp < c; });
  return (it != std::end(table) && it->cp == cp) ? it : nullptr;
}

// Hangul syllables decompose arithmetically (Unicode 3.12) rather than by table.
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = 11172;

}  // namespace

Category category(char32_t cp) {
  if (cp > 0x10FFFF) return Category::Cn;
  const CategoryRange* r = find_range(kCategoryRanges, cp);
  return r ? Category(r->value) : Category::Cn;
}

const char* category_name(Category c) { return kCategoryNames[int(c)]; }

bool is_punctuation(char32_t cp) {
  auto c = category(cp);
  return c >= Category::Pc && c <= Category::Po;
}

bool is_other(char32_t cp) {
  auto c = category(cp);
  return c == Category::Cn || c >= Category::Cc;
}

bool is_mark_nonspacing(char32_t cp) { return cp >= 0x300 && category(cp) == Category::Mn; }

int combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const CategoryRange* r = find_range(kCombiningRanges, cp);
  return r ? r->value : 0;
}

void append_lower(char32_t cp, std::u32string& out) {
  if (cp < 128) {
    out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    return;
  }
  const MappingEntry* e = find_mapping(kLowercase, cp);
  if (!e) {
    out.push_back(cp);
    return;
  }
  for (int i = 0; i < e->length; ++i) out.push_back(kLowercasePool[e->offset + i]);
}

void append_nfd(char32_t cp, std::u32string& out) {
  if (cp < 0xC0) {
    out.push_back(cp);
    return;
  }
  if (cp >= kSBase && cp < kSBase + kSCount) {
    int s = int(cp - kSBase);
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  const MappingEntry* e = find_mapping(kDecompositions, cp);
  if (!e) {
    out.push_back(cp);
    return;
  }
  for (int i = 0; i < e->length; ++i) out.push_back(kDecompositionPool[e->offset + i]);
}

std::u32string nfd(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t cp : s) append_nfd(cp, out);
  // Canonical ordering: stable-sort each maximal run of non-starters by combining class.
  for (size_t i = 0; i < out.size();) {
    if (combining_class(out[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && combining_class(out[j]) != 0) ++j;
    if (j - i > 1)
      std::stable_sort(out.begin() + i, out.begin() + j,
                       [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  return out;
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is invalid.
static size_t utf8_sequence_length(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return uint8_t(s[k]); };
  uint8_t c = b(i);
  if (c < 0x80) return 1;
  size_t n = s.size() - i;
  auto cont = [&](size_t k) { return (b(i + k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return n >= 2 && cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || !cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(i + 1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(i + 1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || !cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(i + 1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(i + 1) >= 0x90) return 0;  // > U+10FFFF
    return 4;
  }
  return 0;
}

size_t find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (uint8_t(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = utf8_sequence_length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::u32string decode_utf8(std::string_view s, std::vector<uint32_t>* offsets) {
  std::u32string out;
  out.reserve(s.size());
  if (offsets) {
    offsets->clear();
    offsets->reserve(s.size() + 1);
  }
  size_t i = 0;
  while (i < s.size()) {
    if (offsets) offsets->push_back(uint32_t(i));
    uint8_t c = uint8_t(s[i]);
    char32_t cp;
    if (c < 0x80) {
      cp = c;
      i += 1;
    } else if (c < 0xE0) {
      cp = (char32_t(c & 0x1F) << 6) | (uint8_t(s[i + 1]) & 0x3F);
      i += 2;
    } else if (c < 0xF0) {
      cp = (char32_t(c & 0x0F) << 12) | (char32_t(uint8_t(s[i + 1]) & 0x3F) << 6) | (uint8_t(s[i + 2]) & 0x3F);
      i += 3;
    } else {
      cp = (char32_t(c & 0x07) << 18) | (char32_t(uint8_t(s[i + 1]) & 0x3F) << 12) |
           (char32_t(uint8_t(s[i + 2]) & 0x3F) << 6) | (uint8_t(s[i + 3]) & 0x3F);
      i += 4;
    }
    out.push_back(cp);
  }
  if (offsets) offsets->push_back(uint32_t(s.size()));
  return out;
}

void append_utf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : s) append_utf8(cp, out);
  return out;
}

std::string repair_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace mnemo::unicode
