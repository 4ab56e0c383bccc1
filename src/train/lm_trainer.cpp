#include "train/lm_trainer.h"

#include <cmath>
#include <cstdio>

#include "autograd/ops.h"
#include "base/error.h"
#include "base/progress.h"
#include "base/rng.h"
#include "base/timer.h"
#include "io/checkpoint.h"
#include "train/optimizer.h"

namespace mnemo {

namespace {

// One batch: ids (B*T) and the targets the loss uses (B*T, -1 = ignored).
struct Batch {
  std::vector<int32_t> ids, targets;
};

// Causal LM: window of T ids; Gpt2::lm_loss shifts the labels itself, so labels = ids.
// Masked LM: the window with BERT's corruption; targets hold the original id at predicted positions.
void fill_window(Batch& b, int64_t row, const int32_t* src, const LmTrainConfig& c, int64_t vocab, Rng& rng) {
  int64_t T = c.seq;
  for (int64_t t = 0; t < T; ++t) {
    int32_t id = src[t];
    size_t i = size_t(row * T + t);
    if (c.objective == LmObjective::Causal) {
      b.ids[i] = id;
      b.targets[i] = id;
      continue;
    }
    b.ids[i] = id;
    b.targets[i] = -1;
    if (rng.uniform() < c.mask_prob) {
      b.targets[i] = id;
      double u = rng.uniform();
      if (u < 0.8) b.ids[i] = c.mask_id;
      else if (u < 0.9) b.ids[i] = int32_t(rng.below(uint64_t(vocab)));
    }
  }
}

int64_t vocab_of(LoadedModel& m) { return m.gpt2 ? m.gpt2->config().vocab_size : m.bert->config().vocab_size; }

// Loss of one batch on the tape (B*T ids).
Var batch_loss(Tape& tape, LoadedModel& m, const Batch& b, const LmTrainConfig& c) {
  if (c.objective == LmObjective::Causal)
    return m.gpt2->lm_loss(tape, b.ids.data(), b.targets.data(), c.batch, c.seq);
  Var h = m.bert->encode(tape, b.ids.data(), nullptr, nullptr, c.batch, c.seq);
  Var logits = m.bert->mlm_logits(tape, h);
  return ag::cross_entropy(tape, logits, b.targets.data());
}

void check_setup(LoadedModel& m, const std::vector<int32_t>& ids, const LmTrainConfig& c, const char* what) {
  if (c.objective == LmObjective::Causal && !m.gpt2)
    throw Error("causal-LM training needs a GPT-2 model (this one is BERT; use --objective mlm)");
  if (c.objective == LmObjective::Masked) {
    if (!m.bert || m.bert->config().head != BertHead::MaskedLM)
      throw Error("masked-LM training needs a BERT model with the BertForMaskedLM head");
    if (c.mask_id < 0 || c.mask_id >= vocab_of(m)) throw Error(cat("--mask-id ", c.mask_id, " is not in the vocabulary"));
  }
  if (c.batch <= 0 || c.seq <= 0) throw Error("--batch and --seq must be positive");
  if (int64_t(ids.size()) < c.seq + 1)
    throw Error(cat("the ", what, " data has ", ids.size(), " tokens, fewer than one window of ", c.seq + 1));
  int64_t V = vocab_of(m);
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= V)
      throw Error(cat("the ", what, " data has token id ", ids[i], " at index ", i, ", outside the vocabulary of ", V));
}

Checkpoint make_checkpoint(ParameterSet& params, AdamW& opt, const Rng& rng, int64_t step, const LmTrainLog& log) {
  Checkpoint ck;
  for (auto& p : params.all()) ck.weights.emplace_back(p.name, p.value);
  ck.optimizer.emplace_back("m", opt.m());
  ck.optimizer.emplace_back("v", opt.v());
  ck.rng = rng.state();
  ck.step = step;
  Json losses = Json::array();
  for (auto& [s, l] : log.val_loss) losses.push_back(Json(Json::Array{Json(s), Json(l)}));
  ck.state["val_loss"] = losses;
  return ck;
}

}  // namespace

double lm_validation_loss(LoadedModel& m, const std::vector<int32_t>& ids, const LmTrainConfig& c) {
  check_setup(m, ids, c, "validation");
  Rng rng(c.seed ^ 0x5eed5eedull);  // fixed windows and masks, independent of training progress
  Batch b{std::vector<int32_t>(size_t(c.batch * c.seq)), std::vector<int32_t>(size_t(c.batch * c.seq))};
  int64_t span = int64_t(ids.size()) - c.seq;
  double total = 0;
  Tape tape(Tape::Mode::Inference);
  for (int64_t k = 0; k < c.eval_batches; ++k) {
    for (int64_t r = 0; r < c.batch; ++r) {
      // Evenly spaced windows cover the whole validation text deterministically.
      int64_t start = span * (k * c.batch + r) / std::max<int64_t>(1, c.eval_batches * c.batch);
      fill_window(b, r, ids.data() + start, c, vocab_of(m), rng);
    }
    tape.reset();
    total += batch_loss(tape, m, b, c).value[0];
  }
  return total / double(c.eval_batches);
}

