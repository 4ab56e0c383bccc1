// mnemo perplexity: the language-model loss of a text (or of token ids) under a decoder — a Llama from a GGUF file
// or an HF directory, or GPT-2 from an HF directory.
//
// Input: one document (--ids FILE, a JSON array of ids, or --text FILE), or several with --docs FILE.jsonl (one per
// line: {"text": ...} or {"ids": [...]}, with an optional "id" reported back; the corpus files are this format).
// --truncate N keeps only the first N tokens of each document. Each document is cut into windows of --ctx tokens
// (default: the model's context, at most 2,048); the cache starts empty in each window and every token after a
// window's first is predicted from the ones before it in the window. Reported: {"tokens": scored tokens, "nll":
// their summed negative log-likelihood (nats), "ppl": e^(nll / tokens)}, over all documents, and with --docs a
// "documents" array with the same three per document. Logits are computed --batch tokens at a time, so memory is
// the model, the cache and batch x vocabulary floats, never context x vocabulary.
//
// --memory POLICY --budget K (memory/memory_spec.h): the cache keeps at most K entries per layer and the text is
// decoded token by token (each token sees only what the policy kept); with a budget >= the window the result equals
// the full cache exactly. Windows are independent sequences, so --parallel P of them (default 8) decode together,
// each with its own cache: one step reads every weight matrix once for all P. A window's NLL then equals its
// decoding alone up to fp32 summation order. --reposition (a bounded cache only) gives kept keys rolling positions
// within the cache, as StreamingLLM does, so one window may run past the model's context (--ctx up to the whole
// input).
#include <cmath>
#include <cstdio>
#include <sstream>

#include "base/error.h"
#include "base/file.h"
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

constexpr const char* kUsage =
    R"(usage: mnemo perplexity --model PATH (--text FILE | --ids FILE.json | --docs FILE.jsonl) [options]
  --model PATH          decoder: GGUF file or HF directory (Llama or GPT-2) (required)
  --text FILE           one document: UTF-8 text; or --ids FILE.json (a JSON array of ids)
  --ids FILE.json
  --docs FILE.jsonl     documents, one a line: {"text": ...} or {"ids": [...]}, with an optional "id"
  --truncate N          first N tokens of each document (default all)
  --ctx N               tokens per window (default: the model's context up to 2048; --reposition: all)
  --batch N             tokens per forward with the full cache (default 128)
  --memory POLICY       KV cache: full (default), window, sink[:S], h2o[:R], tova or sink[:S]+P
  --budget K[,K...]     entries a bounded cache keeps per layer (one value, or one per layer)
  --parallel P          windows decoded together with a bounded cache (default 8)
  --reposition          rolling positions in a bounded cache (StreamingLLM): --ctx up to the whole input
  --save-logits FILE    every position's logits as safetensors (the input in one window)
  --json                one JSON object (with a "documents" array for --docs)
)";

struct Document {
  std::string id;
  std::vector<int32_t> ids;
};

// A window of a document: tokens [w0, w1) decoded as one sequence from an empty cache.
struct Window {
  size_t doc;
  int64_t w0, w1;
  double nll = 0.0;
  int64_t scored = 0;
};

// --docs FILE.jsonl: one document per non-empty line, {"text": ...} (encoded with the model's tokenizer) or
// {"ids": [...]}.
std::vector<Document> read_documents(const std::string& path, const std::string& model,
                                     std::unique_ptr<Tokenizer>* tok) {
  std::vector<Document> docs;
  std::istringstream in(read_file(path));
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    const std::string where = cat(path, ":", n);
    const Json d = Json::parse(line, where);
    if (!d.is_object()) throw Error(cat(where, ": expected a JSON object"));
    Document doc;
    doc.id = d.string_or("id", cat("line ", n));
    if (const Json* ids = d.find("ids")) {
      for (const Json& v : ids->as_array(where + ": ids")) {
        const int64_t id = v.as_int(where + ": ids");
        if (id < 0 || id > INT32_MAX) throw Error(cat(where, ": ", id, " is not a token id"));
        doc.ids.push_back(int32_t(id));
      }
    } else if (const Json* text = d.find("text")) {
      if (!*tok) *tok = lm::tokenizer_for(model);
      doc.ids = (*tok)->encode(text->as_string(where + ": text"));
    } else {
      throw Error(cat(where, ": no \"text\" or \"ids\" field"));
    }
    docs.push_back(std::move(doc));
  }
  if (docs.empty()) throw Error(cat(path, ": no documents"));
  return docs;
}

