// mnemo eval stream: a decoder reads a long token stream once, token by token, with a KV-cache policy at a budget
// (optionally re-positioned, StreamingLLM-style, so the stream may be far longer than the trained context):
// perplexity per chunk of --every tokens, the process's resident memory and the cache's allocation along the way,
// decode speed, and which tokens the policy keeps (docs/kvcache.md):
//   first_token_kept   share of (layer, kv head) slots still holding the stream's first token, per chunk
//   recent_share       share of held entries among the newest budget/2 tokens
//   kept_by_kind       for tokens older than the budget (a window would have dropped them), the share still held,
//                      by kind of token: newline, punctuation, number, capitalized word (names, sentence starts),
//                      lower-case word — averaged over layers, kv heads and the chunk ends
// --ids FILE (a JSON array of ids, e.g. from bench/kvcache_ids.py); --tokenizer PATH names the kinds.
// --memory takes a comma-separated list of runs POLICY[@K] (K overrides --budget): they read the same stream
// together, each with its own cache, one decode step for all (each weight read once per token), and the JSON holds
// {"runs": [...]} with one object per run (a single run: that object itself). --chunks FILE.jsonl appends each
// run's chunk line as soon as it is measured (a long run shows its curve while it goes).
#include <cctype>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "cli.h"
#include "eval_verbs.h"
#include "io/gguf_tokenizer.h"
#include "io/llama_loader.h"
#include "memory/bounded_kv_cache.h"
#include "memory/make_cache.h"

namespace mnemo::cli {
namespace {

const char* kKinds[] = {"newline", "punctuation", "number", "capitalized", "word"};

int kind_of(const std::string& piece) {
  std::string s;
  for (char c : piece)
    if (c != ' ') s += c;
  if (s.empty() || s.find('\n') != std::string::npos) return 0;
  const unsigned char c = static_cast<unsigned char>(s[0]);
  if (std::isdigit(c)) return 2;
  if (std::isupper(c)) return 3;
  if (std::isalpha(c) || c >= 0x80) return 4;
  return 1;
}

double nll(const float* logits, int64_t V, int32_t target) {
  double mx = -INFINITY, sum = 0.0;
  for (int64_t v = 0; v < V; ++v) mx = std::max(mx, double(logits[v]));
  for (int64_t v = 0; v < V; ++v) sum += std::exp(double(logits[v]) - mx);
  return mx + std::log(sum) - double(logits[target]);
}

// One policy reading the stream.
struct Run {
  MemorySpec spec;
  std::unique_ptr<KvCache> cache;
  BoundedKvCache* bounded = nullptr;  // cache, when bounded
  Json curve = Json::array();
  double total = 0.0, chunk_nll = 0.0;
  double kept_old[5] = {0}, seen_old[5] = {0}, recent = 0, held = 0;  // retention sums over chunk ends
};

// A chunk ending at token t: resident memory, and (bounded) which tokens the run's cache holds now, over every
// layer and kv head; adds to the run's retention sums.
Json chunk_stats(Run& run, const Decoder& dec, const std::vector<int>& kind, int64_t t, bool kinds) {
  Json c = Json::object();
  c["tokens"] = t + 1;
  c["rss_bytes"] = current_rss_bytes();
  if (!run.bounded) return c;
  const int64_t B = run.bounded->budget(0), Hkv = dec.n_kv_head();
  int64_t first = 0, slots = 0;
  std::vector<int64_t> count(size_t(t + 1));
  for (int layer = 0; layer < dec.n_layer(); ++layer)
    for (int64_t h = 0; h < Hkv; ++h) {
      const int64_t* org = run.bounded->origins(layer, h);
      const int64_t m = run.cache->size(layer);
      ++slots;
      for (int64_t i = 0; i < m; ++i) {
        first += org[i] == 0;
        run.recent += org[i] > t - B / 2;
        run.held += 1;
        ++count[size_t(org[i])];
      }
    }
  c["first_token_kept"] = double(first) / double(slots);
  if (kinds)
    for (int64_t o = 0; o + B <= t; ++o) {  // tokens older than the budget
      run.seen_old[kind[size_t(o)]] += double(slots);
      run.kept_old[kind[size_t(o)]] += double(count[size_t(o)]);
    }
  return c;
}

}  // namespace

const char kEvalStreamUsage[] =
    R"(usage: mnemo eval stream --model PATH --ids FILE.json [--memory P[@K],... --budget K] [options]
  --model PATH          decoder: GGUF file or HF directory (required)
  --ids FILE.json       the stream, a JSON array of token ids (required)
  --memory P[@K],...    runs reading the stream together, one per KV-cache policy (default full); K: its budget
  --budget K[,K...]     entries a bounded cache keeps per layer (for runs without @K)
  --reposition          rolling positions in the bounded runs (StreamingLLM): may run past the context
  --every N             tokens per chunk of the curve (default 1000)
  --limit N             the first N tokens only (default all)
  --tokenizer PATH      names the kinds of kept tokens (kept_by_kind)
  --chunks FILE.jsonl   append each chunk's line as soon as it is measured
  --json                one JSON object ({"runs": [...]} for several runs)
)";

