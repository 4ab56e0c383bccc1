// mnemo train: `mnemo train rmt ...` trains the Recurrent Memory Transformer (encoder or decoder variant) with the
// curriculum (docs/rmt.md); `mnemo train qa ...` fine-tunes a decoder on a task file (docs/kvcache.md); every other
// form goes to the LM/MLM trainer (train_lm.h).
#include <cstdio>
#include <filesystem>

#include "base/error.h"
#include "base/json.h"
#include "base/file.h"
#include "cli.h"
#include "memory/rmt_dir.h"
#include "train/qa_trainer.h"
#include "train/rmt_trainer.h"
#include "train_lm.h"

namespace {

using namespace mnemo;

constexpr const char* kRmtUsage =
    R"(usage: mnemo train rmt --init MODEL --out DIR [options]
   or: mnemo train rmt --out DIR --resume [curriculum flags] [--stop-at N]
   or: mnemo train rmt --export SRC --base BASE --out DST [--delta-bits 16|1]
  --out DIR             the run: checkpoint, log and model (required)
  --init MODEL          backbone: BERT directory (encoder), GGUF file or HF Llama directory (decoder)
  --variant NAME        encoder (default) or decoder
  --tokenizer PATH      default: --init's
  --task NAME           training task (default memorize)
  --corpus DIR          background text (default data/corpus)
  --facts-min N         story sentences of qa1-qa3: at least N (default: the shortest story, qa1 1, qa2 2, qa3 3;
                        needs --facts-max)
  --facts-max N         ... at most N, <= 10000 (default: each task's own range)
  --mem N               memory tokens (default 10)
  --segment-tokens N    text tokens per segment (default 64)
  --sink-token          decoder: open every segment with the backbone's BOS
  --batch N             samples per step (default 32)
  --bptt-depth N        backpropagate through the last N segments (default 0: all)
  --distractors X       name a random place in each background sentence with probability X, in training
                        and validation samples, so that a mention is not taken for a fact (default 0)
  --warm-memory P       encoder: with probability P a step's samples start from memories that have read
                        only background text, a chain that reads --warm-segments more each step (forward
                        only): the states of long inputs in training, gradients still within each sample
                        (default 0)
  --warm-segments K     segments the chain reads each step (default 4)
  --warm-reset R        each step, each chain row starts over with probability R, so the chain holds
                        memories of every age (mean K/R segments) (default 0: one age, growing)
  --lr X                learning rate (default 1e-4)
  --clip X              gradient-norm clip (default 1.0)
  --warmup N            warmup steps (default 50)
  --train-embeddings    train the word embeddings too (default: frozen)
  --eval-every N        validate every N steps (default 25)
  --val-count N         validation samples (default 64)
  --val-batch N         validation batch (default 32)
  --seed N              (default 1)
  --start-segments N    the curriculum's first stage (default 1)
  --max-segments N      its last stage (default 7)
  --threshold X         a stage converges at this validation accuracy (default 0.99) ...
  --confirm N           ... at N evaluations in a row (default 2)
  --min-steps N         ... and after N steps at least (default 100)
  --max-steps N         a stage advances anyway after N steps (default 800); both step counts are multiples
                        of --eval-every (stages end at evaluations)
  --mixed-steps N       then steps with random segment counts (default 300; 0: none; with --resume, more
                        than a finished run did goes on with the rest)
  --mixed-min N         their least segment count (default 1)
  --stop-at N           checkpoint and stop after step N in total (default 0: no limit; --max-total-steps N
                        is the same flag, its former name)
  --resume              continue DIR's checkpoint: its configuration; only --max-segments to --mixed-min
                        may change it
  --export SRC          write the trained RMT directory SRC as a delta against BASE into DST
  --base BASE           the pretrained model SRC was fine-tuned from
  --delta-bits 16|1     changed matrices as BF16 (default) or signs and scales (lossy)
  --json                a JSON summary
)";

constexpr const char* kQaUsage =
    R"(usage: mnemo train qa --init MODEL --data FILE.jsonl --out DIR [options]
   or: mnemo train qa --out DIR --resume [--stop-at N] [--json]
  --out DIR             the run: checkpoint, log, and the model in DIR/final (required)
  --init MODEL          the decoder to fine-tune: GGUF file or HF Llama directory (required)
  --data FILE.jsonl     training task file (required)
  --val FILE.jsonl      validation task file (default: the first --val-count training records)
  --tokenizer PATH      default: --init's
  --template NAME       prompt, as eval qa asks it: chatml (default) or plain
  --steps N             optimizer steps (default 200)
  --batch N             records per step (default 8)
  --micro-batch N       records per forward (default 1)
  --lr X                peak learning rate (default 2e-5)
  --final-lr-fraction X the last step's learning rate over the peak (default 0.1)
  --clip X              gradient-norm clip (default 1.0)
  --warmup N            warmup steps (default 20)
  --train-embeddings    train the word embeddings too (default: frozen)
  --eval-every N        validate every N steps (default 25)
  --val-count N         validation records (default 32)
  --seed N              (default 1)
  --resume              continue DIR's checkpoint with its stored configuration
  --stop-at N           checkpoint and stop after step N in total (default 0: run to --steps)
  --json                a JSON summary
)";

