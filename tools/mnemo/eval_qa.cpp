// mnemo eval qa: answer accuracy of a decoder on a task file (passkey, BABILong-style qa1/qa2: {"input",
// "question", "target"}) with a KV-cache memory policy at a budget — recall at a budget (docs/kvcache.md).
//
// Protocol, the one NVIDIA kvpress's pipeline uses, so the two are compared on equal terms:
//   prompt   = tasks/qa_prompt.h (chatml: SmolLM2's template, default system message; or plain), context and
//              question tokenized separately — the prompt `mnemo train qa` fine-tunes on;
//   context  prefilled in one forward (or --chunk tokens at a time), every query row shown to the policy, and
//              reduced to the budget in one step (H2O adds all rows, TOVA reads the last, windows by position);
//   question and answer then appended without eviction (--compress all: evicted at every step like the context);
//   answer   greedy, up to --max-new tokens or <|im_end|>/EOS; correct when the target occurs in it (case-folded).
// Positions stay absolute (as in kvpress). Output: accuracy, timing, peak memory; --json adds every answer.
#include <algorithm>
#include <cstdio>

#include "base/error.h"
#include "base/json.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "cli.h"
#include "eval_verbs.h"
#include "io/gguf_tokenizer.h"
#include "io/llama_loader.h"
#include "memory/bounded_kv_cache.h"
#include "memory/make_cache.h"
#include "tasks/qa_prompt.h"
#include "tasks/task_file.h"

namespace mnemo::cli {

const char kEvalQaUsage[] =
    R"(usage: mnemo eval qa --model PATH --data FILE.jsonl [--memory POLICY --budget K] [options]
  --model PATH          decoder: GGUF file or HF directory (required)
  --data FILE.jsonl     task file of {"input", "question", "target"} records (required)
  --memory POLICY       KV cache: full (default), window, sink[:S], h2o[:R], tova or sink[:S]+P
  --budget K[,K...]     entries a bounded cache keeps per layer (one value, or one per layer)
  --compress MODE       context: evict while reading the context only (default); all: at every step
  --chunk N             context tokens per prefill forward (default: all at once)
  --template NAME       prompt: chatml (default) or plain
  --tokenizer PATH      default: --model's
  --limit N             the first N records only (default all)
  --max-new N           most answer tokens (default 16)
  --json                one JSON object, with every answer
)";