int run(cli::Args& args) {
  cli::common_flags(args);
  const std::string model = args.require("--model");
  const bool json = args.flag("--json");
  const int64_t ctx_flag = args.get_int("--ctx", 0);
  const int64_t batch = args.get_int("--batch", 128);
  const int64_t parallel = args.get_int("--parallel", 8);
  const int64_t truncate = args.get_int("--truncate", 0);
  const auto save_logits = args.get("--save-logits");
  const std::string memory = args.get_or("--memory", "full");
  const std::string budget = args.get_or("--budget", "");
  const bool reposition = args.flag("--reposition");
  const auto docs_file = args.get("--docs");
  std::unique_ptr<Tokenizer> tok;
  std::vector<Document> docs;
  if (docs_file) {
    if (args.get("--ids") || args.get("--text"))
      throw Error("give --docs FILE.jsonl or one of --ids / --text, not both");
    docs = read_documents(*docs_file, model, &tok);
  } else {
    docs.push_back({"", lm::read_input_ids(args, model, false, &tok)});
  }
  args.finish();
  if (batch <= 0) throw Error(cat("--batch must be positive, got ", batch));
  if (parallel <= 0) throw Error(cat("--parallel must be positive, got ", parallel));
  if (truncate < 0) throw Error(cat("--truncate must not be negative, got ", truncate));
  int64_t longest = 0, total_tokens = 0;
  for (Document& d : docs) {
    if (truncate > 0 && int64_t(d.ids.size()) > truncate) d.ids.resize(size_t(truncate));
    if (d.ids.size() < 2)
      throw Error(cat(docs_file ? cat(*docs_file, ": document ", d.id, ": ") : "",
                      "perplexity needs at least 2 tokens, got ", d.ids.size()));
    longest = std::max<int64_t>(longest, int64_t(d.ids.size()));
    total_tokens += int64_t(d.ids.size());
  }

  Timer load_timer;
  auto dec = load_decoder(model, std::max(batch, parallel));
  const double load_s = load_timer.seconds();
  const MemorySpec spec = parse_memory(memory, budget, dec->n_layer());
  int64_t ctx = ctx_flag ? ctx_flag : reposition ? longest : std::min<int64_t>(dec->context_length(), 2048);
  const int64_t ctx_max = reposition ? longest : dec->context_length();  // rolling positions: no limit
  if (ctx < 2 || ctx > std::max<int64_t>(ctx_max, 2)) throw Error(cat("--ctx must be in [2, ", ctx_max, "], got ", ctx));
  const int64_t V = dec->vocab_size();
  for (const Document& d : docs)
    for (int32_t id : d.ids)
      if (id >= V) throw Error(cat("token id ", id, " outside the vocabulary of ", V));
  std::vector<Window> windows;
  for (size_t d = 0; d < docs.size(); ++d)
    for (int64_t w0 = 0, n = int64_t(docs[d].ids.size()); w0 < n; w0 += ctx)
      windows.push_back({d, w0, std::min(n, w0 + ctx)});
  if (save_logits && windows.size() > 1)
    throw Error(cat("--save-logits needs the input in one window (", windows.size(), " windows of --ctx ", ctx, ")"));
  std::vector<float> saved;  // (n, V) only for --save-logits
  if (save_logits) saved.resize(size_t(total_tokens * V));

  CacheOptions copt;
  copt.max_tokens = ctx, copt.reposition = reposition;
  // A bounded cache is read token by token (a token of a multi-token run would see the run's other entries too),
  // with `P` windows decoding together; the full cache runs B tokens of one window per forward call.
  const int64_t P = spec.full() ? 1 : std::min<int64_t>(parallel, int64_t(windows.size()));
  const int64_t B = spec.full() ? std::min(batch, dec->max_batch()) : P;
  std::vector<std::unique_ptr<KvCache>> caches;
  for (int64_t s = 0; s < P; ++s) caches.push_back(make_cache(spec, *dec, copt));
  std::vector<float> logits(size_t(B * V));  // (B, V)
  std::vector<double> row_nll(static_cast<size_t>(B));
  int64_t done = 0;
  auto progress = [&] {
    if (!json) std::fprintf(stderr, "\r%lld / %lld tokens", (long long)done, (long long)total_tokens);
  };
  Timer t;
  if (spec.full()) {
    for (Window& w : windows) {
      const std::vector<int32_t>& ids = docs[w.doc].ids;
      caches[0]->reset();
      for (int64_t b0 = w.w0; b0 < w.w1; b0 += B) {
        const int64_t m = std::min(B, w.w1 - b0);
        dec->forward(ids.data() + b0, m, b0 - w.w0, *caches[0], logits.data(), true);
        if (save_logits) std::copy(logits.begin(), logits.begin() + m * V, saved.begin() + (b0 - w.w0) * V);
        // Row i predicts ids[b0 + i + 1] when that token is in the window. Rows in parallel, summed in order.
        const int64_t rows = std::min(m, w.w1 - 1 - b0);
        parallel_for(rows, [&](int64_t r0, int64_t r1) {
          for (int64_t i = r0; i < r1; ++i)
            row_nll[size_t(i)] = lm::nll(logits.data() + i * V, V, ids[size_t(b0 + i + 1)]);
        });
        for (int64_t i = 0; i < rows; ++i) w.nll += row_nll[size_t(i)];
        w.scored += std::max<int64_t>(rows, 0);
        done += m;
      }
      progress();
    }
  } else {
    // Continuous batching: slot s decodes window slot_win[s] (-1 when idle) at token slot_t[s] of it; a slot that
    // finishes its window takes the next one with its cache reset.
    const size_t slots = static_cast<size_t>(P);
    std::vector<int64_t> slot_win(slots, -1), slot_t(slots, 0), pos(slots), active(slots);
    std::vector<int32_t> tok_ids(slots);
    std::vector<KvCache*> step_caches(slots);
    size_t next = 0;
    for (;;) {
      int64_t n = 0;
      for (int64_t s = 0; s < P; ++s) {
        if (slot_win[size_t(s)] < 0 && next < windows.size()) {
          slot_win[size_t(s)] = int64_t(next++), slot_t[size_t(s)] = 0;
          caches[size_t(s)]->reset();
        }
        if (slot_win[size_t(s)] < 0) continue;
        const Window& w = windows[size_t(slot_win[size_t(s)])];
        tok_ids[size_t(n)] = docs[w.doc].ids[size_t(w.w0 + slot_t[size_t(s)])];
        pos[size_t(n)] = cache_position(*caches[size_t(s)], slot_t[size_t(s)]);
        step_caches[size_t(n)] = caches[size_t(s)].get();
        active[size_t(n++)] = s;
      }
      if (n == 0) break;
      dec->decode_batch(tok_ids.data(), pos.data(), step_caches.data(), n, logits.data());
      // Row b predicts the next token of its window (if any). Rows in parallel; each window sums its own in order.
      parallel_for(n, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t s = active[size_t(b)];
          const Window& w = windows[size_t(slot_win[size_t(s)])];
          const int64_t i = w.w0 + slot_t[size_t(s)];
          row_nll[size_t(b)] = i + 1 < w.w1 ? lm::nll(logits.data() + b * V, V, docs[w.doc].ids[size_t(i + 1)]) : 0.0;
        }
      });
      for (int64_t b = 0; b < n; ++b) {
        const int64_t s = active[size_t(b)];
        Window& w = windows[size_t(slot_win[size_t(s)])];
        int64_t& ti = slot_t[size_t(s)];
        if (save_logits) std::copy(logits.begin() + b * V, logits.begin() + (b + 1) * V, saved.begin() + ti * V);
        if (w.w0 + ti + 1 < w.w1) w.nll += row_nll[size_t(b)], ++w.scored;
        if (w.w0 + ++ti == w.w1) slot_win[size_t(s)] = -1;
      }
      done += n;
      if (done % 64 < n) progress();
    }
    progress();
  }
  const double secs = t.seconds();
  if (!json) std::fprintf(stderr, "\n");
  if (save_logits) {
    Tensor lt = Tensor::borrow({total_tokens, V}, saved.data(), nullptr);
    save_safetensors(*save_logits, {SafetensorsItem("logits", lt)});
  }
  // Sums per document, windows in order (independent of how windows were scheduled).
  std::vector<double> doc_nll(docs.size(), 0.0);
  std::vector<int64_t> doc_scored(docs.size(), 0);
  double total = 0.0;
  int64_t scored = 0;
  for (const Window& w : windows) doc_nll[w.doc] += w.nll, doc_scored[w.doc] += w.scored;
  for (size_t d = 0; d < docs.size(); ++d) total += doc_nll[d], scored += doc_scored[d];
  const double ppl = std::exp(total / double(scored));
  if (json) {
    Json j = Json::object();
    j["tokens"] = scored;
    j["nll"] = total;
    j["ppl"] = ppl;
    j["ctx"] = ctx;
    j["windows"] = int64_t(windows.size());
    j["memory"] = spec.policy;
    j["budget"] = spec.full() ? Json() : Json(spec.budgets[0]);
    if (auto* b = dynamic_cast<BoundedKvCache*>(caches[0].get())) {
      j["cache_bytes"] = int64_t(b->bytes());
      j["parallel"] = P;
    }
    if (docs_file) {
      Json list = Json::array();
      for (size_t d = 0; d < docs.size(); ++d) {
        Json o = Json::object();
        o["id"] = docs[d].id;
        o["tokens"] = doc_scored[d];
        o["nll"] = doc_nll[d];
        o["ppl"] = std::exp(doc_nll[d] / double(doc_scored[d]));
        list.push_back(o);
      }
      j["documents"] = list;
    }
    j["threads"] = num_threads();
    j["seconds"] = secs;
    j["load_seconds"] = load_s;
    j["tokens_per_second"] = double(total_tokens) / secs;
    std::printf("%s\n", j.dump().c_str());
  } else {
    if (docs_file)
      for (size_t d = 0; d < docs.size(); ++d)
        std::printf("%s: perplexity %.4f over %lld tokens\n", docs[d].id.c_str(),
                    std::exp(doc_nll[d] / double(doc_scored[d])), (long long)doc_scored[d]);
    std::printf("perplexity %.4f over %lld tokens (nll %.4f nats/token; %.1f tokens/s)\n", ppl, (long long)scored,
                total / double(scored), double(total_tokens) / secs);
  }
  return 0;
}

MNEMO_VERB("perplexity", "language-model perplexity of a text or ids under a decoder (GGUF or HF directory)", run,
           kUsage);

}  // namespace
