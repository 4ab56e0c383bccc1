#include "tasks/long_context.h"

#include <algorithm>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/progress.h"

namespace mnemo::tasks {

namespace {

struct TaskName {
  const char* name;
  TaskKind kind;
};
constexpr TaskName kTaskNames[] = {{"memorize", TaskKind::memorize}, {"detect", TaskKind::detect},
                                   {"reasoning", TaskKind::reasoning}, {"qa1", TaskKind::qa1},
                                   {"qa2", TaskKind::qa2},             {"qa3", TaskKind::qa3},
                                   {"qa4", TaskKind::qa4},             {"passkey", TaskKind::passkey}};

std::string_view first_word(std::string_view s) { return s.substr(0, s.find(' ')); }
std::string_view last_word(std::string_view s) {
  size_t sp = s.rfind(' ');
  return sp == std::string_view::npos ? s : s.substr(sp + 1);
}

// Emits pieces joined by single spaces and keeps the exact token count (see the header: counts add up at joins).
class Assembler {
 public:
  Assembler(const Tokenizer& tok, const std::function<void(std::string_view)>& sink, bool keep_text)
      : tok_(tok), sink_(sink), keep_(keep_text) {}

  int64_t count(std::string_view s) const { return int64_t(tok_.encode(s).size()); }
  // Tokens `piece` adds when emitted next (with its joining space unless it opens the input).
  int64_t cost(std::string_view piece) const { return any_ ? count(cat(" ", piece)) : count(piece); }

  // Throws unless the tokenizer keeps the join between what was emitted last and `next` additive.
  void check_join(std::string_view next) const {
    if (!any_) return;
    std::string a = cat(" ", last_), b = cat(" ", first_word(next));
    if (count(a + b) != count(a) + count(b))
      throw Error(cat("tokenizer: the tokens of '", last_, " ", first_word(next), "' are not those of '", last_,
                      "' followed by those of ' ", first_word(next),
                      "'; exact lengths need a tokenizer that splits text before spaces"));
  }

  void emit(std::string_view piece, int64_t cost) {
    check_join(piece);
    // One call per piece, joining space included: encoding each call gives exactly the input's tokens.
    if (any_) put(cat(" ", piece));
    else put(piece);
    tokens_ += cost;
    any_ = true;
    last_ = std::string(last_word(piece));
  }

  int64_t tokens() const { return tokens_; }
  int64_t bytes() const { return bytes_; }
  bool empty() const { return !any_; }
  const std::string& text() const { return text_; }

 private:
  void put(std::string_view s) {
    sink_(s);
    bytes_ += int64_t(s.size());
    if (keep_) text_ += s;
  }
  const Tokenizer& tok_;
  const std::function<void(std::string_view)>& sink_;
  bool keep_;
  bool any_ = false;
  int64_t tokens_ = 0, bytes_ = 0;
  std::string last_, text_;
};

std::vector<std::string_view> words_of(std::string_view s) {
  std::vector<std::string_view> w;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string_view::npos) j = s.size();
    if (j > i) w.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return w;
}

}  // namespace

TaskKind parse_task(std::string_view name) {
  if (name == "detect_memorize" || name == "detect-and-memorize") return TaskKind::detect;
  for (auto& t : kTaskNames)
    if (name == t.name) return t.kind;
  std::string known;
  for (auto& t : kTaskNames) known += cat(known.empty() ? "" : ", ", t.name);
  throw Error(cat("unknown task '", name, "' (known: ", known, ")"));
}

void set_fact_range(StoryOptions& o, TaskKind kind, int64_t min, int64_t max) {
  int* range[2];
  int64_t shortest = 0;  // the least the story needs: qa2 a pick-up and a move, qa3 two moves with the object
  switch (kind) {
    case TaskKind::qa1: range[0] = &o.qa1_min, range[1] = &o.qa1_max, shortest = 1; break;
    case TaskKind::qa2: range[0] = &o.qa2_min, range[1] = &o.qa2_max, shortest = 2; break;
    case TaskKind::qa3: range[0] = &o.qa3_min, range[1] = &o.qa3_max, shortest = 3; break;
    default: throw Error(cat("--facts-min/--facts-max are for qa1-qa3, not --task ", task_name(kind)));
  }
  if (min == 0) min = shortest;
  if (min < shortest || max < min || max > kMaxFacts)
    throw Error(cat("--facts-min/--facts-max: ", task_name(kind), " needs ", shortest, " <= min <= max <= ", kMaxFacts,
                    ", got ", min, ", ", max));
  *range[0] = int(min), *range[1] = int(max);
}

