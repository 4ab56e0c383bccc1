#include "train/qa_trainer.h"

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "base/error.h"
#include "base/file.h"
#include "base/progress.h"
#include "base/rng.h"
#include "base/timer.h"
#include "io/checkpoint.h"
#include "io/gguf_tokenizer.h"
#include "io/llama_loader.h"
#include "memory/rmt_dir.h"
#include "tasks/qa_prompt.h"
#include "train/optimizer.h"

namespace mnemo {

Json QaTrainConfig::to_json() const {
  Json j = Json::object();
  j["init"] = init;
  j["tokenizer"] = tokenizer;
  j["data"] = data;
  j["val"] = val;
  j["template"] = templ;
  j["steps"] = steps;
  j["batch"] = batch;
  j["micro_batch"] = micro_batch;
  j["lr"] = lr;
  j["final_lr_fraction"] = final_lr_fraction;
  j["clip"] = clip;
  j["warmup"] = warmup;
  j["freeze_embeddings"] = freeze_embeddings;
  j["eval_every"] = eval_every;
  j["val_count"] = val_count;
  j["seed"] = int64_t(seed);
  return j;
}

QaTrainConfig QaTrainConfig::from_json(const Json& j, const std::string& source) {
  if (!j.is_object()) throw Error(cat(source, ": the qa training config is not a JSON object"));
  QaTrainConfig c;
  c.init = j.string_or("init", "");
  c.tokenizer = j.string_or("tokenizer", "");
  c.data = j.string_or("data", "");
  c.val = j.string_or("val", "");
  c.templ = j.string_or("template", c.templ);
  c.steps = j.int_or("steps", c.steps);
  c.batch = j.int_or("batch", c.batch);
  c.micro_batch = j.int_or("micro_batch", c.micro_batch);
  c.lr = j.number_or("lr", c.lr);
  c.final_lr_fraction = j.number_or("final_lr_fraction", c.final_lr_fraction);
  c.clip = j.number_or("clip", c.clip);
  c.warmup = j.int_or("warmup", c.warmup);
  c.freeze_embeddings = j.bool_or("freeze_embeddings", c.freeze_embeddings);
  c.eval_every = j.int_or("eval_every", c.eval_every);
  c.val_count = j.int_or("val_count", c.val_count);
  c.seed = uint64_t(j.int_or("seed", int64_t(c.seed)));
  return c;
}

namespace {

// One record as the model sees it: prompt (context + question) then the reply it must give.
struct Example {
  std::vector<int32_t> prompt, reply;
  std::string where;  // FILE:LINE, for errors
};

void validate(const QaTrainConfig& c) {
  if (c.init.empty()) throw Error("--init is required (a GGUF file or an HF Llama directory)");
  if (c.data.empty()) throw Error("--data is required (a task file, JSONL)");
  tasks::parse_qa_template(c.templ);
  auto positive = [](int64_t v, const char* flag) {
    if (v <= 0) throw Error(cat(flag, " must be positive, got ", v));
  };
  positive(c.steps, "--steps");
  positive(c.batch, "--batch");
  positive(c.micro_batch, "--micro-batch");
  positive(c.eval_every, "--eval-every");
  positive(c.val_count, "--val-count");
  if (c.warmup < 0) throw Error(cat("--warmup must be non-negative, got ", c.warmup));
  if (!(c.lr > 0) || !std::isfinite(c.lr)) throw Error(cat("--lr must be a positive number, got ", c.lr));
}

std::vector<Example> read_examples(const std::string& path, const Tokenizer& tok, tasks::QaTemplate templ,
                                   int32_t eos, int64_t context, int64_t limit) {
  std::vector<Example> out;
  tasks::TaskFileReader reader(path);
  tasks::TaskRecord rec;
  while ((limit <= 0 || int64_t(out.size()) < limit) && reader.next(rec)) {
    Example e;
    tasks::QaPrompt p = tasks::qa_prompt(tok, rec, templ);
    e.prompt = std::move(p.context);
    e.prompt.insert(e.prompt.end(), p.question.begin(), p.question.end());
    e.reply = tasks::qa_answer(tok, rec.target, templ, eos);
    e.where = cat(path, ":", rec.line);
    if (int64_t(e.prompt.size() + e.reply.size()) > context)
      throw Error(cat(e.where, ": the record needs ", e.prompt.size() + e.reply.size(),
                      " tokens, more than the model's context of ", context));
    out.push_back(std::move(e));
  }
  if (out.empty()) throw Error(cat(path, ": no records"));
  return out;
}

struct Outcome {
  double loss = 0;  // mean reply cross-entropy of the micro-batch
  int64_t correct = 0;
};

// One micro-batch through the model on tape t: the reply loss (and, when recording, its backward).
Outcome run_micro(Llama& model, Tape& t, const std::vector<const Example*>& ex) {
  const int64_t B = int64_t(ex.size());
  int64_t T = 0;
  for (const Example* e : ex) T = std::max<int64_t>(T, int64_t(e->prompt.size() + e->reply.size()) - 1);
  std::vector<int32_t> ids(size_t(B * T), 0);
  std::vector<uint8_t> valid(size_t(B * T), 0);
  std::vector<int64_t> rows;
  std::vector<int32_t> targets;
  for (int64_t b = 0; b < B; ++b) {
    const Example& e = *ex[size_t(b)];
    std::vector<int32_t> seq = e.prompt;
    seq.insert(seq.end(), e.reply.begin(), e.reply.end() - 1);  // the last reply token is only predicted
    std::copy(seq.begin(), seq.end(), ids.begin() + b * T);
    std::fill(valid.begin() + b * T, valid.begin() + b * T + int64_t(seq.size()), uint8_t(1));
    const int64_t P = int64_t(e.prompt.size());
    for (size_t k = 0; k < e.reply.size(); ++k) {
      rows.push_back(b * T + P - 1 + int64_t(k));  // position P-1+k predicts reply token k
      targets.push_back(e.reply[k]);
    }
  }
  Var x = model.embed(t, ids.data(), B * T);
  Var h = model.forward_embedded(t, x, B, T, valid.data());
  Var logits = model.lm_head(t, ag::select_rows(t, h, rows));  // (R, V)
  Var loss = ag::cross_entropy(t, logits, targets.data());
  Outcome o;
  o.loss = loss.value.data()[0];
  const int64_t V = logits.shape()[1];
  size_t r = 0;
  for (int64_t b = 0; b < B; ++b) {
    bool all = true;
    for (size_t k = 0; k < ex[size_t(b)]->reply.size(); ++k, ++r) {
      const float* row = logits.value.data() + int64_t(r) * V;
      all = all && int32_t(std::max_element(row, row + V) - row) == targets[r];
    }
    o.correct += all;
  }
  if (t.recording()) t.backward(loss);
  return o;
}

struct Run {
  QaTrainConfig cfg;
  std::string out;
  std::unique_ptr<Llama> model;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<AdamW> opt;
  std::vector<Example> train, val;
  Rng rng;
  int64_t step = 0;
  double seconds = 0;  // training time before this process (resumed runs)
  // Training statistics since the last evaluation (saved, so a resumed run logs the same lines).
  double loss_sum = 0;
  int64_t correct = 0, seen = 0;
};

std::string ckpt_dir(const std::string& out) { return join_path(out, "checkpoint"); }
std::string tokenizer_path(const QaTrainConfig& c) { return c.tokenizer.empty() ? c.init : c.tokenizer; }

void build(Run& r) {
  const QaTrainConfig& c = r.cfg;
  r.model = is_gguf_path(c.init) ? llama_from_gguf(c.init) : load_llama_dir(c.init);
  r.tok = load_any_tokenizer(tokenizer_path(c));
  const LlamaConfig& lc = r.model->config();
  if (r.tok->vocab_size() > lc.vocab_size)
    throw Error(cat(tokenizer_path(c), ": the tokenizer has ", r.tok->vocab_size(), " tokens, the model ", lc.vocab_size));
  const tasks::QaTemplate templ = tasks::parse_qa_template(c.templ);
  const int32_t eos = int32_t(lc.eos_token_id);
  r.train = read_examples(c.data, *r.tok, templ, eos, lc.max_position_embeddings, 0);
  r.val = read_examples(c.val.empty() ? c.data : c.val, *r.tok, templ, eos, lc.max_position_embeddings, c.val_count);
  AdamWConfig ac;
  ac.lr = float(c.lr);
  ac.weight_decay = 0.0f;  // frozen embeddings must not decay; fine-tuning runs are short
  r.opt = std::make_unique<AdamW>(r.model->params(), ac);
}

void save(const Run& r) {
  Checkpoint ck;
  for (const Parameter& p : r.model->params().all()) ck.weights.emplace_back(p.name, p.value);
  ck.optimizer = {{"m", r.opt->m()}, {"v", r.opt->v()}};
  ck.rng = r.rng.state();
  ck.step = r.step;
  Json st = Json::object();
  st["config"] = r.cfg.to_json();
  st["seconds"] = r.seconds;
  st["optimizer_steps"] = r.opt->steps();
  st["loss_sum"] = r.loss_sum;
  st["correct"] = r.correct;
  st["seen"] = r.seen;
  ck.state = st;
  save_checkpoint(ckpt_dir(r.out), ck);
}

void load(Run& r) {
  const std::string src = ckpt_dir(r.out);
  Checkpoint ck = load_checkpoint(src);
  r.cfg = QaTrainConfig::from_json(ck.state["config"], src);
  validate(r.cfg);
  build(r);
  for (Parameter& p : r.model->params().all()) p.value.copy_from(ck.weight(p.name, p.value.shape()));
  r.opt->m().copy_from(ck.optimizer_tensor("m", r.opt->m().shape()));
  r.opt->v().copy_from(ck.optimizer_tensor("v", r.opt->v().shape()));
  r.opt->set_steps(ck.state.int_or("optimizer_steps", ck.step));
  r.rng.set_state(ck.rng);
  r.step = ck.step;
  r.seconds = ck.state.number_or("seconds", 0);
  r.loss_sum = ck.state.number_or("loss_sum", 0);
  r.correct = ck.state.int_or("correct", 0);
  r.seen = ck.state.int_or("seen", 0);
}

// Reply loss and accuracy over the validation records (the same records every time).
std::pair<double, double> evaluate(Run& r) {
  Tape t(Tape::Mode::Inference);
  double loss = 0;
  int64_t correct = 0;
  const int64_t n = int64_t(r.val.size()), mb = r.cfg.micro_batch;
  for (int64_t i = 0; i < n; i += mb) {
    std::vector<const Example*> ex;
    for (int64_t j = i; j < std::min(n, i + mb); ++j) ex.push_back(&r.val[size_t(j)]);
    Outcome o = run_micro(*r.model, t, ex);
    loss += o.loss * double(ex.size());
    correct += o.correct;
    t.reset();
  }
  return {loss / double(n), double(correct) / double(n)};
}

void save_final(const Run& r) {
  const std::string dir = join_path(r.out, "final");
  save_llama_dir(dir, *r.model);
  const std::string tp = tokenizer_path(r.cfg);
  if (is_gguf_path(tp)) write_gguf_tokenizer_files(tp, dir);
  else copy_tokenizer_files(tp, dir);
}

}  // namespace

QaTrainSummary train_qa(const QaTrainConfig& cfg, const std::string& out, bool resume, int64_t stop_at) {
  Run r;
  r.out = out;
  if (resume) {
    if (!is_checkpoint(ckpt_dir(out))) throw Error(cat(ckpt_dir(out), ": no checkpoint to resume"));
    load(r);
  } else {
    if (is_checkpoint(ckpt_dir(out)))
      throw Error(cat(ckpt_dir(out), ": a run is already here (resume it with --resume, or choose another --out)"));
    r.cfg = cfg;
    validate(r.cfg);
    build(r);
    r.rng.seed_with(r.cfg.seed);
    make_directories(out);
  }
  const QaTrainConfig& c = r.cfg;
  QaTrainSummary sum;
  Progress bar("train qa", c.steps);
  auto eval_and_log = [&](double train_loss, double train_acc, double grad_norm, double lr) {
    auto [vl, va] = evaluate(r);
    sum.val_loss = vl, sum.val_accuracy = va;
    Json j = Json::object();
    j["step"] = r.step;
    j["train_loss"] = train_loss;
    j["train_accuracy"] = train_acc;
    j["val_loss"] = vl;
    j["val_accuracy"] = va;
    j["val_records"] = int64_t(r.val.size());
    j["grad_norm"] = grad_norm;
    j["lr"] = lr;
    j["seconds"] = r.seconds;
    append_line(join_path(out, "log.jsonl"), j.dump());
    bar.note(j.dump());
  };
  if (!resume) eval_and_log(0, 0, 0, 0);  // the starting point

  LrSchedule sched{c.lr, c.warmup, c.steps, c.final_lr_fraction};
  Parameter* embed = r.model->params().find("model.embed_tokens.weight");
  Tape tape;
  Timer timer;
  const int64_t last = stop_at > 0 ? std::min(stop_at, c.steps) : c.steps;
  while (r.step < last) {
    std::vector<const Example*> batch;
    for (int64_t i = 0; i < c.batch; ++i) batch.push_back(&r.train[size_t(r.rng.below(r.train.size()))]);
    r.model->params().zero_grad();
    double step_loss = 0;
    int64_t micro = 0;
    for (int64_t i = 0; i < c.batch; i += c.micro_batch, ++micro) {
      std::vector<const Example*> ex(batch.begin() + i, batch.begin() + std::min(c.batch, i + c.micro_batch));
      Outcome o = run_micro(*r.model, tape, ex);
      tape.reset();
      step_loss += o.loss;
      r.correct += o.correct;
    }
    // Each micro-batch added the gradient of its mean loss: their mean is the batch's.
    Tensor& g = r.model->params().grad_storage();
    const float inv = 1.0f / float(micro);
    for (int64_t i = 0; i < g.numel(); ++i) g.data()[i] *= inv;
    if (c.freeze_embeddings && embed) embed->grad.fill(0.0f);
    const double norm = clip_grad_norm(r.model->params(), c.clip);
    const double lr = sched.at(r.step);
    if (std::isfinite(norm)) r.opt->step(float(lr));  // a non-finite gradient skips the update (logged)
    ++r.step;
    step_loss /= double(micro);
    sum.losses.push_back(step_loss);
    r.loss_sum += step_loss * double(c.batch), r.seen += c.batch;
    bar.update(r.step, cat("loss ", step_loss, " |g| ", norm));
    if (r.step % c.eval_every == 0 || r.step == c.steps) {
      r.seconds += timer.seconds();
      timer.reset();
      eval_and_log(r.loss_sum / double(r.seen), double(r.correct) / double(r.seen), norm, lr);
      r.loss_sum = 0, r.correct = 0, r.seen = 0;
      save(r);
    }
  }
  r.seconds += timer.seconds();
  if (r.step % c.eval_every != 0 && r.step != c.steps) save(r);
  if (r.step >= c.steps) save_final(r);
  bar.finish();
  sum.steps = r.step;
  sum.finished = r.step >= c.steps;
  return sum;
}

}  // namespace mnemo