int run_eval_stream(Args& args) {
  common_flags(args);
  const std::string model_path = args.require("--model");
  const std::string ids_path = args.require("--ids");
  const std::string policies = args.get_or("--memory", "full");
  const std::string budget = args.get_or("--budget", "");
  const bool reposition = args.flag("--reposition");
  const auto tok_path = args.get("--tokenizer");
  const auto chunks_path = args.get("--chunks");
  const int64_t every = args.get_int("--every", 1000);
  const int64_t limit = args.get_int("--limit", 0);
  const bool json = args.flag("--json");
  args.finish();
  if (every <= 0) throw Error(cat("--every must be positive, got ", every));
  if (limit < 0) throw Error(cat("--limit must be non-negative, got ", limit));

  std::vector<std::pair<std::string, std::string>> wanted;  // (policy, budget) per run
  for (size_t at = 0; at <= policies.size();) {
    size_t comma = std::min(policies.find(',', at), policies.size());
    const std::string item = policies.substr(at, comma - at);
    const size_t sep = item.find('@');
    if (item.empty() || sep == 0) throw Error(cat("--memory ", policies, ": empty policy name"));
    wanted.emplace_back(item.substr(0, sep), sep == std::string::npos ? budget : item.substr(sep + 1));
    at = comma + 1;
  }
  // --reposition applies to the bounded runs (a full run beside them is the baseline); with none it would do
  // nothing, which generate, chat and perplexity refuse too.
  bool any_bounded = false;
  for (const auto& w : wanted) any_bounded = any_bounded || w.first != "full";
  if (reposition && !any_bounded)
    throw Error("--reposition: the full cache keeps absolute positions (give a bounded --memory policy)");

  std::vector<int32_t> ids;
  {
    Json j = Json::parse(read_file(ids_path), ids_path);
    if (!j.is_array()) throw Error(cat(ids_path, ": expected a JSON array of token ids"));
    for (const Json& v : j.as_array()) ids.push_back(int32_t(v.as_int(cat(ids_path, ": token id"))));
  }
  if (limit > 0 && int64_t(ids.size()) > limit) ids.resize(size_t(limit));
  if (ids.size() < 2) throw Error(cat(ids_path, ": needs at least 2 tokens"));
  auto dec = load_decoder(model_path, int64_t(wanted.size()));
  const int64_t n = int64_t(ids.size()), V = dec->vocab_size(), R = int64_t(wanted.size());
  for (int32_t id : ids)
    if (id < 0 || id >= V) throw Error(cat(ids_path, ": token id ", id, " outside the vocabulary of ", V));
  std::vector<Run> runs(static_cast<size_t>(R));
  std::vector<KvCache*> caches;
  for (int64_t r = 0; r < R; ++r) {
    Run& run = runs[size_t(r)];
    run.spec = parse_memory(wanted[size_t(r)].first, wanted[size_t(r)].second, dec->n_layer());
    if (run.spec.full() && n > dec->context_length())
      throw Error(cat(ids_path, ": ", n, " tokens, more than the context of ", dec->context_length(),
                      " (a full cache cannot stream; use a policy with --reposition)"));
    CacheOptions opt;
    opt.max_tokens = n, opt.reposition = reposition && !run.spec.full();
    run.cache = make_cache(run.spec, *dec, opt);
    run.bounded = dynamic_cast<BoundedKvCache*>(run.cache.get());
    caches.push_back(run.cache.get());
  }
  std::vector<int> kind(size_t(n), -1);
  if (tok_path) {
    auto tok = load_any_tokenizer(*tok_path);
    for (int64_t i = 0; i < n; ++i) kind[size_t(i)] = kind_of(tok->decode({ids[size_t(i)]}));
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> chunks(nullptr, &std::fclose);
  if (chunks_path) {
    chunks.reset(std::fopen(chunks_path->c_str(), "a"));
    if (!chunks) throw Error(cat("--chunks ", *chunks_path, ": cannot open for appending"));
  }

  std::vector<float> logits(size_t(R * V));  // (R, V)
  std::vector<int32_t> step_ids(static_cast<size_t>(R));
  std::vector<int64_t> pos(static_cast<size_t>(R));
  std::vector<double> step_nll(static_cast<size_t>(R));
  int64_t chunk_tokens = 0;
  Timer timer;
  Timer chunk_timer;
  for (int64_t t = 0; t + 1 < n; ++t) {
    for (int64_t r = 0; r < R; ++r)
      step_ids[size_t(r)] = ids[size_t(t)], pos[size_t(r)] = cache_position(*caches[size_t(r)], t);
    dec->decode_batch(step_ids.data(), pos.data(), caches.data(), R, logits.data());
    parallel_for(R, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) step_nll[size_t(r)] = nll(logits.data() + r * V, V, ids[size_t(t + 1)]);
    });
    for (int64_t r = 0; r < R; ++r) {
      runs[size_t(r)].total += step_nll[size_t(r)];
      runs[size_t(r)].chunk_nll += step_nll[size_t(r)];
    }
    ++chunk_tokens;
    if ((t + 1) % every == 0 || t + 2 == n) {
      const double chunk_s = chunk_timer.seconds();
      for (Run& run : runs) {
        Json c = chunk_stats(run, *dec, kind, t, tok_path.has_value());
        c["ppl"] = std::exp(run.chunk_nll / double(chunk_tokens));
        c["tokens_per_second"] = double(chunk_tokens) / chunk_s;
        if (chunks) {
          Json line = c;
          line["memory"] = run.spec.policy;
          line["budget"] = run.spec.full() ? Json() : Json(run.spec.budgets[0]);
          std::fprintf(chunks.get(), "%s\n", line.dump().c_str());
          std::fflush(chunks.get());
        }
        run.curve.push_back(c);
        run.chunk_nll = 0;
      }
      if (!json)
        std::fprintf(stderr, "\r%lld / %lld tokens, chunk ppl %.3f", (long long)(t + 1), (long long)n,
                     runs[0].curve.as_array().back().find("ppl")->as_number("ppl"));
      chunk_tokens = 0;
      chunk_timer.reset();
    }
  }
  const double secs = timer.seconds();
  if (!json) std::fprintf(stderr, "\n");
  Json all = Json::array();
  for (Run& run : runs) {
    Json j = Json::object();
    j["ids"] = ids_path;
    j["memory"] = run.spec.policy;
    j["budget"] = run.spec.full() ? Json() : Json(run.spec.budgets[0]);
    j["reposition"] = reposition && !run.spec.full();
    j["tokens"] = n - 1;
    j["ppl"] = std::exp(run.total / double(n - 1));
    j["seconds"] = secs;
    j["tokens_per_second"] = double(n - 1) / secs;
    j["threads"] = num_threads();
    j["peak_rss_bytes"] = peak_rss_bytes();
    if (run.bounded) {
      j["cache_bytes"] = int64_t(run.bounded->bytes());
      j["recent_share"] = run.held > 0 ? run.recent / run.held : 0.0;
      if (tok_path) {
        Json k = Json::object();
        for (int i = 0; i < 5; ++i) k[kKinds[i]] = run.seen_old[i] > 0 ? run.kept_old[i] / run.seen_old[i] : 0.0;
        j["kept_by_kind"] = k;
      }
    }
    j["curve"] = run.curve;
    if (!json)
      std::printf("perplexity %.4f over %lld tokens with --memory %s, %.1f tokens/s, peak RSS %.1f MiB\n",
                  std::exp(run.total / double(n - 1)), (long long)(n - 1), run.spec.policy.c_str(),
                  double(n - 1) / secs, double(peak_rss_bytes()) / (1 << 20));
    all.push_back(j);
  }
  if (json) {
    if (R == 1) {
      std::printf("%s\n", all.as_array()[0].dump().c_str());
    } else {
      Json j = Json::object();
      j["runs"] = all;
      std::printf("%s\n", j.dump().c_str());
    }
  }
  return 0;
}

}  // namespace mnemo::cli