int run_eval_qa(Args& args) {
  common_flags(args);
  const std::string model_path = args.require("--model");
  const std::string data = args.require("--data");
  const std::string policy = args.get_or("--memory", "full");
  const std::string budget = args.get_or("--budget", "");
  const std::string tok_path = args.get_or("--tokenizer", model_path);
  const std::string templ = args.get_or("--template", "chatml");
  const std::string compress = args.get_or("--compress", "context");
  const int64_t limit = args.get_int("--limit", 0);
  const int64_t max_new = args.get_int("--max-new", 16);
  const int64_t chunk_flag = args.get_int("--chunk", 0);
  const bool json = args.flag("--json");
  args.finish();
  const tasks::QaTemplate qt = tasks::parse_qa_template(templ);
  if (compress != "context" && compress != "all")
    throw Error(cat("--compress must be context or all, got '", compress, "'"));
  if (max_new <= 0) throw Error(cat("--max-new must be positive, got ", max_new));
  if (limit < 0) throw Error(cat("--limit must be non-negative, got ", limit));
  if (chunk_flag < 0) throw Error(cat("--chunk must be positive (or 0: all at once), got ", chunk_flag));

  // Tokenize every record first: the longest one sizes the decoder's scratch and the caches.
  std::vector<tasks::TaskRecord> records = tasks::read_task_file(data);
  if (limit > 0 && int64_t(records.size()) > limit) records.resize(size_t(limit));
  auto tok = load_any_tokenizer(tok_path);
  std::vector<std::vector<int32_t>> ctx_ids(records.size()), q_ids(records.size());
  int64_t longest_ctx = 0, longest = 0;
  for (size_t r = 0; r < records.size(); ++r) {
    tasks::QaPrompt p = tasks::qa_prompt(*tok, records[r], qt);
    ctx_ids[r] = std::move(p.context);
    q_ids[r] = std::move(p.question);
    longest_ctx = std::max<int64_t>(longest_ctx, int64_t(ctx_ids[r].size()));
    longest = std::max<int64_t>(longest, int64_t(ctx_ids[r].size() + q_ids[r].size()) + max_new);
  }
  const int64_t chunk = chunk_flag ? std::min(chunk_flag, longest_ctx) : longest_ctx;
  const int64_t max_q = [&] {
    int64_t m = 0;
    for (auto& q : q_ids) m = std::max<int64_t>(m, int64_t(q.size()));
    return m;
  }();
  const int64_t batch = std::max(chunk, max_q);

  Timer load_timer;
  auto dec = load_decoder(model_path, batch, longest);
  if (longest > dec->context_length())
    throw Error(cat(data, ": a record needs ", longest, " tokens, more than the model's context of ",
                    dec->context_length()));
  const MemorySpec spec = parse_memory(policy, budget, dec->n_layer());
  CacheOptions opt;
  opt.max_tokens = longest;
  // Bounded: one forward appends at most a chunk of context, the question, or (compress=context) question and
  // answer while frozen.
  opt.max_new = std::max(batch, max_q + max_new);
  auto cache = make_cache(spec, *dec, opt);
  auto* bounded = dynamic_cast<BoundedKvCache*>(cache.get());
  const int32_t eos = int32_t(dec->eos_token_id());
  const int32_t im_end = tasks::qa_stop_token(*tok, qt);

  const int64_t V = dec->vocab_size();
  std::vector<float> logits(static_cast<size_t>(V));  // (V)
  double prefill_s = 0, answer_s = 0;
  int64_t prefill_tokens = 0, answer_tokens = 0, correct = 0;
  Json answers = Json::array();
  for (size_t r = 0; r < records.size(); ++r) {
    cache->reset();
    const std::vector<int32_t>& c = ctx_ids[r];
    const std::vector<int32_t>& q = q_ids[r];
    int64_t t = 0;
    auto feed = [&](const int32_t* ids, int64_t n, bool all_rows) {
      dec->forward(ids, n, cache_position(*cache, t), *cache, logits.data(), false,
                   bounded ? bounded->observer_for(all_rows) : nullptr);
      t += n;
    };
    Timer pt;
    for (int64_t i = 0; i < int64_t(c.size()); i += chunk) feed(c.data() + i, std::min<int64_t>(chunk, int64_t(c.size()) - i), true);
    if (bounded && compress == "context") bounded->freeze(true);
    feed(q.data(), int64_t(q.size()), true);
    prefill_s += pt.seconds();
    prefill_tokens += int64_t(c.size() + q.size());
    Timer at;
    std::vector<int32_t> out;
    for (int64_t k = 0; k < max_new; ++k) {
      const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
      if (next == eos || next == im_end) break;
      out.push_back(next);
      if (k + 1 == max_new) break;
      feed(&next, 1, false);
    }
    answer_s += at.seconds();
    answer_tokens += int64_t(out.size());
    const std::string answer = tok->decode(out);
    const bool ok = tasks::qa_correct(answer, records[r].target);
    correct += ok;
    if (json) {
      Json a = Json::object();
      a["line"] = records[r].line;
      a["target"] = records[r].target;
      a["answer"] = answer;
      a["correct"] = ok;
      a["context_tokens"] = int64_t(c.size());
      answers.push_back(a);
    } else {
      std::fprintf(stderr, "\r%zu / %zu records, %lld correct", r + 1, records.size(), (long long)correct);
    }
  }
  if (!json) std::fprintf(stderr, "\n");
  const double acc = double(correct) / double(records.size());
  if (json) {
    Json j = Json::object();
    j["data"] = data;
    j["memory"] = spec.policy;
    j["budget"] = spec.full() ? Json() : Json(spec.budgets[0]);
    j["compress"] = compress;
    j["records"] = int64_t(records.size());
    j["correct"] = correct;
    j["accuracy"] = acc;
    j["threads"] = num_threads();
    j["prefill_seconds"] = prefill_s;
    j["prefill_tokens"] = prefill_tokens;
    j["answer_seconds"] = answer_s;
    j["answer_tokens"] = answer_tokens;
    j["answer_tokens_per_second"] = answer_s > 0 ? double(answer_tokens) / answer_s : 0.0;
    j["cache_bytes"] = bounded ? Json(int64_t(bounded->bytes())) : Json();
    j["peak_rss_bytes"] = peak_rss_bytes();
    j["load_seconds"] = load_timer.seconds();
    j["answers"] = answers;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("accuracy %.4f (%lld / %zu) with --memory %s%s; prefill %.1f tokens/s, answers %.1f tokens/s\n", acc,
                (long long)correct, records.size(), spec.policy.c_str(),
                spec.full() ? "" : cat(" --budget ", spec.budgets[0]).c_str(), double(prefill_tokens) / prefill_s,
                answer_s > 0 ? double(answer_tokens) / answer_s : 0.0);
  }
  return 0;
}

}  // namespace mnemo::cli
