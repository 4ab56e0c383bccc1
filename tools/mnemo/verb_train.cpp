// mnemo train: `mnemo train rmt ...` trains the Recurrent Memory Transformer (encoder or decoder variant) with the
// curriculum (docs/rmt.md); every other form goes to the LM/MLM trainer (train_lm.h).
#include <cstdio>
#include <filesystem>

#include "base/error.h"
#include "base/json.h"
#include "base/file.h"
#include "cli.h"
#include "memory/rmt_dir.h"
#include "train/rmt_trainer.h"
#include "train_lm.h"

namespace {

using namespace mnemo;

// mnemo train rmt --export SRC --base BASE --out DST: SRC (a full RMT directory) as a small delta directory
// against the pretrained BASE it was fine-tuned from (memory/rmt_dir.h: a BERT directory for the encoder, a GGUF
// file or HF Llama directory for the decoder), with the tokenizer files when SRC has them.
int export_delta(cli::Args& args, const std::string& src) {
  const std::string base = args.require("--base");
  const std::string out = args.require("--out");
  const bool json = args.flag("--json");
  args.finish();
  const std::string variant = rmt_variant(src);
  make_directories(out);
  const std::string ref = std::filesystem::relative(std::filesystem::absolute(base),
                                                    std::filesystem::absolute(out)).string();
  if (variant == "decoder") save_rmt_decoder_delta(out, *load_rmt_decoder(src), base, ref);
  else save_rmt_delta(out, *load_rmt(src), base, ref);
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
  limits.max_total_steps = args.get_int("--max-total-steps", 0);
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
    c.batch = args.get_int("--batch", c.batch);
    c.bptt_depth = args.get_int("--bptt-depth", c.bptt_depth);
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

int run(cli::Args& args) {
  // "rmt" is the sub-command word; anything else is the LM/MLM trainer's.
  if (args.flag("rmt")) return run_train_rmt(args);
  return cli::run_train_lm(args);
}

}  // namespace

MNEMO_VERB("train", "train a model: `train rmt` (recurrent memory, curriculum) or the LM/MLM trainer", run);
