// mnemo generate: continue a prompt with a decoder (Llama from GGUF or an HF directory, GPT-2 from a directory).
// Greedy by default; --temperature T > 0 samples from softmax(logits / T), restricted to the --top-k most likely
// tokens when given, with --seed. The prompt is run as one batch (prefill), then one token per step over the KV
// cache; the cache is sized once for prompt + --max-tokens, so the decode loop allocates nothing.
// --memory POLICY --budget K [--reposition] (memory/memory_spec.h): a bounded KV cache; the prompt is reduced to the
// budget after each prefill batch (every query row shown to the policy), then every decode step evicts.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "base/error.h"
#include "base/json.h"
#include "base/rng.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "cli.h"
#include "io/llama_loader.h"
#include "lm_common.h"
#include "memory/bounded_kv_cache.h"
#include "memory/make_cache.h"
#include "tensor/quant.h"

namespace {

using namespace mnemo;

constexpr const char* kUsage =
    R"(usage: mnemo generate --model PATH (--prompt TEXT | --text FILE | --ids FILE.json) [options]
  --model PATH          decoder: GGUF file or HF directory (Llama or GPT-2) (required)
  --prompt TEXT         the prompt; or --text FILE (UTF-8), or --ids FILE.json (a JSON array of ids)
  --text FILE
  --ids FILE.json
  --max-tokens N        most new tokens (default 64)
  --temperature T       0 = greedy (default); > 0 samples from softmax(logits / T)
  --top-k K             sample among the K likeliest tokens (default 0: all)
  --seed N              sampling seed (default 0)
  --ignore-eos          go on past the end-of-sequence token
  --memory POLICY       KV cache: full (default), window, sink[:S], h2o[:R], tova or sink[:S]+P
  --budget K[,K...]     entries a bounded cache keeps per layer (one value, or one per layer)
  --reposition          rolling positions in a bounded cache (StreamingLLM): may run past the context
  --fp32-decode         decode with fp32 activations (default int8: about 2x faster)
  --json                ids, text and speeds as one JSON object
)";

// The next token from logits (V): argmax when temperature is 0, else a draw (top_k 0 = all tokens). idx (V) is
// scratch.
int32_t pick(const float* logits, int64_t V, double temperature, int64_t top_k, Rng& rng, std::vector<int32_t>& idx) {
  if (temperature <= 0) return int32_t(std::max_element(logits, logits + V) - logits);
  std::iota(idx.begin(), idx.end(), 0);
  int64_t k = top_k > 0 ? std::min(top_k, V) : V;
  if (k < V)
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
  double mx = -INFINITY;
  for (int64_t i = 0; i < k; ++i) mx = std::max(mx, double(logits[idx[size_t(i)]]));
  double sum = 0;
  for (int64_t i = 0; i < k; ++i) sum += std::exp((double(logits[idx[size_t(i)]]) - mx) / temperature);
  double u = rng.uniform() * sum;
  for (int64_t i = 0; i < k; ++i) {
    u -= std::exp((double(logits[idx[size_t(i)]]) - mx) / temperature);
    if (u <= 0) return idx[size_t(i)];
  }
  return idx[size_t(k - 1)];
}

