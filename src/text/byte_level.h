#pragma once
// GPT-2's byte-level alphabet: each of the 256 byte values is shown as one printable code point ('!'..'~', '¡'..'¬',
// '®'..'ÿ' as themselves, the other 68 bytes as U+0100 onwards, in byte order), so vocabularies and merges of
// byte-level BPE are written as text. Vocabulary files store tokens in this form; mnemo stores raw bytes.
#include <string>
#include <string_view>

namespace mnemo::byte_level {

char32_t byte_to_char(unsigned char b);
// Raw bytes -> byte-level text (UTF-8).
std::string encode(std::string_view bytes);
// Byte-level text (UTF-8) -> raw bytes. Returns false when a code point is outside the alphabet (or the UTF-8 is
// invalid); `out` is then unspecified.
bool decode(std::string_view text, std::string& out);

}  // namespace mnemo::byte_level