// mnemo train rmt --export SRC --base BASE --out DST: SRC (a full RMT directory) as a small delta directory
// against the pretrained BASE it was fine-tuned from (memory/rmt_dir.h: a BERT directory for the encoder, a GGUF
// file or HF Llama directory for the decoder), with the tokenizer files when SRC has them. --delta-bits 1 stores
// each changed matrix as signs and row scales (lossy, 1 bit a parameter) instead of BF16.
int export_delta(cli::Args& args, const std::string& src) {
  const std::string base = args.require("--base");
  const std::string out = args.require("--out");
  const int bits = int(args.get_int("--delta-bits", 16));
  if (bits != 16 && bits != 1) throw Error(cat("--delta-bits: ", bits, " (expected 16 or 1)"));
  const bool json = args.flag("--json");
  args.finish();
  const std::string variant = rmt_variant(src);
  make_directories(out);
  const std::string ref = std::filesystem::relative(std::filesystem::absolute(base),
                                                    std::filesystem::absolute(out)).string();
  if (variant == "decoder") save_rmt_decoder_delta(out, *load_rmt_decoder(src), base, ref, bits);
  else save_rmt_delta(out, *load_rmt(src), base, ref, bits);
  copy_tokenizer_files(src, out);
  Json j = Json::object();
  j["out"] = out;
  j["delta_of"] = ref;
  if (json) std::printf("%s\n", j.dump().c_str());
  else std::printf("%s: delta of %s\n", out.c_str(), ref.c_str());
  return 0;
}

int run_train_rmt(cli::Args& args) {
  cli::common_flags(args);
  if (auto src = args.get("--export")) return export_delta(args, *src);
  const std::string out = args.require("--out");
  const bool resume = args.flag("--resume");
  RmtTrainLimits limits;
  // --stop-at as in train lm and train qa; --max-total-steps, its first name, stays for the commands that use it.
  limits.max_total_steps = args.get_int("--stop-at", 0, "--max-total-steps");
  if (limits.max_total_steps < 0) throw Error(cat("--stop-at must be non-negative, got ", limits.max_total_steps));
  const bool json = args.flag("--json");
  RmtTrainSummary s;
  if (resume) {
    // The configuration comes from the checkpoint; only the curriculum's rules may change (a longer run, a
    // stricter threshold). Other flags would be ignored, so finish() refuses them.
    const std::pair<const char*, const char*> keys[] = {
        {"--max-segments", "max_segments"}, {"--threshold", "threshold"}, {"--confirm", "confirm"},
        {"--min-steps", "min_steps"},       {"--max-steps", "max_steps"}, {"--mixed-steps", "mixed_steps"},
        {"--mixed-min", "mixed_min"}};
    for (auto [flag, key] : keys)
      if (auto v = args.get(flag)) {
        if (std::string(key) == "threshold") limits.curriculum_overrides[key] = args.get_double(flag, 0);
        else limits.curriculum_overrides[key] = args.get_int(flag, 0);
      }
    args.finish();
    s = resume_rmt(out, limits);
  } else {
    RmtTrainConfig c;
    c.variant = args.get_or("--variant", c.variant);
    c.init = args.require("--init");
    c.tokenizer = args.get_or("--tokenizer", "");
    c.corpus_dir = args.get_or("--corpus", c.corpus_dir);
    c.task = args.get_or("--task", c.task);
    c.facts_min = args.get_int("--facts-min", c.facts_min);
    c.facts_max = args.get_int("--facts-max", c.facts_max);
    c.num_mem_tokens = args.get_int("--mem", c.num_mem_tokens);
    c.segment_tokens = args.get_int("--segment-tokens", c.segment_tokens);
    c.sink_token = args.flag("--sink-token");
    c.batch = args.get_int("--batch", c.batch);
    c.bptt_depth = args.get_int("--bptt-depth", c.bptt_depth);
    c.distractors = args.get_double("--distractors", c.distractors);
    c.warm_memory = args.get_double("--warm-memory", c.warm_memory);
    c.warm_segments = args.get_int("--warm-segments", c.warm_segments);
    c.warm_reset = args.get_double("--warm-reset", c.warm_reset);
    c.lr = args.get_double("--lr", c.lr);
    c.clip = args.get_double("--clip", c.clip);
    c.warmup = args.get_int("--warmup", c.warmup);
    c.freeze_embeddings = !args.flag("--train-embeddings");
    c.eval_every = args.get_int("--eval-every", c.eval_every);
    c.val_count = args.get_int("--val-count", c.val_count);
    c.val_batch = args.get_int("--val-batch", c.val_batch);
    c.seed = uint64_t(args.get_int("--seed", int64_t(c.seed)));
    CurriculumConfig& cu = c.curriculum;
    cu.start_segments = args.get_int("--start-segments", cu.start_segments);
    cu.max_segments = args.get_int("--max-segments", cu.max_segments);
    cu.threshold = args.get_double("--threshold", cu.threshold);
    cu.confirm = args.get_int("--confirm", cu.confirm);
    cu.min_steps = args.get_int("--min-steps", cu.min_steps);
    cu.max_steps = args.get_int("--max-steps", cu.max_steps);
    cu.mixed_steps = args.get_int("--mixed-steps", cu.mixed_steps);
    cu.mixed_min = args.get_int("--mixed-min", cu.mixed_min);
    args.finish();
    s = train_rmt(c, out, false, limits);
  }
  Json j = Json::object();
  j["out"] = out;
  j["steps"] = s.steps;
  j["finished"] = s.finished;
  j["curriculum"] = s.curriculum;
  if (json) std::printf("%s\n", j.dump().c_str());
  else std::printf("%s: %lld steps, %s\n", out.c_str(), (long long)s.steps, s.finished ? "finished" : "stopped (resume with --resume)");
  return 0;
}

