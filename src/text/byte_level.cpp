#include "text/byte_level.h"

#include <array>

#include "text/unicode.h"

namespace mnemo::byte_level {
namespace {

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<int, 324> to_byte{};  // code points 0..323 cover the whole alphabet; -1 = not in it
  Tables() {
    to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[b] = printable ? char32_t(b) : char32_t(256 + n++);
      to_byte[to_char[b]] = b;
    }
  }
};
const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t byte_to_char(unsigned char b) { return tables().to_char[b]; }

std::string encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) unicode::append_utf8(tables().to_char[b], out);
  return out;
}

bool decode(std::string_view text, std::string& out) {
  out.clear();
  if (unicode::find_invalid_utf8(text) != std::string_view::npos) return false;
  for (char32_t cp : unicode::decode_utf8(text)) {
    if (cp >= tables().to_byte.size() || tables().to_byte[cp] < 0) return false;
    out.push_back(char(tables().to_byte[cp]));
  }
  return true;
}

}  // namespace mnemo::byte_level
