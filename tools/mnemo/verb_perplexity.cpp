// mnemo perplexity: the language-model loss of a text (or of token ids) under a decoder — a Llama from a GGUF file
// or an HF directory, or GPT-2 from an HF directory.
//
// The ids are cut into windows of --ctx tokens (default: the model's context, at most 2,048); the cache starts
// empty in each window and every token after a window's first is predicted from the ones before it in the
// window. Reported: {"tokens": scored tokens, "nll": their summed negative log-likelihood (nats), "ppl": e^(nll /
// tokens)}. Logits are computed --batch tokens at a time, so memory is the model, the cache and batch x vocabulary
// floats, never context x vocabulary.
//
// --memory POLICY --budget K (memory/memory_spec.h): the cache keeps at most K entries per layer and the text is
// decoded token by token (each token sees only what the policy kept); with a budget >= the window the result equals
// the full cache exactly. --reposition (a bounded cache only) gives kept keys rolling positions within the cache, as
// StreamingLLM does, so one window may run past the model's context (--ctx up to the whole input).
#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "base/json.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "cli.h"
#include "io/llama_loader.h"
#include "io/safetensors.h"
#include "lm_common.h"
#include "memory/bounded_kv_cache.h"
#include "memory/make_cache.h"

namespace {

using namespace mnemo;

int run(cli::Args& args) {
  cli::common_flags(args);
  const std::string model = args.require("--model");
  const bool json = args.flag("--json");
  const int64_t ctx_flag = args.get_int("--ctx", 0);
  const int64_t batch = args.get_int("--batch", 128);
  const auto save_logits = args.get("--save-logits");
  const std::string memory = args.get_or("--memory", "full");
  const std::string budget = args.get_or("--budget", "");
  const bool reposition = args.flag("--reposition");
  std::unique_ptr<Tokenizer> tok;
  std::vector<int32_t> ids = lm::read_input_ids(args, model, false, &tok);
  args.finish();
  if (batch <= 0) throw Error(cat("--batch must be positive, got ", batch));
  if (ids.size() < 2) throw Error(cat("perplexity needs at least 2 tokens, got ", ids.size()));

  Timer load_timer;
  auto dec = load_decoder(model, batch);
  const double load_s = load_timer.seconds();
  const MemorySpec spec = parse_memory(memory, budget, dec->n_layer());
  int64_t ctx = ctx_flag ? ctx_flag : reposition ? int64_t(ids.size()) : std::min<int64_t>(dec->context_length(), 2048);
  const int64_t ctx_max = reposition ? int64_t(ids.size()) : dec->context_length();  // rolling positions: no limit
  if (ctx < 2 || ctx > std::max<int64_t>(ctx_max, 2)) throw Error(cat("--ctx must be in [2, ", ctx_max, "], got ", ctx));
  const int64_t n = int64_t(ids.size()), V = dec->vocab_size();
  if (save_logits && n > ctx) throw Error(cat("--save-logits needs the input in one window (", n, " > --ctx ", ctx, ")"));
  for (int32_t id : ids)
    if (id >= V) throw Error(cat("token id ", id, " outside the vocabulary of ", V));

  CacheOptions copt;
  copt.max_tokens = ctx, copt.reposition = reposition;
  auto cache = make_cache(spec, *dec, copt);
  // A bounded cache is read token by token: a token of a batch would see the batch's other entries too.
  const int64_t B = spec.full() ? std::min(batch, dec->max_batch()) : 1;
  std::vector<float> logits(size_t(B * V));  // (B, V)
  std::vector<float> all;                     // (n, V) only for --save-logits
  if (save_logits) all.resize(size_t(n * V));
  std::vector<double> row_nll(static_cast<size_t>(B));
  double total = 0.0;
  int64_t scored = 0;
  Timer t;
  for (int64_t w0 = 0; w0 < n; w0 += ctx) {
    const int64_t w1 = std::min(n, w0 + ctx);
    cache->reset();
    for (int64_t b0 = w0; b0 < w1; b0 += B) {
      const int64_t m = std::min(B, w1 - b0);
      dec->forward(ids.data() + b0, m, cache_position(*cache, b0 - w0), *cache, logits.data(), true);
      if (save_logits) std::copy(logits.begin(), logits.begin() + m * V, all.begin() + (b0 - w0) * V);
      // Row i predicts ids[b0 + i + 1] when that token is in the window. Rows in parallel, summed in order.
      const int64_t rows = std::min(m, w1 - 1 - b0);
      parallel_for(rows, [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0; i < r1; ++i) row_nll[size_t(i)] = lm::nll(logits.data() + i * V, V, ids[size_t(b0 + i + 1)]);
      });
      for (int64_t i = 0; i < rows; ++i) total += row_nll[size_t(i)];
      scored += std::max<int64_t>(rows, 0);
    }
    if (!json) std::fprintf(stderr, "\r%lld / %lld tokens", (long long)w1, (long long)n);
  }
  const double secs = t.seconds();
  if (!json) std::fprintf(stderr, "\n");
  if (save_logits) {
    Tensor lt = Tensor::borrow({n, V}, all.data(), nullptr);
    save_safetensors(*save_logits, {SafetensorsItem("logits", lt)});
  }
  const double ppl = std::exp(total / double(scored));
  if (json) {
    Json j = Json::object();
    j["tokens"] = scored;
    j["nll"] = total;
    j["ppl"] = ppl;
    j["ctx"] = ctx;
    j["windows"] = (n + ctx - 1) / ctx;
    j["memory"] = spec.policy;
    j["budget"] = spec.full() ? Json() : Json(spec.budgets[0]);
    if (auto* b = dynamic_cast<BoundedKvCache*>(cache.get())) j["cache_bytes"] = int64_t(b->bytes());
    j["threads"] = num_threads();
    j["seconds"] = secs;
    j["load_seconds"] = load_s;
    j["tokens_per_second"] = double(n) / secs;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("perplexity %.4f over %lld tokens (nll %.4f nats/token; %.1f tokens/s)\n", ppl, (long long)scored,
                total / double(scored), double(n) / secs);
  }
  return 0;
}

MNEMO_VERB("perplexity", "language-model perplexity of a text or ids under a decoder (GGUF or HF directory)", run);

}  // namespace
