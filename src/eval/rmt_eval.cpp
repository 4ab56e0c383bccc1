#include "eval/rmt_eval.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <memory>

#include "base/file.h"

#include "base/error.h"
#include "base/progress.h"
#include "base/timer.h"
#include "tasks/long_context.h"
#include "tasks/task_file.h"

namespace mnemo {

int64_t RmtEvalResult::one_answer_correct(int64_t segments) const {
  int64_t best = 0;
  if (auto it = targets.find(segments); it != targets.end())
    for (auto& [t, n] : it->second) best = std::max(best, n);
  return best;
}

Json RmtEvalResult::to_json(size_t max_samples) const {
  Json j = Json::object();
  j["accuracy"] = accuracy();
  j["count"] = count;
  j["correct"] = correct;
  j["tokens"] = tokens;
  j["segment_steps"] = segments;
  j["seconds"] = seconds;
  j["peak_rss_mb"] = double(peak_rss_bytes) / 1048576.0;
  Json by = Json::array();
  for (auto& [s, cc] : by_segments) {
    Json e = Json::object();
    e["segments"] = s;
    e["count"] = cc.first;
    e["correct"] = cc.second;
    e["accuracy"] = cc.first ? double(cc.second) / double(cc.first) : 0.0;
    e["one_answer_correct"] = one_answer_correct(s);
    if (auto it = needs_memory.find(s); it != needs_memory.end()) {
      e["needs_memory_count"] = it->second.first;
      e["needs_memory_correct"] = it->second.second;
    }
    by.push_back(e);
  }
  j["by_segments"] = by;
  double mn = 0;
  for (double x : final_memory_norms) mn += x;
  j["final_memory_norm"] = final_memory_norms.empty() ? 0.0 : mn / double(final_memory_norms.size());
  if (!probes_held.empty()) {
    Json pr = Json::array();
    for (auto& [lo, cc] : probes_held) {
      Json e = Json::object();
      e["held_from"] = lo;
      e["held_to"] = 2 * lo - 1;
      e["count"] = cc.first;
      e["correct"] = cc.second;
      e["accuracy"] = cc.first ? double(cc.second) / double(cc.first) : 0.0;
      pr.push_back(e);
    }
    j["probes_by_segments_held"] = pr;
  }
  if (!samples.empty() && samples.size() <= max_samples) {
    Json a = Json::array();
    for (auto& s : samples) {
      Json e = Json::object();
      Json f = Json::array(), p = Json::array();
      for (auto& x : s.facts) f.push_back(x);
      for (auto x : s.fact_positions) p.push_back(x);
      e["facts"] = f;
      e["fact_positions"] = p;
      e["question"] = s.question;
      e["target"] = s.target;
      e["prediction"] = s.prediction;
      e["tokens"] = s.tokens;
      if (s.line > 0) e["line"] = s.line;
      if (!s.probes.empty()) {
        Json pr = Json::array();
        for (auto& [segs, answer] : s.probes) {
          Json x = Json::array();
          x.push_back(segs);
          x.push_back(answer);
          pr.push_back(x);
        }
        e["probes"] = pr;
      }
      a.push_back(e);
    }
    j["samples"] = a;
  }
  return j;
}

namespace {

struct Pending {
  std::vector<int32_t> ids;
  int32_t label = -1;   // encoder: index of the target among the model's labels
  std::string target;   // decoder: the answer word
  int64_t sample = -1;     // index into RmtEvalResult::samples
  bool generated = false;  // made here (not read from a task file), so needs_memory is known
  bool needs_memory = false;  // generated: a supporting fact starts before the last segment
  int64_t question_tokens = 0;  // the last q ids are the question (probes need them; 0: not found)
  int64_t fact_segment = -1;    // segment of the last supporting fact's first token (-1: none known)
};

// Probe buckets of segments held: 1, 2-3, 4-7, ... by their lower end.
int64_t held_bucket(int64_t held) {
  int64_t b = 1;
  while (b * 2 <= held) b *= 2;
  return b;
}

// One scored record of a batch of S segments.
void score(RmtEvalResult& r, const Pending& p, int64_t S, bool ok, const std::string& prediction) {
  r.count += 1, r.correct += ok;
  auto& slot = r.by_segments[S];
  slot.first += 1, slot.second += ok;
  if (p.sample >= 0) {
    r.samples[size_t(p.sample)].prediction = prediction;
    r.targets[S][r.samples[size_t(p.sample)].target] += 1;
  }
  if (p.generated) {
    auto& mem = r.needs_memory[S];  // present for generated samples, even when none needs the memory
    if (p.needs_memory) mem.first += 1, mem.second += ok;
  }
  r.tokens += int64_t(p.ids.size());
}

// After a batch: its segments, the memory it ended with, the peak RSS so far.
void finish_batch(RmtEvalResult& r, int64_t S, double memory_norm, std::vector<Pending>& batch) {
  r.segments += S;
  r.final_memory_norms.push_back(memory_norm);
  r.peak_rss_bytes = std::max<int64_t>(r.peak_rss_bytes, peak_rss_bytes());
  batch.clear();
}

// Runs one batch of records with the same segment count, scores it into the result and clears the batch.
using BatchRunner = std::function<void(std::vector<Pending>&, RmtEvalResult&)>;
// A task-file record's target for the runner (may throw, naming `where`).
using TargetFn = std::function<void(Pending&, const std::string& target, const std::string& where)>;

// Attention maps of sample 0: per captured segment, per layer, the (T,T) probabilities averaged over heads.
struct AttentionCapture {
  const Tokenizer* tok = nullptr;
  int64_t first = 4, segment = 0, segments = 0;
  Json captured = Json::array();
  Json current;  // the segment being run
  bool want() const { return segment < first || segment == segments - 1; }
};

Json segment_tokens(const RmtEncoder& model, const Tokenizer& tok, const int32_t* text, int64_t n) {
  const RmtConfig& c = model.config();
  Json t = Json::array();
  t.push_back("[CLS]");
  for (int64_t j = 0; j < c.num_mem_tokens; ++j) t.push_back(cat("[MEM", j, "]"));
  t.push_back("[SEP]");
  for (int64_t i = 0; i < n; ++i) t.push_back(tok.decode({text[i]}));
  t.push_back("[SEP]");
  for (int64_t i = n; i < c.segment_tokens; ++i) t.push_back("[PAD]");
  return t;
}

// Run one batch of samples with the same segment count through the streamer and score it; probes after every
// `probe_every` segments (0: none).
void run_batch(RmtEncoder& model, std::vector<Pending>& batch, RmtEvalResult& r, AttentionCapture* cap = nullptr,
               int64_t probe_every = 0) {
  if (batch.empty()) return;
  const int64_t B = int64_t(batch.size()), L = model.config().segment_tokens;
  const int64_t S = (int64_t(batch[0].ids.size()) + L - 1) / L;
  Tape tape(Tape::Mode::Inference);
  LayerObserver observer = [cap](int layer, const float* probs, const AttentionShape& sh) {
    if (!cap->want()) return;
    const int64_t T = sh.Tq, n = T * T;  // sample 0: probs[h][i][j] for h < H
    Json m = Json::array();
    for (int64_t k = 0; k < n; ++k) {
      double a = 0;
      for (int64_t h = 0; h < sh.H; ++h) a += probs[h * n + k];
      m.push_back(std::round(a / double(sh.H) * 1e4) / 1e4);
    }
    cap->current["layers"].push_back(m);
    (void)layer;
  };
  if (cap) cap->segments = (int64_t(batch[0].ids.size()) + L - 1) / L;
  RmtStreamer st(model, tape, B, cap ? &observer : nullptr);
  std::vector<int32_t> text(size_t(B * L), 0);      // (B,L)
  std::vector<int32_t> lengths(static_cast<size_t>(B), 0);  // (B)
  const int64_t K = int64_t(model.config().labels.size());
  auto predicted = [K](const std::vector<float>& logits, int64_t b) {  // row b's label index, of (B,K) logits
    const float* row = logits.data() + b * K;
    return int32_t(std::max_element(row, row + K) - row);
  };
  // The probe after `read` segments: each row's next segment cut to L - q tokens, then its question.
  auto probe = [&](int64_t read) {
    Timer pt;
    for (int64_t b = 0; b < B; ++b) {
      const auto& ids = batch[size_t(b)].ids;
      const int64_t q = batch[size_t(b)].question_tokens, size = int64_t(ids.size());
      if (q <= 0 || q >= L)
        throw Error(cat("--probe-every: the question of sample ", batch[size_t(b)].sample, " is ", q,
                        " tokens (not found at the input's end, or not shorter than a segment)"));
      const int64_t n = std::clamp<int64_t>(size - q - read * L, 0, L - q);  // the next segment's text, cut
      std::copy(ids.begin() + read * L, ids.begin() + read * L + n, text.begin() + b * L);
      std::copy(ids.end() - q, ids.end(), text.begin() + b * L + n);
      lengths[size_t(b)] = int32_t(n + q);
    }
    const std::vector<float> lg = st.probe(text.data(), lengths.data());
    for (int64_t b = 0; b < B; ++b) {
      const Pending& p = batch[size_t(b)];
      const int32_t pred = predicted(lg, b);
      r.samples[size_t(p.sample)].probes.emplace_back(read, model.config().labels[size_t(pred)]);
      if (p.fact_segment >= 0 && p.fact_segment < read) {  // every supporting fact has been read
        auto& slot = r.probes_held[held_bucket(read - p.fact_segment)];
        slot.first += 1, slot.second += pred == p.label;
      }
    }
    return pt.seconds();
  };
  double probe_seconds = 0;
  Timer timer;
  for (int64_t s = 0; s < S; ++s) {
    for (int64_t b = 0; b < B; ++b) {
      const auto& ids = batch[size_t(b)].ids;
      const int64_t begin = s * L, n = std::min<int64_t>(L, int64_t(ids.size()) - begin);
      std::copy(ids.begin() + begin, ids.begin() + begin + n, text.begin() + b * L);
      lengths[size_t(b)] = int32_t(n);
    }
    if (cap) {
      cap->segment = s;
      cap->current = Json::object();
      cap->current["segment"] = s;
      cap->current["tokens"] = segment_tokens(model, *cap->tok, text.data(), lengths[0]);
      cap->current["layers"] = Json::array();
    }
    st.step(text.data(), lengths.data());
    if (cap && cap->want()) cap->captured.push_back(cap->current);
    if (probe_every > 0 && (s + 1) % probe_every == 0 && s + 1 < S) probe_seconds += probe(s + 1);
  }
  std::vector<float> logits = st.classify();  // (B,K)
  r.seconds += timer.seconds() - probe_seconds;
  for (int64_t b = 0; b < B; ++b) {
    const int32_t pred = predicted(logits, b);
    score(r, batch[size_t(b)], S, pred == batch[size_t(b)].label, model.config().labels[size_t(pred)]);
  }
  finish_batch(r, S, st.memory_norm(), batch);
}

int32_t label_of(const RmtEncoder& model, const std::string& target, const std::string& where) {
  const auto& labels = model.config().labels;
  auto it = std::find(labels.begin(), labels.end(), target);
  if (it == labels.end()) throw Error(cat(where, ": target '", target, "' is not one of the model's labels"));
  return int32_t(it - labels.begin());
}

RmtEvalResult eval_file(const Tokenizer& tok, const std::string& path, int64_t batch, int64_t L,
                        const std::vector<std::string>& labels, const TargetFn& target, const BatchRunner& run) {
  if (batch < 1) throw Error("--batch must be at least 1");
  tasks::TaskFileOptions fo;
  fo.labels = labels;
  tasks::TaskFileReader reader(path, fo);
  RmtEvalResult r;
  std::vector<Pending> pending;
  int64_t pending_S = -1;
  tasks::TaskRecord rec;
  Progress bar("eval rmt", 0);
  int64_t n = 0;
  while (reader.next(rec)) {
    const std::string where = cat(path, ":", rec.line);
    if (rec.input.empty()) throw Error(cat(where, ": empty input"));
    Pending p;
    p.ids = tok.encode(rec.input + " " + rec.question);
    const std::vector<int32_t> q = tok.encode(" " + rec.question);  // for probes: the question ends the ids
    if (q.size() < p.ids.size() && std::equal(q.begin(), q.end(), p.ids.end() - int64_t(q.size())))
      p.question_tokens = int64_t(q.size());
    target(p, rec.target, where);
    RmtEvalResult::Sample smp;  // the facts and where they are, when the file says (tasks generate writes them)
    if (const Json* f = rec.extra.find("facts"); f && f->is_array())
      for (auto& x : f->as_array())
        if (x.is_string()) smp.facts.push_back(x.as_string());
    if (const Json* f = rec.extra.find("fact_positions"); f && f->is_array())
      for (auto& x : f->as_array())
        if (x.is_number()) smp.fact_positions.push_back(int64_t(x.as_number()));
    if (smp.fact_positions.size() != smp.facts.size()) smp.facts.clear(), smp.fact_positions.clear();
    for (int64_t pos : smp.fact_positions) p.fact_segment = std::max(p.fact_segment, pos / L);  // all supporting
    smp.question = rec.question;
    smp.target = rec.target;
    smp.tokens = int64_t(p.ids.size());
    smp.line = rec.line;
    p.sample = int64_t(r.samples.size());
    r.samples.push_back(std::move(smp));
    const int64_t S = (int64_t(p.ids.size()) + L - 1) / L;
    if (S != pending_S || int64_t(pending.size()) >= batch) run(pending, r);
    pending_S = S;
    pending.push_back(std::move(p));
    bar.update(++n, cat("acc ", r.accuracy()));
  }
  run(pending, r);
  bar.update(n, cat("acc ", r.accuracy()));  // the last batch has run
  bar.finish();
  if (r.count == 0) throw Error(cat(path, ": no records"));
  return r;
}

// Samples made by the task builders, `opt.batch` at a time through `run`.
RmtEvalResult eval_generated(const Tokenizer& tok, const RmtGenerateOptions& opt, int64_t L, const TargetFn& target,
                             const BatchRunner& run) {
  if (opt.segments < 1) throw Error("--segments must be at least 1");
  if (opt.count < 1) throw Error("--count must be at least 1");
  if (opt.batch < 1) throw Error("--batch must be at least 1");
  const tasks::TaskKind kind = tasks::parse_task(opt.task);
  std::vector<tasks::CorpusDocument> docs;
  if (kind != tasks::TaskKind::passkey) docs = tasks::load_split(opt.corpus_dir, opt.split);
  RmtEvalResult r;
  std::vector<Pending> pending;
  Progress bar(cat("eval rmt S=", opt.segments), opt.count);
  for (int64_t i = 0; i < opt.count; ++i) {
    Rng rng = tasks::sample_rng(opt.seed, i);  // sample i is the i-th record of `mnemo tasks generate --seed`
    auto bg = tasks::make_background(kind, &docs, rng, opt.distractors);
    tasks::TaskOptions to;
    to.task = kind;
    to.length_tokens = opt.segments * L;
    to.question_in_length = true;
    to.segments = opt.segments, to.segment_tokens = L;
    to.story = opt.story;
    Pending p;
    p.ids.reserve(size_t(opt.segments * L));
    // Pieces are whole words joined by spaces, and the tokenizer splits before spaces: tokens of the pieces are
    // the tokens of the input, so the text itself is never held.
    std::function<void(std::string_view)> sink = [&](std::string_view piece) {
      std::vector<int32_t> t = tok.encode(piece);
      p.ids.insert(p.ids.end(), t.begin(), t.end());
    };
    tasks::SampleInfo info = tasks::build_sample(tok, to, rng, *bg, sink);
    std::vector<int32_t> q = tok.encode(" " + info.question);
    p.ids.insert(p.ids.end(), q.begin(), q.end());
    MNEMO_CHECK(int64_t(p.ids.size()) == opt.segments * L, "generated ", p.ids.size(), " tokens, expected ",
                opt.segments * L);
    target(p, info.target, cat("generated ", opt.task, " sample ", i));
    RmtEvalResult::Sample smp;
    smp.facts = info.facts;
    smp.fact_positions = info.fact_positions;
    smp.question = info.question;
    smp.target = info.target;
    smp.tokens = int64_t(p.ids.size());
    p.sample = int64_t(r.samples.size());
    p.generated = true;
    for (int f : info.supporting) {
      p.needs_memory |= info.fact_positions[size_t(f)] < (opt.segments - 1) * L;
      p.fact_segment = std::max(p.fact_segment, info.fact_positions[size_t(f)] / L);
    }
    p.question_tokens = int64_t(q.size());
    r.samples.push_back(std::move(smp));
    pending.push_back(std::move(p));
    if (int64_t(pending.size()) == opt.batch) run(pending, r);
    bar.update(i + 1, cat("acc ", r.accuracy()));
  }
  run(pending, r);
  bar.update(opt.count, cat("acc ", r.accuracy()));  // the last batch has run
  bar.finish();
  return r;
}

// The first word of a generated answer: letters and digits after any leading space.
std::string first_word(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  size_t j = i;
  while (j < s.size() && std::isalnum(static_cast<unsigned char>(s[j]))) ++j;
  return s.substr(i, j - i);
}

// The decoder: memory segments through the streamer, then greedy decoding after the question.
void run_decoder_batch(RmtDecoder& model, const Tokenizer& tok, std::vector<Pending>& batch, RmtEvalResult& r) {
  if (batch.empty()) return;
  const int64_t B = int64_t(batch.size()), L = model.config().segment_tokens;
  const int64_t S = (int64_t(batch[0].ids.size()) + L - 1) / L;
  Tape tape(Tape::Mode::Inference);
  RmtDecoderStreamer st(model, tape, B);
  std::vector<int32_t> text(size_t(B * L), 0);             // (B,L)
  std::vector<int32_t> lengths(static_cast<size_t>(B), 0);  // (B)
  auto fill = [&](int64_t s) {
    for (int64_t b = 0; b < B; ++b) {
      const auto& ids = batch[size_t(b)].ids;
      const int64_t begin = s * L, n = std::min<int64_t>(L, int64_t(ids.size()) - begin);
      std::copy(ids.begin() + begin, ids.begin() + begin + n, text.begin() + b * L);
      lengths[size_t(b)] = int32_t(n);
    }
  };
  Timer timer;
  for (int64_t s = 0; s + 1 < S; ++s) {
    fill(s);
    st.step(text.data(), lengths.data());
  }
  fill(S - 1);
  std::vector<std::vector<int32_t>> answers = st.answer(text.data(), lengths.data());
  r.seconds += timer.seconds();
  for (int64_t b = 0; b < B; ++b) {
    const std::string pred = first_word(tok.decode(answers[size_t(b)]));
    score(r, batch[size_t(b)], S, pred == batch[size_t(b)].target, pred);
  }
  finish_batch(r, S, st.memory_norm(), batch);
}

}  // namespace

RmtEvalResult eval_rmt_file(RmtEncoder& model, const Tokenizer& tok, const std::string& path, int64_t batch,
                            int64_t probe_every) {
  if (probe_every < 0) throw Error("--probe-every must be at least 1");
  return eval_file(
      tok, path, batch, model.config().segment_tokens, model.config().labels,
      [&](Pending& p, const std::string& t, const std::string& where) { p.label = label_of(model, t, where); },
      [&](std::vector<Pending>& b, RmtEvalResult& r) { run_batch(model, b, r, nullptr, probe_every); });
}

RmtEvalResult eval_rmt_generated(RmtEncoder& model, const Tokenizer& tok, const RmtGenerateOptions& opt) {
  if (opt.probe_every < 0) throw Error("--probe-every must be at least 1");
  std::unique_ptr<AttentionCapture> cap;
  if (!opt.attention_out.empty()) {
    if (opt.count != 1 || opt.batch != 1) throw Error("--attention-out needs --count 1 --batch 1");
    cap = std::make_unique<AttentionCapture>();
    cap->tok = &tok;
    cap->first = opt.attention_first;
  }
  RmtEvalResult r = eval_generated(
      tok, opt, model.config().segment_tokens,
      [&](Pending& p, const std::string& t, const std::string& where) { p.label = label_of(model, t, where); },
      [&](std::vector<Pending>& b, RmtEvalResult& res) { run_batch(model, b, res, cap.get(), opt.probe_every); });
  if (cap) {
    Json out = Json::object();
    out["num_mem_tokens"] = model.config().num_mem_tokens;
    out["segments"] = opt.segments;
    Json facts = Json::array(), pos = Json::array();
    for (auto& f : r.samples[0].facts) facts.push_back(f);
    for (auto p : r.samples[0].fact_positions) pos.push_back(p);
    out["facts"] = facts;
    out["fact_positions"] = pos;
    out["question"] = r.samples[0].question;
    out["target"] = r.samples[0].target;
    out["prediction"] = r.samples[0].prediction;
    out["captured"] = cap->captured;
    atomic_write(opt.attention_out, out.dump());
  }
  return r;
}

RmtEvalResult eval_rmt_decoder_file(RmtDecoder& model, const Tokenizer& tok, const std::string& path, int64_t batch) {
  return eval_file(
      tok, path, batch, model.config().segment_tokens, {},
      [](Pending& p, const std::string& t, const std::string& where) {
        if (t.empty()) throw Error(cat(where, ": empty target"));
        p.target = t;
      },
      [&](std::vector<Pending>& b, RmtEvalResult& r) { run_decoder_batch(model, tok, b, r); });
}

RmtEvalResult eval_rmt_decoder_generated(RmtDecoder& model, const Tokenizer& tok, const RmtGenerateOptions& opt) {
  if (!opt.attention_out.empty()) throw Error("--attention-out is for the encoder variant");
  if (opt.probe_every != 0) throw Error("--probe-every is for the encoder variant");
  return eval_generated(
      tok, opt, model.config().segment_tokens,
      [](Pending& p, const std::string& t, const std::string&) { p.target = t; },
      [&](std::vector<Pending>& b, RmtEvalResult& r) { run_decoder_batch(model, tok, b, r); });
}

}  // namespace mnemo