// mnemo train qa --init MODEL --data FILE.jsonl --out DIR: fine-tune a Llama decoder to answer a task file's
// questions in the prompt `mnemo eval qa` asks (train/qa_trainer.h); --resume continues OUT's checkpoint.
int run_train_qa(cli::Args& args) {
  cli::common_flags(args);
  const std::string out = args.require("--out");
  const bool resume = args.flag("--resume");
  const int64_t stop_at = args.get_int("--stop-at", 0);
  const bool json = args.flag("--json");
  QaTrainConfig c;
  if (!resume) {
    c.init = args.require("--init");
    c.tokenizer = args.get_or("--tokenizer", "");
    c.data = args.require("--data");
    c.val = args.get_or("--val", "");
    c.templ = args.get_or("--template", c.templ);
    c.steps = args.get_int("--steps", c.steps);
    c.batch = args.get_int("--batch", c.batch);
    c.micro_batch = args.get_int("--micro-batch", c.micro_batch);
    c.lr = args.get_double("--lr", c.lr);
    c.final_lr_fraction = args.get_double("--final-lr-fraction", c.final_lr_fraction);
    c.clip = args.get_double("--clip", c.clip);
    c.warmup = args.get_int("--warmup", c.warmup);
    c.freeze_embeddings = !args.flag("--train-embeddings");
    c.eval_every = args.get_int("--eval-every", c.eval_every);
    c.val_count = args.get_int("--val-count", c.val_count);
    c.seed = uint64_t(args.get_int("--seed", int64_t(c.seed)));
  }
  args.finish();  // on --resume the configuration comes from the checkpoint: other flags are refused
  if (stop_at < 0) throw Error(cat("--stop-at must be non-negative, got ", stop_at));
  QaTrainSummary s = train_qa(c, out, resume, stop_at);
  Json j = Json::object();
  j["out"] = out;
  j["steps"] = s.steps;
  j["finished"] = s.finished;
  j["val_loss"] = s.val_loss;
  j["val_accuracy"] = s.val_accuracy;
  if (s.finished) j["model"] = join_path(out, "final");
  if (json) std::printf("%s\n", j.dump().c_str());
  else if (s.finished) std::printf("%s: %lld steps, validation accuracy %.3f; model in %s/final\n", out.c_str(),
                                   (long long)s.steps, s.val_accuracy, out.c_str());
  else std::printf("%s: %lld steps, stopped (resume with --resume)\n", out.c_str(), (long long)s.steps);
  return 0;
}

int run(cli::Args& args) {
  // "rmt" and "qa" are sub-command words; anything else is the LM/MLM trainer's.
  if (args.leading("rmt")) return run_train_rmt(args);
  if (args.leading("qa")) return run_train_qa(args);
  return cli::run_train_lm(args);
}

}  // namespace

MNEMO_VERB("train",
           "train a model: `train rmt` (recurrent memory, curriculum), `train qa` (fine-tune a decoder on a task "
           "file) or the LM/MLM trainer",
           run,
           {{"lm", cli::kTrainLmUsage}, {"", cli::kTrainLmUsage}, {"rmt", kRmtUsage}, {"qa", kQaUsage}});
