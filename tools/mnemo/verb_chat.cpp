// mnemo chat --model FILE.gguf: talk to an instruct model in ChatML, the format SmolLM2 was tuned on:
//   <|im_start|>system\n...<|im_end|>\n<|im_start|>user\n...<|im_end|>\n<|im_start|>assistant\n
// Each user line from stdin (or the one --message) is appended to the conversation and the reply is generated
// until <|im_end|>; the KV cache holds the whole conversation (--ctx tokens, default 2,048), so earlier turns are
// not recomputed.
// --memory POLICY --budget K (memory/memory_spec.h) bounds the cache instead: each message is reduced to the
// budget after it is read (every query row shown to the policy), every reply token evicts, so memory stays constant
// however long the conversation; positions still count every token (up to --ctx) unless --reposition gives kept
// entries rolling positions within the cache (StreamingLLM), which lets the conversation run on without limit.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "base/error.h"
#include "base/json.h"
#include "base/rng.h"
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
    R"(usage: mnemo chat --model PATH [--message TEXT] [options]
  --model PATH          a ChatML instruct model: GGUF file or HF directory (required)
  --message TEXT        one exchange with this message, then exit (default: a message per stdin line)
  --system TEXT         system message ("" for none; default SmolLM2's)
  --max-tokens N        most tokens per reply (default 256)
  --ctx N               positions the conversation may take (default 2048)
  --temperature T       0 = greedy (default); > 0 samples from softmax(logits / T)
  --seed N              sampling seed (default 0)
  --memory POLICY       KV cache: full (default), window, sink[:S], h2o[:R], tova or sink[:S]+P
  --budget K[,K...]     entries a bounded cache keeps per layer (one value, or one per layer)
  --reposition          rolling positions in a bounded cache (StreamingLLM): no --ctx limit
  --fp32-decode         decode with fp32 activations (default int8: about 2x faster)
  --json                the reply and speeds as one JSON object (needs --message)
)";

class Conversation {
 public:
  // ctx: most positions (0 = no limit: a re-positioning cache).
  Conversation(Decoder& dec, const Tokenizer& tok, std::unique_ptr<KvCache> cache, int64_t ctx)
      : dec_(dec), tok_(tok), cache_(std::move(cache)), bounded_(dynamic_cast<BoundedKvCache*>(cache_.get())),
        ctx_(ctx), logits_(static_cast<size_t>(dec.vocab_size())) {
    start_ = tok.special_id("<|im_start|>");
    end_ = tok.special_id("<|im_end|>");
    if (start_ < 0 || end_ < 0) throw Error("the model's vocabulary has no <|im_start|> / <|im_end|> (not ChatML)");
  }

  // Append a whole message.
  void message(const std::string& role, const std::string& text) {
    std::vector<int32_t> ids{start_};
    auto body = tok_.encode(role + "\n" + text);
    ids.insert(ids.end(), body.begin(), body.end());
    ids.push_back(end_);
    auto nl = tok_.encode("\n");
    ids.insert(ids.end(), nl.begin(), nl.end());
    feed(ids);
  }

  // Tokens read and written so far, and entries the cache holds now (per layer).
  int64_t tokens() const { return pos_; }
  int64_t held() const { return cache_->size(0); }

  // Open the assistant's turn and generate its reply (streamed to `out` when non-null).
  std::string reply(int64_t max_tokens, double temperature, Rng& rng, FILE* out, int64_t* generated,
                    double* seconds) {
    std::vector<int32_t> head{start_};
    auto a = tok_.encode("assistant\n");
    head.insert(head.end(), a.begin(), a.end());
    feed(head);
    std::vector<int32_t> got;
    Timer t;
    const int64_t V = dec_.vocab_size();
    while (int64_t(got.size()) < max_tokens) {
      int32_t next = sample(temperature, rng, V);
      if (next == end_ || next == dec_.eos_token_id()) break;
      got.push_back(next);
      if (out) {
        std::fprintf(out, "%s", tok_.decode({next}).c_str());
        std::fflush(out);
      }
      feed({next});
    }
    *seconds = t.seconds();
    *generated = int64_t(got.size());
    // Close the turn as the template does, so the next one follows a well-formed conversation.
    std::vector<int32_t> tail{end_};
    auto nl = tok_.encode("\n");
    tail.insert(tail.end(), nl.begin(), nl.end());
    feed(tail);
    return tok_.decode(got);
  }