const char* task_name(TaskKind kind) {
  for (auto& t : kTaskNames)
    if (t.kind == kind) return t.name;
  MNEMO_CHECK(false, "task kind ", int(kind));
}

Story make_story(TaskKind kind, Rng& rng, const StoryOptions& opt) {
  switch (kind) {
    case TaskKind::memorize:
    case TaskKind::detect: return make_single_fact(rng);
    case TaskKind::reasoning: return make_reasoning(rng);
    case TaskKind::qa1: return make_qa1(rng, opt);
    case TaskKind::qa2: return make_qa2(rng, opt);
    case TaskKind::qa3: return make_qa3(rng, opt);
    case TaskKind::qa4: return make_qa4(rng);
    case TaskKind::passkey: return make_passkey(rng);
  }
  MNEMO_CHECK(false, "task kind ", int(kind));
}

CorpusBackground::CorpusBackground(const std::vector<CorpusDocument>& docs, size_t doc, size_t sentence)
    : docs_(docs), doc_(doc % std::max<size_t>(docs.size(), 1)) {
  MNEMO_CHECK(!docs.empty(), "background needs documents");
  sentences_ = split_sentences(docs_[doc_].text);
  sent_ = sentences_.empty() ? 0 : sentence % sentences_.size();
}

std::string_view CorpusBackground::next() {
  for (size_t tries = 0; sent_ >= sentences_.size(); ++tries) {
    MNEMO_CHECK(tries <= docs_.size(), "background documents hold no sentences");
    doc_ = (doc_ + 1) % docs_.size();
    sentences_ = split_sentences(docs_[doc_].text);
    sent_ = 0;
  }
  return sentences_[sent_++];
}

DistractorBackground::DistractorBackground(std::unique_ptr<Background> inner, double rate, uint64_t seed)
    : inner_(std::move(inner)), rate_(rate), rng_(seed) {
  check_distractors(rate);
}

void check_distractors(double rate) {
  if (!(rate >= 0 && rate <= 1)) throw Error(cat("--distractors must be a probability in [0, 1], got ", rate));
}

