// mnemo eval rmt --model DIR (--data FILE.jsonl | --task NAME --segments N[,N...] --count K) [--json]:
// accuracy of an RMT (encoder: the label of the head; decoder: the first word of the greedy answer), with tokens,
// segments, time and peak resident memory (docs/rmt.md).
#include <cstdio>
#include <sstream>

#include "base/error.h"
#include "base/json.h"
#include "base/file.h"
#include "base/timer.h"
#include "eval/rmt_eval.h"
#include "eval_verbs.h"
#include "io/gguf_tokenizer.h"
#include "memory/rmt_dir.h"
#include "tasks/long_context.h"

namespace mnemo::cli {

const char kEvalRmtUsage[] =
    R"(usage: mnemo eval rmt --model DIR (--data FILE.jsonl | --segments N[,N...]) [options]
  --model DIR           an RMT directory, encoder or decoder, full or delta (required)
  --data FILE.jsonl     a task file to score
  --segments N[,N...]   or generated samples of N segments, a result for each N
  --task NAME           task of the generated samples (default memorize)
  --count K             generated samples per N (default 16)
  --seed S              sample seed (default 0)
  --split NAME          corpus split of the background text (default test)
  --corpus DIR          corpus directory (default data/corpus)
  --facts-min N         story sentences of qa1-qa3: at least N (default: the shortest story, qa1 1, qa2 2, qa3 3;
                        needs --facts-max)
  --facts-max N         ... at most N, <= 10000 (default: each task's own range)
  --distractors X       name a random place in each background sentence with probability X (default 0:
                        the corpus as it is)
  --batch N             samples per forward (default 8)
  --precision P         fp32 (default) or bf16: the backbone's linear layers in bf16 (inference about 1.6x as
                        fast on a CPU with bf16 arithmetic; docs/rmt.md has its accuracy)
  --tokenizer PATH      default: the model directory's, or the one it names
  --attention-out FILE  encoder: attention maps as JSON (one --segments value, --count 1 --batch 1)
  --attention-first N   ... of the first N segments and the last (default 4)
  --probe-every N       encoder: after every N segments, also ask the question of the memory as it is (a side
                        segment shaped like a last one, its memory dropped): accuracy by segments held since
                        the last supporting fact (a task file's: the last fact it lists), and with --show each
                        sample's answers over the input
  --show                print each sample (or record, with its line): facts, where they are, the answer
                        (--json: every sample in the JSON, not only up to 16)
  --json                one JSON object; per length (by_segments) the count, the correct, those of the samples
                        whose fact is before the last segment (needs_memory_*), and one_answer_correct: what
                        answering every sample with the most frequent target would score
)";

namespace {

void print_samples(const RmtEvalResult& r) {
  for (auto& smp : r.samples) {
    if (smp.line > 0) std::printf("  line %lld (%lld tokens)\n", (long long)smp.line, (long long)smp.tokens);
    for (size_t f = 0; f < smp.facts.size(); ++f)
      std::printf("  fact \"%s\" at token %lld of %lld\n", smp.facts[f].c_str(), (long long)smp.fact_positions[f],
                  (long long)smp.tokens);
    std::printf("  question \"%s\" -> answer: %s (expected %s)\n", smp.question.c_str(), smp.prediction.c_str(),
                smp.target.c_str());
    if (!smp.probes.empty()) {  // one mark a probe: the answer then, right (+) or wrong (-)
      std::string marks;
      for (auto& pr : smp.probes) marks += pr.second == smp.target ? '+' : '-';
      const long long first = smp.probes[0].first;
      const std::string when = smp.probes.size() > 1 ? cat(first, ", ", smp.probes[1].first, ", ...") : cat(first);
      std::printf("  probes after %s segments (+ right, - wrong): %s\n", when.c_str(), marks.c_str());
    }
  }
}

void print_probes(const RmtEvalResult& r) {
  if (r.probes_held.empty()) return;
  std::printf("  probes after every supporting fact, by segments held:");
  for (auto& [lo, cc] : r.probes_held)
    std::printf(" %lld%s %lld/%lld", (long long)lo, lo > 1 ? cat("-", 2 * lo - 1).c_str() : "",
                (long long)cc.second, (long long)cc.first);
  std::printf("\n");
}

std::vector<int64_t> parse_list(const std::string& s, const char* flag) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v <= 0) throw Error(cat(flag, ": '", item, "' is not a positive integer"));
    out.push_back(v);
  }
  if (out.empty()) throw Error(cat(flag, ": empty list"));
  return out;
}

}  // namespace

