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
#include <cctype>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "cli.h"
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

}  // namespace

int run_eval_stream(Args& args);

int run_eval_stream(Args& args) {
  common_flags(args);
  const std::string model_path = args.require("--model");
  const std::string ids_path = args.require("--ids");
  const std::string policy = args.get_or("--memory", "full");
  const std::string budget = args.get_or("--budget", "");
  const bool reposition = args.flag("--reposition");
  const auto tok_path = args.get("--tokenizer");
  const int64_t every = args.get_int("--every", 1000);
  const int64_t limit = args.get_int("--limit", 0);
  const bool json = args.flag("--json");
  args.finish();
  if (every <= 0) throw Error(cat("--every must be positive, got ", every));

  std::vector<int32_t> ids;
  {
    Json j = Json::parse(read_file(ids_path), ids_path);
    if (!j.is_array()) throw Error(cat(ids_path, ": expected a JSON array of token ids"));
    for (const Json& v : j.as_array()) ids.push_back(int32_t(v.as_int(cat(ids_path, ": token id"))));
  }
  if (limit > 0 && int64_t(ids.size()) > limit) ids.resize(size_t(limit));
  if (ids.size() < 2) throw Error(cat(ids_path, ": needs at least 2 tokens"));
  auto dec = load_decoder(model_path, 1);
  const int64_t n = int64_t(ids.size()), V = dec->vocab_size();
  for (int32_t id : ids)
    if (id < 0 || id >= V) throw Error(cat(ids_path, ": token id ", id, " outside the vocabulary of ", V));
  const MemorySpec spec = parse_memory(policy, budget, dec->n_layer());
  if (spec.full() && n > dec->context_length())
    throw Error(cat(ids_path, ": ", n, " tokens, more than the context of ", dec->context_length(),
                    " (a full cache cannot stream; use a policy with --reposition)"));
  CacheOptions opt;
  opt.max_tokens = n, opt.reposition = reposition;
  auto cache = make_cache(spec, *dec, opt);
  auto* bounded = dynamic_cast<BoundedKvCache*>(cache.get());
  std::vector<int> kind(size_t(n), -1);
  if (tok_path) {
    auto tok = load_any_tokenizer(*tok_path);
    for (int64_t i = 0; i < n; ++i) kind[size_t(i)] = kind_of(tok->decode({ids[size_t(i)]}));
  }

  std::vector<float> logits(static_cast<size_t>(V));  // (V)
  Json curve = Json::array();
  double total = 0.0, chunk_nll = 0.0;
  int64_t chunk_tokens = 0;
  double kept_old[5] = {0}, seen_old[5] = {0}, recent = 0, held = 0;
  Timer timer;
  Timer chunk_timer;
  for (int64_t t = 0; t + 1 < n; ++t) {
    dec->forward(&ids[size_t(t)], 1, cache_position(*cache, t), *cache, logits.data(), false);
    const double l = nll(logits.data(), V, ids[size_t(t + 1)]);
    total += l, chunk_nll += l, ++chunk_tokens;
    if ((t + 1) % every == 0 || t + 2 == n) {
      Json c = Json::object();
      c["tokens"] = t + 1;
      c["ppl"] = std::exp(chunk_nll / double(chunk_tokens));
      c["rss_bytes"] = current_rss_bytes();
      c["tokens_per_second"] = double(chunk_tokens) / chunk_timer.seconds();
      if (bounded) {
        // Which tokens are held now, over every layer and kv head.
        const int64_t B = bounded->budget(0), Hkv = dec->n_kv_head();
        int64_t first = 0, slots = 0;
        std::vector<int64_t> count(size_t(t + 1));
        for (int layer = 0; layer < dec->n_layer(); ++layer)
          for (int64_t h = 0; h < Hkv; ++h) {
            const int64_t* org = bounded->origins(layer, h);
            const int64_t m = cache->size(layer);
            ++slots;
            for (int64_t i = 0; i < m; ++i) {
              first += org[i] == 0;
              recent += org[i] > t - B / 2;
              held += 1;
              ++count[size_t(org[i])];
            }
          }
        c["first_token_kept"] = double(first) / double(slots);
        if (tok_path)
          for (int64_t o = 0; o + B <= t; ++o) {  // tokens older than the budget
            seen_old[kind[size_t(o)]] += double(slots);
            kept_old[kind[size_t(o)]] += double(count[size_t(o)]);
          }
      }
      curve.push_back(c);
      if (!json)
        std::fprintf(stderr, "\r%lld / %lld tokens, chunk ppl %.3f", (long long)(t + 1), (long long)n,
                     std::exp(chunk_nll / double(chunk_tokens)));
      chunk_nll = 0, chunk_tokens = 0;
      chunk_timer.reset();
    }
  }
  const double secs = timer.seconds();
  if (!json) std::fprintf(stderr, "\n");
  Json j = Json::object();
  j["ids"] = ids_path;
  j["memory"] = spec.policy;
  j["budget"] = spec.full() ? Json() : Json(spec.budgets[0]);
  j["reposition"] = reposition;
  j["tokens"] = n - 1;
  j["ppl"] = std::exp(total / double(n - 1));
  j["seconds"] = secs;
  j["tokens_per_second"] = double(n - 1) / secs;
  j["threads"] = num_threads();
  j["peak_rss_bytes"] = peak_rss_bytes();
  if (bounded) {
    j["cache_bytes"] = int64_t(bounded->bytes());
    j["recent_share"] = held > 0 ? recent / held : 0.0;
    if (tok_path) {
      Json k = Json::object();
      for (int i = 0; i < 5; ++i) k[kKinds[i]] = seen_old[i] > 0 ? kept_old[i] / seen_old[i] : 0.0;
      j["kept_by_kind"] = k;
    }
  }
  j["curve"] = curve;
  if (json) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("perplexity %.4f over %lld tokens with --memory %s, %.1f tokens/s, peak RSS %.1f MiB\n",
                std::exp(total / double(n - 1)), (long long)(n - 1), spec.policy.c_str(), double(n - 1) / secs,
                double(peak_rss_bytes()) / (1 << 20));
  }
  return 0;
}

}  // namespace mnemo::cli
