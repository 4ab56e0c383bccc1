#include "train/rmt_trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>

#include "base/error.h"
#include "base/file.h"
#include "base/progress.h"
#include "base/timer.h"
#include "io/checkpoint.h"
#include "io/gguf_tokenizer.h"
#include "io/llama_loader.h"
#include "memory/rmt_dir.h"
#include "tasks/long_context.h"
#include "tasks/task_file.h"
#include "text/tokenizer.h"
#include "train/optimizer.h"

namespace mnemo {

// ---- config ----

Json RmtTrainConfig::to_json() const {
  Json j = Json::object();
  j["variant"] = variant;
  j["init"] = init;
  j["tokenizer"] = tokenizer;
  j["corpus_dir"] = corpus_dir;
  j["task"] = task;
  j["facts_min"] = facts_min;
  j["facts_max"] = facts_max;
  j["num_mem_tokens"] = num_mem_tokens;
  j["sink_token"] = sink_token;
  j["segment_tokens"] = segment_tokens;
  j["batch"] = batch;
  j["bptt_depth"] = bptt_depth;
  j["distractors"] = distractors;
  j["warm_memory"] = warm_memory;
  j["warm_segments"] = warm_segments;
  j["warm_reset"] = warm_reset;
  j["lr"] = lr;
  j["clip"] = clip;
  j["warmup"] = warmup;
  j["freeze_embeddings"] = freeze_embeddings;
  j["eval_every"] = eval_every;
  j["val_count"] = val_count;
  j["val_batch"] = val_batch;
  j["seed"] = int64_t(seed);
  j["curriculum"] = curriculum.to_json();
  return j;
}

RmtTrainConfig RmtTrainConfig::from_json(const Json& j, const std::string& source) {
  RmtTrainConfig c;
  c.variant = j.string_or("variant", c.variant);  // checkpoints from before the decoder variant are encoder runs
  c.init = j.string_or("init", c.init);
  c.tokenizer = j.string_or("tokenizer", c.tokenizer);
  c.corpus_dir = j.string_or("corpus_dir", c.corpus_dir);
  c.task = j.string_or("task", c.task);
  c.facts_min = j.int_or("facts_min", c.facts_min);
  c.facts_max = j.int_or("facts_max", c.facts_max);
  c.num_mem_tokens = j.int_or("num_mem_tokens", c.num_mem_tokens);
  c.sink_token = j.bool_or("sink_token", c.sink_token);
  c.segment_tokens = j.int_or("segment_tokens", c.segment_tokens);
  c.batch = j.int_or("batch", c.batch);
  c.bptt_depth = j.int_or("bptt_depth", c.bptt_depth);
  c.distractors = j.number_or("distractors", c.distractors);
  c.warm_memory = j.number_or("warm_memory", c.warm_memory);
  c.warm_segments = j.int_or("warm_segments", c.warm_segments);
  c.warm_reset = j.number_or("warm_reset", c.warm_reset);
  c.lr = j.number_or("lr", c.lr);
  c.clip = j.number_or("clip", c.clip);
  c.warmup = j.int_or("warmup", c.warmup);
  c.freeze_embeddings = j.bool_or("freeze_embeddings", c.freeze_embeddings);
  c.eval_every = j.int_or("eval_every", c.eval_every);
  c.val_count = j.int_or("val_count", c.val_count);
  c.val_batch = j.int_or("val_batch", c.val_batch);
  c.seed = uint64_t(j.int_or("seed", int64_t(c.seed)));
  if (const Json* cu = j.find("curriculum")) c.curriculum = CurriculumConfig::from_json(*cu, source);
  return c;
}

namespace {

tasks::StoryOptions story_options(const RmtTrainConfig& c) {
  tasks::StoryOptions o;
  if (c.facts_max != 0) tasks::set_fact_range(o, tasks::parse_task(c.task), c.facts_min, c.facts_max);
  return o;
}

void validate(const RmtTrainConfig& c) {
  if (c.variant != "encoder" && c.variant != "decoder")
    throw Error(cat("--variant: '", c.variant, "' is neither encoder nor decoder"));
  if (c.init.empty())
    throw Error(c.variant == "encoder" ? "--init: the pretrained BERT directory to start from is required"
                                       : "--init: the pretrained Llama (GGUF file or HF directory) is required");
  if (c.facts_min != 0 && c.facts_max == 0) throw Error("--facts-min needs --facts-max");
  story_options(c);  // checks the range
  if (c.sink_token && c.variant != "decoder") throw Error("--sink-token is for the decoder variant");
  if (c.batch < 1) throw Error("--batch must be at least 1");
  if (c.bptt_depth < 0) throw Error("--bptt-depth must be >= 0 (0 = all segments)");
  tasks::check_distractors(c.distractors);
  if (!(c.warm_memory >= 0 && c.warm_memory <= 1))
    throw Error(cat("--warm-memory must be a probability in [0, 1], got ", c.warm_memory));
  if (c.warm_memory > 0 && c.variant != "encoder") throw Error("--warm-memory is for the encoder variant");
  if (c.warm_segments < 1) throw Error(cat("--warm-segments must be at least 1, got ", c.warm_segments));
  if (!(c.warm_reset >= 0 && c.warm_reset <= 1))
    throw Error(cat("--warm-reset must be a probability in [0, 1], got ", c.warm_reset));
  if (!(c.lr > 0)) throw Error("--lr must be positive");
  if (c.eval_every < 1) throw Error("--eval-every must be at least 1");
  // A stage ends only at an evaluation: --max-steps 10 with --eval-every 50 would run 50 steps.
  for (auto [flag, n] : {std::pair{"--min-steps", c.curriculum.min_steps}, {"--max-steps", c.curriculum.max_steps}})
    if (n % c.eval_every != 0)
      throw Error(cat(flag, " ", n, " is checked at evaluations: make it a multiple of --eval-every ", c.eval_every));
  if (c.val_count < 1 || c.val_batch < 1) throw Error("--val-count and --val-batch must be at least 1");
  if (c.warmup < 0) throw Error("--warmup must be >= 0");
  c.curriculum.validate();
  tasks::parse_task(c.task);
}

// Samples of a task as RMT batches: input + " " + question, exactly S * L tokens, cut into S segments.
class Sampler {
 public:
  Sampler(const Tokenizer& tok, std::vector<tasks::CorpusDocument> docs, tasks::TaskKind kind, int64_t L,
          tasks::StoryOptions story, double distractors)
      : tok_(tok), docs_(std::move(docs)), kind_(kind), L_(L), story_(story), distractors_(distractors) {}

