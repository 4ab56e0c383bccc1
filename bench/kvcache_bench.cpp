// KV-cache eviction cost. Two views, each with the full cache as the reference in the same run:
//   BM_Evict/<policy>/<budget>: one step of a bounded cache without a model — append one entry to each of 30
//     layers (SmolLM2's geometry: 9 query heads on 3 kv heads of 64), observe a softmax row, plan, apply — the whole
//     overhead eviction adds to a decode step.
//   BM_Decode/<policy>/<budget>: a SmolLM2-135M decode step (MNEMO_MODEL, default data/models/smollm2-135m/…gguf)
//     with `budget` entries held: full cache (policy "full", holding budget..budget+32) vs each bounded policy in
//     steady state (evicting one entry per layer every step). One thread: compare CPU times.
//   BM_DecodeBatch/<B>/<threads>: B sequences decoded in one step (each weight matrix read once for all B),
//     tokens/s and process CPU ms per token (the robust number on a loaded machine: use threads = 1).
// Usage: build-*/bench/bench_kvcache [--benchmark_filter=Evict] (docs/kvcache.md).
#include <benchmark/benchmark.h>

#include <cmath>
#include <ctime>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "base/rng.h"
#include "base/thread_pool.h"
#include "io/llama_loader.h"
#include "memory/bounded_kv_cache.h"
#include "memory/make_cache.h"

using namespace mnemo;

namespace {

const char* kPolicies[] = {"full", "window", "sink", "h2o", "tova"};

void BM_Evict(benchmark::State& state) {
  const std::string name = kPolicies[state.range(0)];
  const int64_t budget = state.range(1), hs = 64;
  const CacheShape shape{30, 9, 3};
  if (name == "full") {
    state.SkipWithError("no eviction");
    return;
  }
  BoundedKvCache cache(shape, hs, std::vector<int64_t>(30, budget), make_policy(name));
  std::vector<float> kv(size_t(shape.Hkv * hs), 0.5f), probs(size_t(shape.H * (budget + 1)));  // (Hkv*hs), (H, n)
  Rng rng(1);
  for (float& p : probs) p = float(rng.uniform());
  int64_t t = 0;
  auto step = [&] {
    for (int l = 0; l < shape.n_layer; ++l) cache.append(l, t, kv.data(), kv.data());
    for (int l = 0; l < shape.n_layer; ++l) cache.observe(l, probs.data(), shape.H);  // rows over <= budget+1
    ++t;
  };
  for (int64_t i = 0; i < budget; ++i) step();  // fill to the budget: every later step evicts
  for (auto _ : state) step();
  state.counters["us_per_step"] = benchmark::Counter(double(state.iterations()) * 1e-6,
                                                     benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// SmolLM2-135M (MNEMO_MODEL overrides the path), loaded once; null, with the benchmark skipped, if it cannot be.
Decoder* model(benchmark::State& state) {
  static std::unique_ptr<Decoder> m;
  if (m) return m.get();
  const char* env = std::getenv("MNEMO_MODEL");
  try {
    m = load_decoder(env ? env : "data/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf", 1024, 4096);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  return m.get();
}

void BM_Decode(benchmark::State& state) {
  const std::string name = kPolicies[state.range(0)];
  const int64_t budget = state.range(1);
  set_num_threads(1);  // CPU time is then the whole step's (robust on a loaded machine)
  Decoder* m = model(state);
  if (!m) return;
  Decoder& dec = *m;
  const MemorySpec spec = parse_memory(name, name == "full" ? "" : std::to_string(budget), dec.n_layer());
  CacheOptions opt;
  opt.max_tokens = budget + 64, opt.max_new = budget;
  auto cache = make_cache(spec, dec, opt);
  std::vector<int32_t> ids(size_t(budget) + 64);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(100 + (i * 37) % 5000);
  std::vector<float> logits(static_cast<size_t>(dec.vocab_size()));  // (V)
  dec.forward(ids.data(), budget, 0, *cache, logits.data(), false);  // holds `budget` entries, nothing evicted
  int64_t t = budget;
  for (auto _ : state) {
    if (t == budget + 32) {  // keep the full cache near `budget` entries: pause, refill, resume
      state.PauseTiming();
      cache->reset();
      dec.forward(ids.data(), budget, 0, *cache, logits.data(), false);
      t = budget;
      state.ResumeTiming();
    }
    dec.forward(&ids[size_t(t)], 1, t, *cache, logits.data(), false);
    ++t;
  }
  state.counters["tokens_per_second"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}

// B sequences decoding together (decode_batch), each with its own window cache of 256 held entries: tokens/s over
// all B, against B = 1 in the same run.
void BM_DecodeBatch(benchmark::State& state) {
  const int64_t B = state.range(0), held = 256;
  set_num_threads(int(state.range(1)));
  Decoder* m = model(state);
  if (!m) return;
  Decoder& dec = *m;
  CacheOptions opt;
  opt.max_new = held;
  std::vector<std::unique_ptr<KvCache>> caches;
  std::vector<KvCache*> ptrs;
  std::vector<int32_t> ids(static_cast<size_t>(held));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(100 + (i * 37) % 5000);
  std::vector<float> logits(size_t(B * dec.vocab_size()));  // (B, V)
  for (int64_t b = 0; b < B; ++b) {
    caches.push_back(make_cache(parse_memory("window", std::to_string(held), dec.n_layer()), dec, opt));
    dec.forward(ids.data(), held, 0, *caches.back(), logits.data(), false);  // holds `held`: every step evicts one
    ptrs.push_back(caches.back().get());
  }
  std::vector<int32_t> step_ids(static_cast<size_t>(B), 42);
  std::vector<int64_t> pos(static_cast<size_t>(B), held);
  const std::clock_t c0 = std::clock();  // process CPU time, every worker's (robust to other load)
  for (auto _ : state) {
    dec.decode_batch(step_ids.data(), pos.data(), ptrs.data(), B, logits.data());
    for (auto& p : pos) ++p;
  }
  const double tokens = double(state.iterations() * B);
  state.counters["tokens_per_second"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  state.counters["cpu_ms_per_token"] = 1e3 * double(std::clock() - c0) / CLOCKS_PER_SEC / tokens;
}

void args(benchmark::internal::Benchmark* b, bool with_full) {
  for (int64_t budget : {256, 1024})
    for (int p = with_full ? 0 : 1; p < 5; ++p) b->Args({p, budget});
}

}  // namespace

BENCHMARK(BM_Evict)->Apply([](auto* b) { args(b, false); })->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Decode)->Apply([](auto* b) { args(b, true); })->Unit(benchmark::kMillisecond)->Iterations(64)
    ->Repetitions(3)->ReportAggregatesOnly(true);

BENCHMARK(BM_DecodeBatch)->ArgsProduct({{1, 2, 4, 8, 16}, {1, 2}})->Unit(benchmark::kMillisecond)->Iterations(16)
    ->UseRealTime()->Repetitions(3)->ReportAggregatesOnly(true);

BENCHMARK_MAIN();