int run_eval_rmt(Args& args) {
  common_flags(args);
  const std::string dir = args.require("--model");
  const std::string tok_path = args.get_or("--tokenizer", "");
  auto data = args.get("--data");
  RmtGenerateOptions g;
  g.task = args.get_or("--task", g.task);
  const std::string segs = args.get_or("--segments", "");
  g.count = args.get_int("--count", g.count);
  g.seed = uint64_t(args.get_int("--seed", 0));
  g.split = args.get_or("--split", g.split);
  g.corpus_dir = args.get_or("--corpus", g.corpus_dir);
  g.batch = args.get_int("--batch", g.batch);
  g.distractors = args.get_double("--distractors", g.distractors);
  const Precision precision = parse_precision(args.get_or("--precision", "fp32"), "--precision");
  g.attention_out = args.get_or("--attention-out", "");
  g.attention_first = args.get_int("--attention-first", g.attention_first);
  g.probe_every = args.get_int("--probe-every", 0);
  if (args.get("--probe-every") && g.probe_every < 1) throw Error("--probe-every must be at least 1");
  const int64_t facts_min = args.get_int("--facts-min", 0), facts_max = args.get_int("--facts-max", 0);
  const bool json = args.flag("--json");
  const bool show = args.flag("--show");  // print each sample: its facts, where they are, the answer
  args.finish();
  if (data && !segs.empty()) throw Error("give --data FILE or --segments N (generate), not both");
  if (!data && segs.empty()) throw Error("give --data FILE.jsonl, or --segments N[,N...] to generate samples");
  // Flags of generated samples only: a task file has its own stories, so with --data they would be ignored.
  if (data)
    for (const char* f : {"--task", "--count", "--seed", "--split", "--corpus", "--facts-min", "--facts-max",
                          "--distractors", "--attention-out", "--attention-first"})
      if (args.get(f)) throw Error(cat(f, " is for generated samples (--segments), not --data"));
  tasks::check_distractors(g.distractors);
  const std::vector<int64_t> seg_list = data ? std::vector<int64_t>{} : parse_list(segs, "--segments");
  // Each value's map would overwrite the last one's in the one file.
  if (!g.attention_out.empty() && seg_list.size() != 1)
    throw Error(cat("--attention-out writes one file: give one --segments value, not ", segs));
  if (g.attention_out.empty() && args.get("--attention-first")) throw Error("--attention-first needs --attention-out");
  // Alone, --facts-min would be ignored (the range is set only with a maximum); --facts-max alone starts at the
  // task's shortest story.
  if (args.get("--facts-min") && !args.get("--facts-max")) throw Error("--facts-min needs --facts-max");
  if (args.get("--facts-max")) tasks::set_fact_range(g.story, tasks::parse_task(g.task), facts_min, facts_max);

  const bool decoder = rmt_variant(dir) == "decoder";
  if (decoder && g.probe_every) throw Error("--probe-every is for the encoder variant");
  std::unique_ptr<RmtEncoder> encoder;
  std::unique_ptr<RmtDecoder> dec;
  if (decoder) {
    dec = load_rmt_decoder(dir);
    dec->backbone().set_precision(precision);
  } else {
    encoder = load_rmt(dir);
    encoder->backbone().set_precision(precision);
  }
  // The tokenizer: --tokenizer, else the model directory's, else the one it names or its base's (delta form).
  auto tok = load_any_tokenizer(tok_path.empty() ? rmt_tokenizer_path(dir) : tok_path);
  const int64_t L = decoder ? dec->config().segment_tokens : encoder->config().segment_tokens;
  const int64_t m = decoder ? dec->config().num_mem_tokens : encoder->config().num_mem_tokens;

  Json out = Json::object();
  out["model"] = dir;
  out["variant"] = decoder ? "decoder" : "encoder";
  out["segment_tokens"] = L;
  out["num_mem_tokens"] = m;
  out["precision"] = precision_name(precision);
  if (data) {
    RmtEvalResult r = decoder ? eval_rmt_decoder_file(*dec, *tok, *data, g.batch)
                              : eval_rmt_file(*encoder, *tok, *data, g.batch, g.probe_every);
    out["data"] = *data;
    const Json rj = r.to_json(show ? r.samples.size() : 16);  // named: iterating a temporary's member would dangle
    for (auto& [k, v] : rj.as_object()) out[k] = v;
    if (!json)
      std::printf("%s: accuracy %.4f (%lld/%lld), %lld tokens, %.2f s, peak RSS %.1f MB\n", data->c_str(),
                  r.accuracy(), (long long)r.correct, (long long)r.count, (long long)r.tokens, r.seconds,
                  double(r.peak_rss_bytes) / 1048576.0);
    if (!json) print_probes(r);
    if (show && !json) print_samples(r);
  } else {
    Json rows = Json::array();
    out["task"] = g.task;
    for (int64_t S : seg_list) {
      g.segments = S;
      RmtEvalResult r = decoder ? eval_rmt_decoder_generated(*dec, *tok, g) : eval_rmt_generated(*encoder, *tok, g);
      Json row = r.to_json(show ? r.samples.size() : 16);
      row["segments"] = S;
      row["seconds_per_segment_step"] = r.segments ? r.seconds / double(r.segments) : 0.0;
      rows.push_back(row);
      if (!json) {
        const auto mem = r.needs_memory[S];  // (count, correct) of samples whose answer needs the memory
        std::printf("%s S=%lld (%lld tokens each): accuracy %.4f (%lld/%lld; needing the memory %lld/%lld; one "
                    "answer for all %lld/%lld), %.2f s, %.4f s/segment, peak RSS %.1f MB\n",
                    g.task.c_str(), (long long)S, (long long)(S * L), r.accuracy(), (long long)r.correct,
                    (long long)r.count, (long long)mem.second, (long long)mem.first,
                    (long long)r.one_answer_correct(S), (long long)r.count, r.seconds,
                    r.segments ? r.seconds / double(r.segments) : 0.0, double(r.peak_rss_bytes) / 1048576.0);
      }
      if (!json) print_probes(r);
      if (show && !json) print_samples(r);
      std::fflush(stdout);
    }
    out["results"] = rows;
  }
  if (json) std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace mnemo::cli