int run(cli::Args& args) {
  cli::common_flags(args);
  const std::string model = args.require("--model");
  const bool json = args.flag("--json");
  const int64_t max_tokens = args.get_int("--max-tokens", 64);
  const double temperature = args.get_double("--temperature", 0.0);
  const int64_t top_k = args.get_int("--top-k", 0);
  const uint64_t seed = uint64_t(args.get_int("--seed", 0));
  const bool ignore_eos = args.flag("--ignore-eos");
  const std::string memory = args.get_or("--memory", "full");
  const std::string budget = args.get_or("--budget", "");
  const bool reposition = args.flag("--reposition");
  // Decode steps multiply the quantized weights by 8-bit activations (llama.cpp's scheme, about 2x faster here);
  // --fp32-decode keeps them fp32, as transformers computes (docs/llama.md, "Exactness").
  set_int8_decode(!args.flag("--fp32-decode"));
  std::unique_ptr<Tokenizer> tok;
  std::vector<int32_t> ids = lm::read_input_ids(args, model, true, &tok);
  args.finish();
  if (ids.empty()) throw Error("the prompt is empty");
  if (max_tokens < 0) throw Error(cat("--max-tokens must be >= 0, got ", max_tokens));
  if (temperature < 0) throw Error(cat("--temperature must be >= 0, got ", temperature));

  const int64_t P = int64_t(ids.size()), total = P + max_tokens;
  auto dec = load_decoder(model, std::min<int64_t>(P, 512), total);
  const int64_t V = dec->vocab_size();
  const MemorySpec spec = parse_memory(memory, budget, dec->n_layer());
  if (total > dec->context_length() && !reposition)
    throw Error(cat("prompt (", P, ") + --max-tokens (", max_tokens, ") exceeds the model's context of ",
                    dec->context_length()));
  for (int32_t id : ids)
    if (id >= V) throw Error(cat("token id ", id, " outside the vocabulary of ", V));
  CacheOptions copt;
  copt.max_tokens = total, copt.max_new = dec->max_batch(), copt.reposition = reposition;
  auto cache = make_cache(spec, *dec, copt);
  auto* bounded = dynamic_cast<BoundedKvCache*>(cache.get());
  std::vector<float> logits(static_cast<size_t>(V));
  std::vector<int32_t> idx(static_cast<size_t>(V));
  Rng rng(seed);
  const int64_t eos = ignore_eos ? -1 : dec->eos_token_id();

  Timer tp;
  for (int64_t b0 = 0; b0 < P; b0 += dec->max_batch()) {
    const int64_t m = std::min(dec->max_batch(), P - b0);
    dec->forward(ids.data() + b0, m, cache_position(*cache, b0), *cache, logits.data(), false,
                 bounded ? bounded->observer_for(true) : nullptr);
  }
  if (bounded) bounded->observer_for(false);  // decoding: one row a step, through the cache's observe()
  const double prefill_s = tp.seconds();
  std::vector<int32_t> out;
  Timer td;
  for (int64_t i = 0; i < max_tokens; ++i) {
    int32_t next = pick(logits.data(), V, temperature, top_k, rng, idx);
    out.push_back(next);
    if (!json && tok) {
      std::printf("%s", tok->decode({next}).c_str());
      std::fflush(stdout);
    }
    if (next == eos || i + 1 == max_tokens) break;
    dec->forward(&next, 1, cache_position(*cache, P + i), *cache, logits.data(), false);
  }
  const double decode_s = td.seconds();
  // Decode steps run = generated tokens - 1 (the first comes from the prefill's logits).
  const double decode_tps = out.size() > 1 ? double(out.size() - 1) / decode_s : 0.0;
  if (json) {
    Json j = Json::object();
    Json a = Json::array();
    for (int32_t x : out) a.push_back(Json(int64_t(x)));
    j["ids"] = a;
    if (tok) j["text"] = tok->decode(out);
    j["prompt_tokens"] = P;
    j["generated"] = int64_t(out.size());
    j["threads"] = num_threads();
    j["prefill_seconds"] = prefill_s;
    j["prefill_tokens_per_second"] = double(P) / prefill_s;
    j["decode_tokens_per_second"] = decode_tps;
    std::printf("%s\n", j.dump().c_str());
  } else {
    if (!tok) {
      for (int32_t x : out) std::printf("%d ", x);
    }
    std::printf("\n");
    std::fprintf(stderr, "prompt %lld tokens (%.1f tokens/s), generated %zu (%.1f tokens/s)\n", (long long)P,
                 double(P) / prefill_s, out.size(), decode_tps);
  }
  return 0;
}

MNEMO_VERB("generate", "continue a prompt with a decoder (GGUF or HF directory): greedy or sampled", run, kUsage);

}  // namespace