 private:
  void feed(const std::vector<int32_t>& ids) {
    if (ctx_ > 0 && pos_ + int64_t(ids.size()) > ctx_)
      throw Error(cat("the conversation outgrew --ctx ", ctx_, " tokens (start a new one, raise --ctx",
                      bounded_ ? ", or --reposition)" : ", or bound the cache: --memory P --budget K --reposition)"));
    for (size_t b = 0; b < ids.size(); b += size_t(dec_.max_batch())) {
      const int64_t m = std::min<int64_t>(dec_.max_batch(), int64_t(ids.size() - b));
      // A message: a policy that reads every row sees them all, once.
      dec_.forward(ids.data() + b, m, cache_position(*cache_, pos_), *cache_, logits_.data(), false,
                   bounded_ ? bounded_->observer_for(m > 1) : nullptr);
      pos_ += m;
    }
  }
  int32_t sample(double temperature, Rng& rng, int64_t V) {
    const float* l = logits_.data();
    if (temperature <= 0) return int32_t(std::max_element(l, l + V) - l);
    double mx = *std::max_element(l, l + V), sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp((l[v] - mx) / temperature);
    double u = rng.uniform() * sum;
    for (int64_t v = 0; v < V; ++v)
      if ((u -= std::exp((l[v] - mx) / temperature)) <= 0) return int32_t(v);
    return int32_t(V - 1);
  }

  Decoder& dec_;
  const Tokenizer& tok_;
  std::unique_ptr<KvCache> cache_;
  BoundedKvCache* bounded_;  // cache_ when bounded, else null
  int64_t ctx_, pos_ = 0;
  std::vector<float> logits_;  // (V)
  int32_t start_, end_;
};

int run(cli::Args& args) {
  cli::common_flags(args);
  const std::string model = args.require("--model");
  const std::string system =
      args.get_or("--system", "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  const auto message = args.get("--message");
  const int64_t max_tokens = args.get_int("--max-tokens", 256);
  const int64_t ctx = args.get_int("--ctx", 2048);
  const double temperature = args.get_double("--temperature", 0.0);
  const uint64_t seed = uint64_t(args.get_int("--seed", 0));
  const bool json = args.flag("--json");
  // Decode steps multiply the quantized weights by 8-bit activations (llama.cpp's scheme, about 2x faster here);
  // --fp32-decode keeps them fp32, as transformers computes (docs/llama.md, "Exactness").
  set_int8_decode(!args.flag("--fp32-decode"));
  const std::string memory = args.get_or("--memory", "full");
  const std::string budget = args.get_or("--budget", "");
  const bool reposition = args.flag("--reposition");
  args.finish();
  if (json && !message) throw Error("--json needs --message (one exchange)");
  auto tok = lm::tokenizer_for(model);
  auto dec = load_decoder(model, 512, ctx);
  if (ctx <= 0 || ctx > dec->context_length())
    throw Error(cat("--ctx must be in [1, ", dec->context_length(), "], got ", ctx));
  const MemorySpec spec = parse_memory(memory, budget, dec->n_layer());
  if (!spec.full()) {  // the runner attends over up to the budget plus one message chunk
    const int64_t most = *std::max_element(spec.budgets.begin(), spec.budgets.end()) + dec->max_batch();
    if (most > ctx) dec = load_decoder(model, 512, most);
  }
  CacheOptions copt;
  copt.max_tokens = reposition ? 0 : ctx, copt.max_new = dec->max_batch(), copt.reposition = reposition;
  Conversation conv(*dec, *tok, make_cache(spec, *dec, copt), reposition ? 0 : ctx);
  Rng rng(seed);
  if (!system.empty()) conv.message("system", system);
  int64_t n = 0;
  double secs = 0;
  if (message) {
    conv.message("user", *message);
    std::string r = conv.reply(max_tokens, temperature, rng, json ? nullptr : stdout, &n, &secs);
    if (json) {
      Json j = Json::object();
      j["reply"] = r;
      j["tokens"] = n;
      j["conversation_tokens"] = conv.tokens();
      j["cache_entries"] = conv.held();
      j["decode_tokens_per_second"] = secs > 0 ? double(n) / secs : 0.0;
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("\n");
    }
    return 0;
  }
  std::string line;
  std::fprintf(stderr, "(one message per line; end with Ctrl-D)\n> ");
  while (std::getline(std::cin, line)) {
    if (line.empty()) {
      std::fprintf(stderr, "> ");
      continue;
    }
    conv.message("user", line);
    conv.reply(max_tokens, temperature, rng, stdout, &n, &secs);
    std::printf("\n");
    std::fprintf(stderr, "[%lld tokens, %.1f tokens/s; conversation %lld tokens, cache %lld entries]\n> ",
                 (long long)n, secs > 0 ? double(n) / secs : 0.0, (long long)conv.tokens(), (long long)conv.held());
  }
  return 0;
}

MNEMO_VERB("chat", "chat with an instruct model in ChatML (<|im_start|>role ... <|im_end|>)", run, kUsage);

}  // namespace