  RmtBatch batch(Rng& rng, int64_t B, int64_t S) {
    return fill(B, S, [&](int32_t& label) {
      tasks::TaskOptions opt;
      opt.task = kind_;
      opt.length_tokens = S * L_;
      opt.question_in_length = true;
      opt.segments = S, opt.segment_tokens = L_;
      opt.story = story_;
      auto bg = tasks::make_background(kind_, &docs_, rng, distractors_);
      tasks::TaskSample smp = tasks::build_sample(tok_, opt, rng, *bg);
      std::vector<int32_t> ids = tok_.encode(smp.input + " " + smp.info.question);
      MNEMO_CHECK(int64_t(ids.size()) == S * L_, "task builder made ", ids.size(), " tokens, asked for ", S * L_);
      if (smp.info.target_index < 0) throw Error(cat("RMT training: task '", smp.info.task, "' has no location answer"));
      label = smp.info.target_index;
      return ids;
    });
  }

  // S segments of background text only (no fact, no label) per sample.
  RmtBatch background(Rng& rng, int64_t B, int64_t S) {
    return fill(B, S, [&](int32_t&) {
      auto bg = tasks::make_background(kind_, &docs_, rng, distractors_);
      std::vector<int32_t> ids;
      while (int64_t(ids.size()) < S * L_) {
        std::vector<int32_t> t = tok_.encode(cat(" ", bg->next()));
        ids.insert(ids.end(), t.begin(), t.end());
      }
      return ids;
    });
  }

