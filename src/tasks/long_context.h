#pragma once
// Long-context task builders: a bAbI-style story's facts hidden in background text, the question at the end.
//
//   memorize    one qa1 fact at the very start                     answer: one of kLocations
//   detect      one qa1 fact at a random sentence boundary          answer: one of kLocations
//   reasoning   two chained qa4 facts at random boundaries          answer: one of kLocations
//   qa1..qa4    a bAbI story's facts at random boundaries, in order answer: one of kLocations
//   passkey     llama.cpp's instruction, then the key in filler     answer: a 5-digit number
//
// EXACT LENGTH. The input is built from pieces (facts, background sentences, and at the end single words) joined
// by one space. For tokenizers whose pre-tokenizer splits before a space (GPT-2 / HF byte-level BPE, WordPiece)
// encode(a + " " + b) = encode(a) ++ encode(" " + b), so the whole input's count is the sum of the pieces'
// counts (each counted with its leading space). Whole sentences are added while they fit in the budget; then
// words of the following text are added one by one, skipping any word longer than what is left, until exactly
// N tokens are used (one-token words such as " the" make this end quickly). The sum rule is checked at every
// join (encode(" " + last word + " " + next word) against its parts) and, for N up to `verify_limit`, by
// encoding the whole input once more; a tokenizer that breaks the rule is an Error, never a wrong length.
//
// STREAMING. The input goes out piece by piece through a sink; only the current sentence is held, so inputs of
// tens of millions of tokens are written straight to disk. Background sentences come from the chosen split's
// documents starting at a random document and sentence, continuing through the split in file order and
// cycling when it runs out.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/rng.h"
#include "tasks/babi.h"
#include "tasks/corpus.h"
#include "tasks/task_file.h"
#include "text/tokenizer.h"

namespace mnemo::tasks {

enum class TaskKind { memorize, detect, reasoning, qa1, qa2, qa3, qa4, passkey };

// "memorize", "detect" (also "detect_memorize"), "reasoning", "qa1".."qa4", "passkey"; Error listing the known
// names otherwise.
TaskKind parse_task(std::string_view name);
const char* task_name(TaskKind kind);
// The --facts-min/--facts-max range of story sentences, drawn uniformly in [min, max], for qa1-qa3 (the other
// tasks' facts are fixed), set in o after checking it: min 0 = the task's shortest story (qa1 1, qa2 2, qa3 3
// sentences), at most kMaxFacts. Error naming the flags otherwise.
constexpr int64_t kMaxFacts = 10000;
void set_fact_range(StoryOptions& o, TaskKind kind, int64_t min, int64_t max);

// The story (facts, question, answer) a task hides, drawn from rng.
Story make_story(TaskKind kind, Rng& rng, const StoryOptions& opt = {});

// An endless stream of background sentences.
class Background {
 public:
  virtual ~Background() = default;
  virtual std::string_view next() = 0;
};

// Sentences of a split's documents from (doc, sentence), in order, cycling. `docs` must outlive it.
class CorpusBackground : public Background {
 public:
  CorpusBackground(const std::vector<CorpusDocument>& docs, size_t doc, size_t sentence);
  std::string_view next() override;

 private:
  const std::vector<CorpusDocument>& docs_;
  size_t doc_, sent_;
  std::vector<std::string_view> sentences_;  // of docs_[doc_]
};

// Another background with places named outside any fact: each sentence, with probability `rate`, has one of its
// words (a run of 3+ ASCII letters) replaced by a random place of kLocations, capitalised like the word. Real text
// names places too ("At kitchen tables across our country"); a model that must notice a fact wherever it comes
// learns from these not to take a mere mention for one. Training uses it; evaluations only when asked.
class DistractorBackground : public Background {
 public:
  // rate: checked by check_distractors.
  DistractorBackground(std::unique_ptr<Background> inner, double rate, uint64_t seed);
  std::string_view next() override;

 private:
  std::unique_ptr<Background> inner_;
  double rate_;
  Rng rng_;
  std::string edited_;  // the sentence last returned, when it was edited
};

// The one check of a distractor rate (train rmt, eval rmt, tasks generate and the class above): Error
// "--distractors must be a probability in [0, 1], got X" unless 0 <= rate <= 1.
void check_distractors(double rate);

// llama.cpp's passkey filler, cycled.
class FillerBackground : public Background {
 public:
  std::string_view next() override;

 private:
  size_t i_ = 0;
};

struct TaskOptions {
  TaskKind task = TaskKind::memorize;
  // N. Tokens of the input, or of input + " " + question when question_in_length (so that, with N = S*T, the
  // input and its question fill exactly S segments of T text tokens, the question ending the last one).
  int64_t length_tokens = 0;
  bool question_in_length = false;
  int64_t segments = 0, segment_tokens = 0;  // recorded in the sample when the length was given in segments
  StoryOptions story;
  double distractors = 0;  // DistractorBackground's rate per background sentence (0 = the corpus as it is)
  int64_t verify_limit = int64_t(1) << 16;  // re-encode the whole input when N <= this
};

// What a built sample is, besides its input text.
struct SampleInfo {
  std::string task, question, target;
  int target_index = -1;  // index in kLocations, -1 (passkey)
  std::vector<std::string> facts;
  std::vector<int> supporting;              // indices into facts
  std::vector<int64_t> fact_positions;      // token index in the input where each fact starts
  std::vector<int64_t> fact_byte_offsets;   // byte offset in the input where each fact starts
  int64_t length_tokens = 0;                // tokens of the input
  int64_t question_tokens = 0;              // tokens of " " + question
  int64_t input_bytes = 0;
};

// Build one sample: draws the story and the fact positions from rng, writes the input through `sink`, one call
// per piece with its joining space (" word"), so the tokens of the calls, concatenated, are the input's tokens:
// a consumer can tokenize as it goes without ever holding the text.
SampleInfo build_sample(const Tokenizer& tok, const TaskOptions& opt, Rng& rng, Background& background,
                        const std::function<void(std::string_view)>& sink);

struct TaskSample {
  std::string input;
  SampleInfo info;
};
// Build one sample in memory (tests, small evaluations).
TaskSample build_sample(const Tokenizer& tok, const TaskOptions& opt, Rng& rng, Background& background);

struct GenerateOptions {
  TaskOptions task;
  int64_t count = 1;
  uint64_t seed = 0;
  std::string split = "test";
  std::string corpus_dir = "data/corpus";
  std::string tokenizer_name;  // recorded in each record ("tokenizer")
};

// The generator of sample `index` of a file made with `seed` (independent of count, so a longer file extends a
// shorter one), and the background it reads (with distractors > 0, wrapped in a DistractorBackground seeded
// from rng).
Rng sample_rng(uint64_t seed, int64_t index);
std::unique_ptr<Background> make_background(TaskKind kind, const std::vector<CorpusDocument>* docs, Rng& rng,
                                            double distractors = 0);

// The fields a task file stores beside "input" (question, target, task, positions, ...), in file order.
Json record_fields(const SampleInfo& info, const GenerateOptions& opt, int64_t index);

// The same samples write_task_file would write, in memory, as the reader would return them (for evaluation verbs
// that generate their own data; fine for inputs that fit in memory).
std::vector<TaskRecord> generate_samples(const Tokenizer& tok, const GenerateOptions& opt);

// Write `count` samples as JSON Lines ({"input", "question", "target"} + extras), atomically. Loads the split
// (except for passkey, whose background is the filler). Returns the total number of input tokens written.
int64_t write_task_file(const std::string& path, const Tokenizer& tok, const GenerateOptions& opt);

}  // namespace mnemo::tasks