std::string_view DistractorBackground::next() {
  std::string_view s = inner_->next();
  if (!(rng_.uniform() < rate_)) return s;
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  std::vector<std::pair<size_t, size_t>> words;  // [begin, end) of each word of 3+ letters
  for (size_t i = 0; i < s.size();) {
    if (!letter(s[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && letter(s[j])) ++j;
    if (j - i >= 3) words.emplace_back(i, j);
    i = j;
  }
  if (words.empty()) return s;
  auto [b, e] = words[size_t(rng_.below(words.size()))];
  std::string place = kLocations[size_t(rng_.below(kLocations.size()))];
  if (s[b] >= 'A' && s[b] <= 'Z') place[0] = char(place[0] - 'a' + 'A');
  edited_.assign(s.substr(0, b));
  edited_ += place;
  edited_ += s.substr(e);
  return edited_;
}

std::string_view FillerBackground::next() {
  std::string_view s = kPasskeyFiller[i_];
  i_ = (i_ + 1) % kPasskeyFiller.size();
  return s;
}

SampleInfo build_sample(const Tokenizer& tok, const TaskOptions& opt, Rng& rng, Background& background,
                        const std::function<void(std::string_view)>& sink) {
  const int64_t N = opt.length_tokens;
  if (N <= 0) throw Error(cat("length must be a positive number of tokens, got ", N));
  Story st = make_story(opt.task, rng, opt.story);
  const bool keep = N <= opt.verify_limit;
  Assembler out(tok, sink, keep);

  SampleInfo info;
  info.task = task_name(opt.task);
  info.question = st.question;
  info.target = st.answer;
  info.target_index = location_index(st.answer);
  info.facts = st.facts;
  info.supporting = st.supporting;
  info.question_tokens = out.count(cat(" ", st.question));
  const int64_t q_reserve = opt.question_in_length ? info.question_tokens : 0;
  const bool at_start = opt.task == TaskKind::memorize;

  // Token cost of each fact where it will stand (after a space, unless it opens the input).
  const size_t F = st.facts.size();
  std::vector<int64_t> fact_cost(F);
  for (size_t i = 0; i < F; ++i)
    fact_cost[i] = (at_start && i == 0 && st.prefix.empty()) ? out.count(st.facts[i]) : out.count(cat(" ", st.facts[i]));
  int64_t fixed = q_reserve + (st.prefix.empty() ? 0 : out.count(st.prefix));
  for (int64_t c : fact_cost) fixed += c;
  auto too_short = [&](int64_t need) {
    return Error(cat("length ", N, " is too short for task ", info.task, ": its ", F == 1 ? "fact" : "facts",
                     opt.question_in_length ? " and question" : "", " take ", need, " tokens"));
  };
  const int64_t budget = N - fixed;  // background tokens
  if (budget < 0) throw too_short(fixed);

  // Where each fact goes, in background tokens before it: 0 for memorize, else uniform, kept in story order.
  std::vector<int64_t> at(F, 0);
  if (!at_start) {
    for (auto& a : at) a = int64_t(rng.below(uint64_t(budget) + 1));
    std::sort(at.begin(), at.end());
  }
  auto reserve = [&](size_t from) {
    int64_t r = q_reserve;
    for (size_t i = from; i < F; ++i) r += fact_cost[i];
    return r;
  };
  size_t next_fact = 0;
  auto emit_fact = [&]() {
    const std::string& f = st.facts[next_fact];
    int64_t c = out.cost(f);
    info.fact_positions.push_back(out.tokens());
    info.fact_byte_offsets.push_back(out.bytes() + (out.empty() ? 0 : 1));
    out.emit(f, c);
    ++next_fact;
  };

  if (!st.prefix.empty()) out.emit(st.prefix, out.cost(st.prefix));
  // Whole background sentences while they fit, facts dropped in at their positions.
  int64_t bg = 0;
  std::string_view s;
  for (;;) {
    while (next_fact < F && bg >= at[next_fact]) emit_fact();
    int64_t rem = N - out.tokens() - reserve(next_fact);
    s = background.next();
    int64_t c = out.cost(s);
    if (c > rem) break;
    out.emit(s, c);
    bg += c;
  }
  while (next_fact < F) emit_fact();
  // The last few tokens: words of the following text, each taken if it still fits.
  int64_t rem = N - out.tokens() - q_reserve;
  if (rem < 0) throw too_short(out.tokens() + q_reserve - bg);
  int64_t scanned = 0;
  while (rem > 0) {
    for (std::string_view w : words_of(s)) {
      int64_t c = out.cost(w);
      if (c <= rem) out.emit(w, c), rem -= c;
      if (rem == 0) break;
      if (++scanned > 1000000)
        throw Error(cat("cannot fill the last ", rem, " tokens with whole words of the background"));
    }
    if (rem > 0) s = background.next();
  }
  out.check_join(st.question);  // the reader appends " " + question
  info.length_tokens = out.tokens();
  info.input_bytes = out.bytes();
  MNEMO_CHECK(info.length_tokens + q_reserve == N, "length bookkeeping");
  if (keep) {
    int64_t whole = out.count(out.text());
    if (whole != info.length_tokens)
      throw Error(cat("tokenizer: the whole input encodes to ", whole, " tokens, its pieces to ", info.length_tokens,
                      "; exact lengths need a tokenizer that splits text before spaces"));
  }
  return info;
}

TaskSample build_sample(const Tokenizer& tok, const TaskOptions& opt, Rng& rng, Background& background) {
  TaskSample t;
  std::function<void(std::string_view)> sink = [&](std::string_view p) { t.input += p; };
  t.info = build_sample(tok, opt, rng, background, sink);
  return t;
}

Rng sample_rng(uint64_t seed, int64_t index) {
  Rng base(seed);
  uint64_t k = base.next_u64();
  return Rng(k ^ (uint64_t(index) * 0x9E3779B97F4A7C15ull));
}

std::unique_ptr<Background> make_background(TaskKind kind, const std::vector<CorpusDocument>* docs, Rng& rng,
                                            double distractors) {
  if (kind == TaskKind::passkey) return std::make_unique<FillerBackground>();
  MNEMO_CHECK(docs && !docs->empty(), "corpus background needs documents");
  size_t doc = size_t(rng.below(docs->size()));
  size_t sentence = size_t(rng.below(1u << 30));
  auto bg = std::make_unique<CorpusBackground>(*docs, doc, sentence);
  if (distractors == 0) return bg;
  return std::make_unique<DistractorBackground>(std::move(bg), distractors, rng.next_u64());
}

Json record_fields(const SampleInfo& info, const GenerateOptions& opt, int64_t index) {
  Json r = Json::object();
  r["question"] = info.question;
  r["target"] = info.target;
  r["task"] = info.task;
  r["target_index"] = info.target_index;
  r["length_tokens"] = info.length_tokens;
  r["total_tokens"] = info.length_tokens + info.question_tokens;
  r["question_in_length"] = opt.task.question_in_length;
  if (opt.task.segments > 0) {
    r["segments"] = opt.task.segments;
    r["segment_tokens"] = opt.task.segment_tokens;
  }
  Json facts = Json::array(), pos = Json::array(), off = Json::array(), sup = Json::array();
  for (auto& f : info.facts) facts.push_back(f);
  for (auto p : info.fact_positions) pos.push_back(p);
  for (auto p : info.fact_byte_offsets) off.push_back(p);
  for (auto p : info.supporting) sup.push_back(p);
  r["facts"] = facts;
  r["fact_positions"] = pos;
  r["fact_byte_offsets"] = off;
  r["supporting"] = sup;
  if (opt.task.distractors > 0) r["distractors"] = opt.task.distractors;
  r["split"] = opt.task.task == TaskKind::passkey ? std::string("filler") : opt.split;
  r["tokenizer"] = opt.tokenizer_name;
  r["seed"] = int64_t(opt.seed);
  r["index"] = index;
  return r;
}

std::vector<TaskRecord> generate_samples(const Tokenizer& tok, const GenerateOptions& opt) {
  if (opt.count <= 0) throw Error(cat("count must be positive, got ", opt.count));
  std::vector<CorpusDocument> docs;
  if (opt.task.task != TaskKind::passkey) docs = load_split(opt.corpus_dir, opt.split);
  std::vector<TaskRecord> out;
  for (int64_t i = 0; i < opt.count; ++i) {
    Rng rng = sample_rng(opt.seed, i);
    auto bg = make_background(opt.task.task, &docs, rng, opt.task.distractors);
    TaskSample s = build_sample(tok, opt.task, rng, *bg);
    TaskRecord rec;
    rec.input = std::move(s.input);
    rec.question = s.info.question;
    rec.target = s.info.target;
    rec.extra = record_fields(s.info, opt, i);
    rec.line = i + 1;
    out.push_back(std::move(rec));
  }
  return out;
}

int64_t write_task_file(const std::string& path, const Tokenizer& tok, const GenerateOptions& opt) {
  if (opt.count <= 0) throw Error(cat("count must be positive, got ", opt.count));
  std::vector<CorpusDocument> docs;
  if (opt.task.task != TaskKind::passkey) docs = load_split(opt.corpus_dir, opt.split);
  int64_t total = 0;
  Progress progress(cat("tasks ", task_name(opt.task.task)), opt.count);
  atomic_write(path, [&](std::ostream& os) {
    std::function<void(std::string_view)> sink = [&](std::string_view p) {
      std::string q = json_quote(p);
      os.write(q.data() + 1, std::streamsize(q.size() - 2));
    };
    for (int64_t i = 0; i < opt.count; ++i) {
      Rng rng = sample_rng(opt.seed, i);
      auto bg = make_background(opt.task.task, &docs, rng, opt.task.distractors);
      os << "{\"input\": \"";
      SampleInfo info = build_sample(tok, opt.task, rng, *bg, sink);
      Json r = record_fields(info, opt, i);
      std::string rest = r.dump();
      os << "\", " << std::string_view(rest).substr(1) << "\n";
      total += info.length_tokens;
      progress.update(i + 1);
    }
  });
  progress.finish();
  return total;
}

}  // namespace mnemo::tasks