 private:
  // B samples of S full segments: row(label) makes the next sample's tokens (at least S * L; the first S * L are
  // used) and may set its label (else -1).
  template <class Row>
  RmtBatch fill(int64_t B, int64_t S, Row row) {
    RmtBatch b;
    b.B = B, b.S = S;
    b.text.assign(size_t(S * B * L_), 0);
    b.lengths.assign(size_t(S * B), int32_t(L_));
    b.labels.assign(size_t(B), -1);
    for (int64_t i = 0; i < B; ++i) {
      const std::vector<int32_t> ids = row(b.labels[size_t(i)]);
      for (int64_t s = 0; s < S; ++s)
        std::copy(ids.begin() + s * L_, ids.begin() + (s + 1) * L_, b.text.begin() + (s * B + i) * L_);
    }
    return b;
  }

  const Tokenizer& tok_;
  std::vector<tasks::CorpusDocument> docs_;
  tasks::TaskKind kind_;
  int64_t L_;
  tasks::StoryOptions story_;
  double distractors_;
};

// What the training loop needs from an RMT variant: its parameters, one forward (and backward, on a recording
// tape) over a batch of location-labelled samples, and its model directory.
struct Outcome {
  double loss = 0;
  int64_t correct = 0, counted = 0;
  double memory_norm = 0;
  std::vector<float> memory;  // encoder: the final memory (B*m, C)
};

class Trainee {
 public:
  virtual ~Trainee() = default;
  virtual ParameterSet& backbone() = 0;
  virtual ParameterSet& memory() = 0;
  virtual Parameter& word_embeddings() = 0;  // frozen with freeze_embeddings
  virtual Outcome run(Tape& tape, Tape& scratch, const RmtBatch& b, int64_t bptt_depth) = 0;
  // The model directory plus the tokenizer it was trained with (`tokenizer`: a directory or file).
  virtual void save(const std::string& dir, const std::string& tokenizer) = 0;
};

class EncoderTrainee : public Trainee {
 public:
  EncoderTrainee(const RmtTrainConfig& c, const Tokenizer& tok, const std::string& tok_path) {
    RmtConfig rc;
    rc.num_mem_tokens = c.num_mem_tokens;
    rc.segment_tokens = c.segment_tokens;
    rc.labels = tasks::location_labels();
    rc.cls_id = tok.special_id("[CLS]");
    rc.sep_id = tok.special_id("[SEP]");
    rc.pad_id = tok.special_id("[PAD]");
    if (rc.cls_id < 0 || rc.sep_id < 0 || rc.pad_id < 0)
      throw Error(cat(tok_path, ": the tokenizer has no [CLS], [SEP] or [PAD]"));
    m_ = rmt_from_pretrained(c.init, rc, c.seed);  // a resumed run overwrites the weights from the checkpoint
    if (tok.vocab_size() > m_->backbone().config().vocab_size)
      throw Error(cat("tokenizer has ", tok.vocab_size(), " tokens, the model ", m_->backbone().config().vocab_size));
  }
  ParameterSet& backbone() override { return m_->backbone().params(); }
  ParameterSet& memory() override { return m_->memory_params(); }
  Parameter& word_embeddings() override {
    Parameter* w = m_->backbone().params().find(m_->backbone().prefix() + "embeddings.word_embeddings.weight");
    MNEMO_CHECK(w != nullptr, "backbone has no word embeddings");
    return *w;
  }
  Outcome run(Tape& tape, Tape& scratch, const RmtBatch& b, int64_t bptt_depth) override {
    RmtResult r = rmt_forward(*m_, tape, scratch, b, bptt_depth);
    return {r.loss, r.correct, r.counted, r.memory_norm, std::move(r.memory)};
  }
  void save(const std::string& dir, const std::string& tokenizer) override {
    save_rmt(dir, *m_);
    copy_tokenizer_files(tokenizer, dir);
  }

