// mnemo tasks generate: long-context task files (JSON Lines, BABILong's field names) — bAbI-style facts hidden in
// background text of a corpus split, length exact in tokens of a tokenizer or in segments (docs/tasks.md).
#include <cstdio>

#include "base/error.h"
#include "base/json.h"
#include "base/timer.h"
#include "cli.h"
#include "tasks/long_context.h"
#include "io/gguf_tokenizer.h"
#include "text/tokenizer.h"

namespace {

using namespace mnemo;

constexpr const char* kUsage =
    R"(usage: mnemo tasks generate --task NAME (--length N | --segments S --segment-tokens T)
                            --tokenizer PATH --out FILE.jsonl [options]
  --task NAME           memorize, detect, reasoning, qa1, qa2, qa3, qa4 or passkey (required)
  --length N            tokens of a sample: its input (with --question-in-length, input and question)
  --segments S          or S segments of --segment-tokens T tokens, the question ending the last
  --segment-tokens T
  --question-in-length  see --length (always so with --segments)
  --distractors X       name a random place in each background sentence with probability X (default 0)
  --tokenizer PATH      the tokenizer lengths are measured in (required)
  --out FILE.jsonl      the task file to write (required)
  --count K             samples (default 1)
  --seed S              (default 0)
  --facts-min N         story sentences of qa1-qa3: at least N (default: the shortest story, qa1 1, qa2 2, qa3 3;
                        needs --facts-max)
  --facts-max N         ... at most N, <= 10000 (default: each task's own range)
  --split NAME          corpus split of the background text (default test)
  --corpus DIR          corpus directory (default data/corpus)
  --json                a JSON summary
)";

// Flags are read before the sub-command word, so a flag's value is never taken for it.
int run_tasks(cli::Args& args) {
  cli::common_flags(args);
  tasks::GenerateOptions opt;
  std::string task = args.get_or("--task", "");
  int64_t length = args.get_int("--length", 0);
  int64_t segments = args.get_int("--segments", 0);
  int64_t seg_tokens = args.get_int("--segment-tokens", 0);
  std::string tok_path = args.get_or("--tokenizer", "");
  std::string out = args.get_or("--out", "");
  opt.count = args.get_int("--count", 1);
  int64_t seed = args.get_int("--seed", 0);
  opt.split = args.get_or("--split", "test");
  opt.corpus_dir = args.get_or("--corpus", opt.corpus_dir);
  const int64_t facts_min = args.get_int("--facts-min", 0), facts_max = args.get_int("--facts-max", 0);
  bool q_in_len = args.flag("--question-in-length");
  opt.task.distractors = args.get_double("--distractors", 0);
  bool json = args.flag("--json");
  auto pos = args.positionals();
  args.finish();
  if (pos.size() != 1 || pos[0] != "generate") throw Error("expected `mnemo tasks generate ...` (mnemo tasks --help)");
  for (auto [flag, value] : {std::pair{"--task", &task}, {"--tokenizer", &tok_path}, {"--out", &out}})
    if (value->empty()) throw Error(cat(flag, " is required (mnemo tasks generate --help)"));

  opt.task.task = tasks::parse_task(task);
  // As in eval rmt: the range is set only with a maximum, so --facts-min alone would be ignored.
  if (args.get("--facts-min") && !args.get("--facts-max")) throw Error("--facts-min needs --facts-max");
  if (args.get("--facts-max")) tasks::set_fact_range(opt.task.story, opt.task.task, facts_min, facts_max);
  if (seed < 0) throw Error(cat("--seed must be non-negative, got ", seed));
  tasks::check_distractors(opt.task.distractors);
  opt.seed = uint64_t(seed);
  if (opt.count <= 0) throw Error(cat("--count must be positive, got ", opt.count));
  if (segments != 0 || seg_tokens != 0) {
    if (length != 0) throw Error("give either --length or --segments with --segment-tokens, not both");
    if (segments <= 0 || seg_tokens <= 0)
      throw Error("--segments and --segment-tokens must both be positive");
    if (segments > (int64_t(1) << 40) / seg_tokens)
      throw Error(cat("--segments ", segments, " x --segment-tokens ", seg_tokens, " is more tokens than mnemo writes"));
    // The sample fills exactly S segments of T text tokens with the question ending the last one.
    opt.task.length_tokens = segments * seg_tokens;
    opt.task.segments = segments;
    opt.task.segment_tokens = seg_tokens;
    opt.task.question_in_length = true;
  } else {
    if (length <= 0) throw Error("--length N (tokens, positive) or --segments S --segment-tokens T is required");
    opt.task.length_tokens = length;
    opt.task.question_in_length = q_in_len;
  }
  opt.tokenizer_name = tok_path;
  auto tok = load_any_tokenizer(tok_path);
  Timer timer;
  int64_t tokens = tasks::write_task_file(out, *tok, opt);
  double secs = timer.seconds();
  if (json) {
    Json r = Json::object();
    r["out"] = out;
    r["task"] = tasks::task_name(opt.task.task);
    r["count"] = opt.count;
    r["length_tokens"] = opt.task.length_tokens;
    r["question_in_length"] = opt.task.question_in_length;
    r["input_tokens"] = tokens;
    r["seconds"] = secs;
    std::printf("%s\n", r.dump().c_str());
  } else {
    std::printf("wrote %lld %s samples (%lld input tokens) to %s in %.1f s\n", (long long)opt.count,
                tasks::task_name(opt.task.task), (long long)tokens, out.c_str(), secs);
  }
  return 0;
}

}  // namespace

MNEMO_VERB("tasks", "generate long-context task files (memorize, detect, reasoning, qa1-qa4, passkey)", run_tasks,
           {{"generate", kUsage}});