LmTrainLog train_lm(LoadedModel& m, const std::vector<int32_t>& train_ids, const std::vector<int32_t>& val_ids,
                    const LmTrainConfig& c, bool resume) {
  check_setup(m, train_ids, c, "training");
  if (!val_ids.empty()) check_setup(m, val_ids, c, "validation");
  ParameterSet& params = m.params();
  AdamW opt(params, c.adamw);
  Rng rng(c.seed);
  LmTrainLog log;

  if (resume) {
    if (c.checkpoint.empty() || !is_checkpoint(c.checkpoint))
      throw Error(cat("--resume: no checkpoint at '", c.checkpoint, "'"));
    Checkpoint ck = load_checkpoint(c.checkpoint);
    for (auto& p : params.all()) p.value.copy_from(ck.weight(p.name, p.value.shape()));
    opt.m().copy_from(ck.optimizer_tensor("m", opt.m().shape()));
    opt.v().copy_from(ck.optimizer_tensor("v", opt.v().shape()));
    opt.set_steps(ck.step);
    rng.set_state(ck.rng);
    log.start_step = ck.step;
    if (const Json* v = ck.state.find("val_loss"))
      for (auto& e : v->as_array("val_loss")) {
        auto& pair = e.as_array("val_loss entry");
        if (pair.size() == 2) log.val_loss.emplace_back(pair[0].as_int(), pair[1].as_number());
      }
    if (log.start_step >= c.steps) throw Error(cat("--resume: the checkpoint is at step ", log.start_step,
                                                   ", not before --steps ", c.steps));
  }

  LrSchedule sched{c.lr, c.warmup, c.steps, c.final_lr_fraction};
  Batch b{std::vector<int32_t>(size_t(c.batch * c.seq)), std::vector<int32_t>(size_t(c.batch * c.seq))};
  int64_t span = int64_t(train_ids.size()) - c.seq;
  Tape tape(Tape::Mode::Train);
  Progress bar("train", c.steps);
  Timer timer;
  int64_t tokens = 0;
  auto save = [&](int64_t step) {
    if (!c.checkpoint.empty()) save_checkpoint(c.checkpoint, make_checkpoint(params, opt, rng, step, log));
  };

  int64_t end = c.stop_at > 0 ? std::min(c.stop_at, c.steps) : c.steps;
  for (int64_t step = log.start_step; step < end; ++step) {
    for (int64_t r = 0; r < c.batch; ++r)
      fill_window(b, r, train_ids.data() + rng.below(uint64_t(span + 1)), c, vocab_of(m), rng);
    tape.reset();
    params.zero_grad();
    Var loss = batch_loss(tape, m, b, c);
    tape.backward(loss);
    double norm = clip_grad_norm(params, c.clip);
    double l = loss.value[0];
    if (!std::isfinite(l) || !std::isfinite(norm))
      throw Error(cat("training diverged at step ", step + 1, " (loss ", l, ", gradient norm ", norm,
                      "); lower --lr or raise --warmup"));
    opt.step(float(sched.at(step)));
    tokens += c.batch * c.seq;
    log.train_loss.emplace_back(step + 1, l);

    char status[128];
    std::snprintf(status, sizeof status, "loss %.4f | lr %.2e | %.0f tok/s", l, sched.at(step),
                  double(tokens) / std::max(1e-9, timer.seconds()));
    bar.update(step + 1, status);
    bool last = step + 1 == end;
    if (!val_ids.empty() && c.eval_every > 0 && ((step + 1) % c.eval_every == 0 || last)) {
      double v = lm_validation_loss(m, val_ids, c);
      log.val_loss.emplace_back(step + 1, v);
      char line[96];
      std::snprintf(line, sizeof line, "step %lld: validation loss %.4f (ppl %.2f)", (long long)(step + 1), v,
                    std::exp(v));
      bar.note(line);
    }
    if (last || (c.save_every > 0 && (step + 1) % c.save_every == 0)) save(step + 1);
  }
  bar.finish();
  log.tokens_per_second = double(tokens) / std::max(1e-9, timer.seconds());
  return log;
}

}  // namespace mnemo