 private:
  std::unique_ptr<RmtEncoder> m_;
};

class DecoderTrainee : public Trainee {
 public:
  DecoderTrainee(const RmtTrainConfig& c, const Tokenizer& tok) {
    RmtDecoderConfig rc;
    rc.num_mem_tokens = c.num_mem_tokens;
    rc.segment_tokens = c.segment_tokens;
    m_ = rmt_decoder_from_pretrained(c.init, rc, c.sink_token, c.seed);  // a resumed run overwrites the weights
    if (tok.vocab_size() > m_->backbone().config().vocab_size)
      throw Error(cat("tokenizer has ", tok.vocab_size(), " tokens, the model ", m_->backbone().config().vocab_size));
    // The answer of label k: the tokens of " " + its name, then EOS.
    for (const std::string& name : tasks::location_labels()) {
      std::vector<int32_t> ids = tok.encode(" " + name);
      ids.push_back(m_->config().eos_id);
      A_ = std::max<int64_t>(A_, int64_t(ids.size()));
      answers_.push_back(std::move(ids));
    }
  }
  ParameterSet& backbone() override { return m_->backbone().params(); }
  ParameterSet& memory() override { return m_->memory_params(); }
  Parameter& word_embeddings() override { return m_->embeddings(); }
  Outcome run(Tape& tape, Tape& scratch, const RmtBatch& b, int64_t bptt_depth) override {
    RmtDecoderBatch d;
    d.B = b.B, d.S = b.S, d.A = A_;
    d.text = b.text;
    d.lengths = b.lengths;
    d.answers.assign(size_t(b.B * A_), -1);
    for (int64_t i = 0; i < b.B; ++i) {
      const auto& a = answers_.at(size_t(b.labels[size_t(i)]));
      std::copy(a.begin(), a.end(), d.answers.begin() + i * A_);
    }
    RmtDecoderResult r = rmt_decoder_forward(*m_, tape, scratch, d, bptt_depth);
    return {r.loss, r.correct, r.counted, r.memory_norm, {}};
  }
  void save(const std::string& dir, const std::string& tokenizer) override {
    // A GGUF tokenizer is referred to (relative to DIR), tokenizer files are copied.
    Json extra = Json::object();
    if (is_gguf_path(tokenizer)) {
      make_directories(dir);
      extra["tokenizer"] = std::filesystem::relative(std::filesystem::absolute(tokenizer),
                                                     std::filesystem::absolute(dir)).string();
    }
    save_rmt_decoder(dir, *m_, extra);
    if (!is_gguf_path(tokenizer)) copy_tokenizer_files(tokenizer, dir);
  }

 private:
  std::unique_ptr<RmtDecoder> m_;
  std::vector<std::vector<int32_t>> answers_;  // per label
  int64_t A_ = 0;
};

struct Run {
  RmtTrainConfig cfg;
  std::string out;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<Trainee> model;
  std::unique_ptr<AdamW> opt_b, opt_m;
  std::unique_ptr<Sampler> train, val;
  Rng rng;
  int64_t step = 0;
  std::unique_ptr<Curriculum> cur;
  // Training statistics since the last evaluation (saved, so a resumed run logs the same lines).
  double loss_sum = 0;
  int64_t correct = 0, counted = 0, batches = 0;
  double seconds = 0;  // training time before this process (resumed runs)
  // warm_memory > 0: the chain of memories that have read only background text, (batch*m, C), and how many
  // segments each row has read.
  Tensor warm;
  std::vector<int64_t> warm_ages;
};

std::string ckpt_dir(const std::string& out) { return join_path(out, "checkpoint"); }

void save(Run& r) {
  Checkpoint ck;
  for (auto& p : r.model->backbone().all()) ck.weights.emplace_back(p.name, p.value);
  ck.weights.emplace_back(r.model->memory()[0].name, r.model->memory()[0].value);
  ck.optimizer = {{"backbone.m", r.opt_b->m()}, {"backbone.v", r.opt_b->v()},
                  {"memory.m", r.opt_m->m()},   {"memory.v", r.opt_m->v()}};
  if (r.warm.numel()) ck.optimizer.emplace_back("warm.memory", r.warm);  // the chain goes on from it
  ck.rng = r.rng.state();
  ck.step = r.step;
  Json st = Json::object();
  st["config"] = r.cfg.to_json();
  st["curriculum"] = r.cur->to_json();
  st["loss_sum"] = r.loss_sum;
  st["correct"] = r.correct;
  st["counted"] = r.counted;
  st["batches"] = r.batches;
  st["seconds"] = r.seconds;
  Json ages = Json::array();
  for (int64_t a : r.warm_ages) ages.push_back(a);
  st["warm_ages"] = ages;
  st["optimizer_steps"] = r.opt_b->steps();
  ck.state = st;
  save_checkpoint(ckpt_dir(r.out), ck);
}

std::string tokenizer_path(const RmtTrainConfig& c) { return c.tokenizer.empty() ? c.init : c.tokenizer; }

void build(Run& r, bool fresh) {
  const RmtTrainConfig& c = r.cfg;
  r.tok = load_any_tokenizer(tokenizer_path(c));
  if (c.variant == "decoder") r.model = std::make_unique<DecoderTrainee>(c, *r.tok);
  else r.model = std::make_unique<EncoderTrainee>(c, *r.tok, tokenizer_path(c));
  AdamWConfig ac;
  ac.lr = float(c.lr);
  ac.weight_decay = 0.0f;  // frozen embeddings must not decay; the runs are short
  r.opt_b = std::make_unique<AdamW>(r.model->backbone(), ac);
  r.opt_m = std::make_unique<AdamW>(r.model->memory(), ac);
  const tasks::TaskKind kind = tasks::parse_task(c.task);
  const tasks::StoryOptions story = story_options(c);
  r.train = std::make_unique<Sampler>(*r.tok, tasks::load_split(c.corpus_dir, "train"), kind, c.segment_tokens, story,
                                      c.distractors);
  r.val = std::make_unique<Sampler>(*r.tok, tasks::load_split(c.corpus_dir, "validation"), kind, c.segment_tokens,
                                    story, c.distractors);
  if (fresh) {
    r.rng.seed_with(c.seed);
    r.cur = std::make_unique<Curriculum>(c.curriculum);
  }
}

void load(Run& r) {
  Checkpoint ck = load_checkpoint(ckpt_dir(r.out));
  const std::string src = ckpt_dir(r.out);
  r.cfg = RmtTrainConfig::from_json(ck.state["config"], src);
  validate(r.cfg);
  build(r, false);
  for (auto& p : r.model->backbone().all()) p.value.copy_from(ck.weight(p.name, p.value.shape()));
  Parameter& mem = r.model->memory()[0];
  mem.value.copy_from(ck.weight(mem.name, mem.value.shape()));
  r.opt_b->m().copy_from(ck.optimizer_tensor("backbone.m", r.opt_b->m().shape()));
  r.opt_b->v().copy_from(ck.optimizer_tensor("backbone.v", r.opt_b->v().shape()));
  r.opt_m->m().copy_from(ck.optimizer_tensor("memory.m", r.opt_m->m().shape()));
  r.opt_m->v().copy_from(ck.optimizer_tensor("memory.v", r.opt_m->v().shape()));
  for (auto& [name, t] : ck.optimizer)
    if (name == "warm.memory") {
      r.warm = Tensor::zeros(t.shape());
      r.warm.copy_from(t);
    }
  const int64_t os = ck.state.int_or("optimizer_steps", ck.step);
  r.opt_b->set_steps(os);
  r.opt_m->set_steps(os);
  r.rng.set_state(ck.rng);
  r.step = ck.step;
  r.cur = std::make_unique<Curriculum>(Curriculum::from_json(ck.state["curriculum"], src));
  r.loss_sum = ck.state.number_or("loss_sum", 0);
  r.correct = ck.state.int_or("correct", 0);
  r.counted = ck.state.int_or("counted", 0);
  r.batches = ck.state.int_or("batches", 0);
  r.seconds = ck.state.number_or("seconds", 0);
  if (const Json* ages = ck.state.find("warm_ages"))
    for (const Json& a : ages->as_array("warm_ages")) r.warm_ages.push_back(int64_t(a.as_number("warm_ages")));
  else if (r.warm.numel())  // saved before the rows had ages of their own
    r.warm_ages.assign(size_t(r.cfg.batch), ck.state.int_or("warm_age", 0));
}

// Validation accuracy at S segments on a fixed set (same seed for every evaluation at this S).
double validate_at(Run& r, int64_t S, double* memory_norm) {
  Rng vr(r.cfg.seed * 1000003 + uint64_t(S));
  Tape t(Tape::Mode::Inference), s(Tape::Mode::Inference);
  int64_t correct = 0, counted = 0;
  double norm = 0;
  int64_t nb = 0;
  for (int64_t done = 0; done < r.cfg.val_count; done += r.cfg.val_batch) {
    const int64_t B = std::min(r.cfg.val_batch, r.cfg.val_count - done);
    RmtBatch b = r.val->batch(vr, B, S);
    Outcome res = r.model->run(t, s, b, 0);
    correct += res.correct, counted += res.counted;
    norm += res.memory_norm, ++nb;
  }
  if (memory_norm) *memory_norm = nb ? norm / double(nb) : 0;
  return counted ? double(correct) / double(counted) : 0;
}

// A model directory that tokenizes on its own: the RMT plus the tokenizer files it was trained with.
void save_model(Run& r, const std::string& dir) { r.model->save(dir, tokenizer_path(r.cfg)); }

std::string stage_name(int64_t S) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "stage-%02lld", (long long)S);
  return buf;
}

}  // namespace

RmtTrainSummary train_rmt(const RmtTrainConfig& cfg, const std::string& out, bool resume,
                          const RmtTrainLimits& limits) {
  Run r;
  r.out = out;
  if (resume) {
    if (!is_checkpoint(ckpt_dir(out))) throw Error(cat(ckpt_dir(out), ": no checkpoint to resume"));
    load(r);
    if (limits.curriculum_overrides.size() > 0) {
      Json cj = r.cfg.curriculum.to_json();
      for (auto& [k, v] : limits.curriculum_overrides.as_object()) {
        if (!cj.contains(k)) throw Error(cat("curriculum override '", k, "' is not a curriculum setting"));
        cj[k] = v;
      }
      r.cfg.curriculum = CurriculumConfig::from_json(cj, "curriculum overrides");
      r.cur->set_config(r.cfg.curriculum);
    }
  } else {
    if (is_checkpoint(ckpt_dir(out)))
      throw Error(cat(ckpt_dir(out), ": a run is already here (resume it with --resume, or choose another --out)"));
    r.cfg = cfg;
    validate(r.cfg);
    make_directories(out);
    build(r, true);
  }
  const RmtTrainConfig& c = r.cfg;
  Parameter* word = &r.model->word_embeddings();
  Tape tape, scratch(Tape::Mode::Inference), warm_tape(Tape::Mode::Inference);
  Timer timer;
  RmtTrainSummary sum;
  Progress bar("rmt", limits.max_total_steps > 0 ? limits.max_total_steps : 0);
  while (r.cur->phase() != Curriculum::Phase::Done &&
         (limits.max_total_steps <= 0 || r.step < limits.max_total_steps)) {
    const int64_t S = r.cur->batch_segments(r.rng);
    RmtBatch batch = r.train->batch(r.rng, c.batch, S);
    if (c.warm_memory > 0) {
      // The chain reads warm_segments more segments of background (forward only), and with probability
      // warm_memory the batch starts from it: sample i from the memory of chain row order[i].
      RmtBatch noise = r.train->background(r.rng, c.batch, c.warm_segments);
      const Tensor& first = r.model->memory()[0].value;  // (m, C)
      const int64_t rows = first.dim(0), C = first.dim(1);
      const bool fresh = !r.warm.numel();  // the first step: every row starts from the initial memory
      if (fresh) r.warm = Tensor::zeros({c.batch * rows, C}), r.warm_ages.assign(size_t(c.batch), 0);
      for (int64_t i = 0; i < c.batch; ++i) {
        const bool start_over = c.warm_reset > 0 && r.rng.uniform() < c.warm_reset;  // drawn on every step
        if (fresh || start_over) {
          std::copy_n(first.data(), rows * C, r.warm.data() + i * rows * C);
          r.warm_ages[size_t(i)] = 0;
        }
      }
      noise.start_memory = r.warm.to_vector();
      Outcome w = r.model->run(warm_tape, scratch, noise, 0);
      std::copy(w.memory.begin(), w.memory.end(), r.warm.data());
      for (int64_t& a : r.warm_ages) a += c.warm_segments;
      if (r.rng.uniform() < c.warm_memory) {
        std::vector<int64_t> order(size_t(c.batch));
        for (int64_t i = 0; i < c.batch; ++i) order[size_t(i)] = i;
        for (int64_t i = c.batch - 1; i > 0; --i) std::swap(order[size_t(i)], order[r.rng.below(uint64_t(i + 1))]);
        batch.start_memory.resize(size_t(c.batch * rows * C));
        for (int64_t i = 0; i < c.batch; ++i)
          std::copy_n(r.warm.data() + order[size_t(i)] * rows * C, rows * C, batch.start_memory.begin() + i * rows * C);
      }
    }
    r.model->backbone().zero_grad();
    r.model->memory().zero_grad();
    Outcome res = r.model->run(tape, scratch, batch, c.bptt_depth);
    if (c.freeze_embeddings) word->grad.fill(0.0f);
    const double norm = clip_grad_norm({&r.model->backbone(), &r.model->memory()}, c.clip);
    const double lr = c.lr * (c.warmup > 0 ? std::min(1.0, double(r.step + 1) / double(c.warmup)) : 1.0);
    if (std::isfinite(norm)) {  // a non-finite gradient skips the update (and is visible in the log)
      r.opt_b->step(float(lr));
      r.opt_m->step(float(lr));
    }
    ++r.step;
    sum.losses.push_back(res.loss);
    r.loss_sum += res.loss, r.correct += res.correct, r.counted += res.counted, ++r.batches;
    const Curriculum::Phase phase_before = r.cur->phase();
    const int64_t seg_before = r.cur->segments();
    Curriculum::Event ev = r.cur->on_step();
    bar.update(r.step, cat("S=", S, " loss ", res.loss, " |g| ", norm));
    if (r.step % c.eval_every == 0 || ev == Curriculum::Event::Done) {
      double mnorm = 0;
      const double acc = validate_at(r, r.cur->segments(), &mnorm);
      if (ev != Curriculum::Event::Done) ev = r.cur->on_eval(acc);
      Json j = Json::object();
      j["step"] = r.step;
      j["phase"] = phase_name(phase_before);
      j["segments"] = seg_before;
      j["train_loss"] = r.batches ? r.loss_sum / double(r.batches) : 0.0;
      j["train_accuracy"] = r.counted ? double(r.correct) / double(r.counted) : 0.0;
      j["val_accuracy"] = acc;
      j["memory_norm"] = mnorm;
      if (c.warm_memory > 0) {  // the chain's mean age (segments read), and its youngest and oldest rows
        j["warm_age"] = double(std::accumulate(r.warm_ages.begin(), r.warm_ages.end(), int64_t(0))) /
                        double(r.warm_ages.size());
        if (c.warm_reset > 0) {
          j["warm_age_min"] = *std::min_element(r.warm_ages.begin(), r.warm_ages.end());
          j["warm_age_max"] = *std::max_element(r.warm_ages.begin(), r.warm_ages.end());
        }
      }
      j["grad_norm"] = norm;
      j["lr"] = lr;
      j["seconds"] = r.seconds + timer.seconds();
      append_line(join_path(out, "log.jsonl"), j.dump());
      bar.note(j.dump());
      r.loss_sum = 0, r.correct = 0, r.counted = 0, r.batches = 0;
      if (ev == Curriculum::Event::Advanced || ev == Curriculum::Event::EnteredMixed)
        save_model(r, join_path(out, stage_name(seg_before)));
      if (ev == Curriculum::Event::Done) {
        if (phase_before == Curriculum::Phase::Stages) save_model(r, join_path(out, stage_name(seg_before)));
        save_model(r, join_path(out, "final"));
      }
      r.seconds += timer.seconds();
      timer.reset();
      save(r);
    }
  }
  r.seconds += timer.seconds();
  if (limits.max_total_steps > 0 && r.step >= limits.max_total_steps && r.step % c.eval_every != 0) save(r);
  bar.finish();
  sum.steps = r.step;
  sum.finished = r.cur->phase() == Curriculum::Phase::Done;
  sum.curriculum = r.cur->to_json();
  return sum;
}

RmtTrainSummary resume_rmt(const std::string& out, const RmtTrainLimits& limits) {
  return train_rmt(RmtTrainConfig{}, out, true, limits);
}

}  // namespace mnemo
