// The bounded cache: storage fixed by the budget, entries compacted with their keys/values/positions, keys
// re-positioned exactly, and on a (small, random) Llama: a budget >= the sequence equals the full cache bit for
// bit, and a smaller one really holds at most `budget` entries.
#include "memory/bounded_kv_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "base/error.h"
#include "base/rng.h"
#include "memory/h2o_policy.h"
#include "memory/make_cache.h"
#include "model/llama.h"
#include "tensor/llama_kernels.h"

using namespace mnemo;

namespace {

// Softmax rows of Gaussian logits: probs (H, n).
std::vector<float> random_rows(Rng& rng, int64_t H, int64_t n) {
  std::vector<float> p(size_t(H * n));
  for (int64_t h = 0; h < H; ++h) {
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += (p[size_t(h * n + j)] = float(std::exp(2.0 * rng.normal())));
    for (int64_t j = 0; j < n; ++j) p[size_t(h * n + j)] = float(p[size_t(h * n + j)] / sum);
  }
  return p;
}

}  // namespace

TEST(BoundedKvCache, EntriesMoveWithTheirKeysValuesAndPositions) {
  // Steps of one token, and every 7th step a run of 3 (several evictions at once from out-of-order rows).
  for (const char* name : {"window", "sink", "h2o", "tova", "sink:2+h2o"}) {
    SCOPED_TRACE(name);
    const CacheShape shape{2, 4, 2};
    const int64_t hs = 4, budget = 7;
    BoundedKvCache cache(shape, hs, {budget, budget}, make_policy(name), 3);
    const size_t bytes = cache.bytes();
    EXPECT_EQ(cache.capacity(), budget + 3);  // the budget and one step's tokens, nothing more
    Rng rng(11);
    std::vector<float> k(size_t(shape.Hkv * hs)), v(k.size());
    int64_t tokens = 0;
    for (int64_t t = 0; t < 300; ++t) {
      const int64_t run = t % 7 == 3 ? 3 : 1;
      for (int layer = 0; layer < 2; ++layer) {
        const int64_t before = cache.size(layer);
        std::vector<int64_t> rows_before;  // origins of rows [0, before), per head
        for (int64_t h = 0; h < shape.Hkv; ++h)
          rows_before.insert(rows_before.end(), cache.origins(layer, h), cache.origins(layer, h) + before);
        for (int64_t i = 0; i < run; ++i) {
          // Each row encodes (token, head, layer) so we can tell where it came from.
          const int64_t token = tokens + i;
          for (int64_t h = 0; h < shape.Hkv; ++h)
            for (int64_t d = 0; d < hs; ++d) {
              k[size_t(h * hs + d)] = float(token * 1000 + h * 10 + layer);
              v[size_t(h * hs + d)] = -float(token * 1000 + h * 10 + layer);
            }
          cache.append(layer, token, k.data(), v.data());
        }
        const int64_t n = cache.size(layer);
        std::vector<float> p = random_rows(rng, shape.H, n);
        cache.observe(layer, p.data(), shape.H);
        ASSERT_EQ(cache.size(layer), std::min<int64_t>(tokens + run, budget));
        for (int64_t h = 0; h < shape.Hkv; ++h) {
          const int64_t* org = cache.origins(layer, h);
          const int64_t* order = cache.order(layer, h);
          std::vector<bool> seen(size_t(cache.size(layer)), false);
          for (int64_t i = 0; i < cache.size(layer); ++i) {
            const int64_t row = order[i];
            ASSERT_TRUE(row >= 0 && row < cache.size(layer) && !seen[size_t(row)]);  // a permutation of the rows
            seen[size_t(row)] = true;
            ASSERT_TRUE(i == 0 || org[row] > org[order[i - 1]]);                     // in arrival order
            ASSERT_EQ(cache.keys(layer, h)[row * hs + 1], float(org[row] * 1000 + h * 10 + layer));
            ASSERT_EQ(cache.values(layer, h)[row * hs + 3], -float(org[row] * 1000 + h * 10 + layer));
            ASSERT_EQ(cache.positions(layer, h)[row], org[row]);
          }
          // Order-free storage: a step rewrites at most as many old rows as it appended (new entries fill holes).
          int64_t changed = 0;
          for (int64_t r = 0; r < std::min(before, cache.size(layer)); ++r)
            changed += org[r] != rows_before[size_t(h * before + r)];
          ASSERT_LE(changed, run) << "step " << t;
        }
      }
      tokens += run;
    }
    EXPECT_EQ(cache.bytes(), bytes);  // nothing grows with the stream
    EXPECT_EQ(cache.evicted(0), tokens - budget);
  }
}

TEST(BoundedKvCache, RepositionedKeysSitAtTheirIndex) {
  // Keys are the same vector rotated at the position the cache asks for; after every eviction each held key must
  // equal that vector rotated at its index (StreamingLLM's positions within the cache). Every 5th step appends a
  // run of 3 (entries then move back by up to 3 positions).
  const CacheShape shape{1, 2, 1};
  const int64_t hs = 8, budget = 6;
  RopeSpec rope{10000.0f, 1.0f};
  for (const char* name : {"sink:2", "tova", "h2o"}) {
    SCOPED_TRACE(name);
    BoundedKvCache cache(shape, hs, {budget}, make_policy(name), 3, 0, &rope);
    std::vector<float> inv(hs / 2), cos(hs / 2), sin(hs / 2), base(hs), k(hs), v(hs, 0.0f);
    rope_inv_freq(inv.data(), hs, rope.theta, rope.linear_scale);
    for (int64_t d = 0; d < hs; ++d) base[size_t(d)] = float(d + 1) / hs;
    Rng rng(5);
    int64_t tokens = 0;
    for (int64_t t = 0; t < 500; ++t) {
      const int64_t first = cache_position(cache, tokens), run = t % 5 == 2 ? 3 : 1;
      ASSERT_EQ(first, std::min<int64_t>(tokens, budget));
      for (int64_t j = 0; j < run; ++j) {
        const int64_t pos = first + j;
        rope_tables(cos.data(), sin.data(), &pos, inv.data(), 1, hs / 2);
        rope_forward(k.data(), base.data(), cos.data(), sin.data(), 1, 1, hs);
        cache.append(0, pos, k.data(), v.data());
      }
      tokens += run;
      std::vector<float> p = random_rows(rng, shape.H, cache.size(0));
      cache.observe(0, p.data(), shape.H);
      for (int64_t i = 0; i < cache.size(0); ++i) {
        const int64_t row = cache.order(0, 0)[i];  // the i-th oldest held entry
        ASSERT_EQ(cache.positions(0, 0)[row], i);
        std::vector<float> want(hs);
        rope_tables(cos.data(), sin.data(), &i, inv.data(), 1, hs / 2);
        rope_forward(want.data(), base.data(), cos.data(), sin.data(), 1, 1, hs);
        for (int64_t d = 0; d < hs; ++d)
          ASSERT_NEAR(cache.keys(0, 0)[row * hs + d], want[size_t(d)], 2e-5) << "step " << t << " entry " << i;
      }
    }
  }
}

TEST(BoundedKvCache, PoliciesSeeAttentionInArrivalOrder) {
  // Rows are stored out of order; the attention a row receives is a fixed score of the token it holds. TOVA with
  // fixed scores always holds the top `budget` tokens seen so far — only if observe() maps columns to entries right.
  const CacheShape shape{1, 4, 2};
  const int64_t hs = 2, budget = 9;
  BoundedKvCache cache(shape, hs, {budget}, make_policy("tova"));
  auto score = [](int64_t token) { return float((token * 7919) % 101 + 1); };
  std::vector<float> kv(size_t(shape.Hkv * hs), 0.0f);
  for (int64_t t = 0; t < 200; ++t) {
    cache.append(0, t, kv.data(), kv.data());
    const int64_t n = cache.size(0);
    std::vector<float> p(size_t(shape.H * n));  // (H, n) by storage row
    for (int64_t h = 0; h < shape.H; ++h)
      for (int64_t r = 0; r < n; ++r) p[size_t(h * n + r)] = score(cache.origins(0, h / 2)[r]);
    cache.observe(0, p.data(), shape.H);
    std::vector<int64_t> want(size_t(t + 1)), got(cache.origins(0, 0), cache.origins(0, 0) + cache.size(0));
    for (int64_t i = 0; i <= t; ++i) want[size_t(i)] = i;
    // Ties: the more recent token stays.
    std::sort(want.begin(), want.end(),
              [&](int64_t a, int64_t b) { return score(a) != score(b) ? score(a) > score(b) : a > b; });
    want.resize(size_t(std::min<int64_t>(t + 1, budget)));
    std::sort(want.begin(), want.end());
    std::sort(got.begin(), got.end());
    ASSERT_EQ(got, want) << "step " << t;
  }
}

TEST(BoundedKvCache, BadUseIsAnError) {
  const CacheShape shape{2, 2, 1};
  EXPECT_THROW(BoundedKvCache(shape, 4, {8}, make_policy("tova")), Error);         // one budget for two layers
  EXPECT_THROW(BoundedKvCache(shape, 4, {8, 3}, make_policy("sink")), Error);      // below sinks + 1
  RopeSpec rope;
  EXPECT_THROW(BoundedKvCache(shape, 4, {8, 16}, make_policy("window"), 1, 0, &rope), Error);  // uneven + rolling
  BoundedKvCache cache(shape, 4, {8, 8}, make_policy("window"), 1, 0, &rope);
  std::vector<float> k(4), v(4);
  EXPECT_THROW(cache.append(0, 5, k.data(), v.data()), Error);  // re-positioned entries need position 0
  cache.append(0, 0, k.data(), v.data());
  EXPECT_THROW(cache.append(0, 1, k.data(), v.data()), Error);  // two tokens in a step sized for one
}

// ---- on a model ----

namespace {

LlamaConfig tiny_config() {
  LlamaConfig c;
  c.num_hidden_layers = 2, c.hidden_size = 32, c.num_attention_heads = 4, c.num_key_value_heads = 2;
  c.intermediate_size = 48, c.vocab_size = 61, c.max_position_embeddings = 256;
  return c;
}

// Token-by-token logits over `ids` on `cache`.
std::vector<float> decode(LlamaRunner& model, KvCache& cache, const std::vector<int32_t>& ids) {
  const int64_t V = model.vocab_size();
  std::vector<float> out(ids.size() * size_t(V));
  cache.reset();
  for (size_t t = 0; t < ids.size(); ++t)
    model.forward(&ids[t], 1, cache_position(cache, int64_t(t)), cache, out.data() + t * size_t(V), false);
  return out;
}

}  // namespace

TEST(BoundedKvCache, BudgetAtLeastTheSequenceEqualsTheFullCacheExactly) {
  Llama llama(tiny_config());
  llama.init_random(1);
  LlamaRunner model(llama.config(), llama.weights(), 64, 256);
  Rng rng(2);
  std::vector<int32_t> ids(150);
  for (auto& id : ids) id = int32_t(rng.below(61));
  CacheOptions opt;
  opt.max_tokens = int64_t(ids.size());
  auto full = make_cache(parse_memory("full", "", 2), model, opt);
  const std::vector<float> want = decode(model, *full, ids);
  for (const char* name : {"window", "sink", "h2o", "tova"}) {
    SCOPED_TRACE(name);
    for (const char* budget : {"150", "100000"}) {
      auto cache = make_cache(parse_memory(name, budget, 2), model, opt);
      EXPECT_EQ(decode(model, *cache, ids), want);  // bit for bit: same kernels over the same entries
      EXPECT_EQ(static_cast<BoundedKvCache&>(*cache).capacity(), 151);  // capped by the sequence, not the budget
    }
    // A real budget changes the result and bounds the cache.
    auto small = make_cache(parse_memory(name, "40", 2), model, opt);
    const std::vector<float> got = decode(model, *small, ids);
    EXPECT_EQ(std::vector<float>(got.begin(), got.begin() + 40 * 61), std::vector<float>(want.begin(), want.begin() + 40 * 61));
    EXPECT_NE(got, want);
    EXPECT_EQ(small->size(0), 40);
    EXPECT_EQ(static_cast<BoundedKvCache&>(*small).capacity(), 40 + 1);
  }
}

TEST(BoundedKvCache, PromptReducedInOneStepSeesEveryRow) {
  // A 50-token prompt in one forward: H2O's scores add every query row (causal, through the rows observer), TOVA
  // reads the last (through the cache's own observe()); afterwards the cache holds the budget and decoding continues.
  Llama llama(tiny_config());
  llama.init_random(3);
  LlamaRunner model(llama.config(), llama.weights(), 64, 256);
  std::vector<int32_t> ids(50);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 7) % 61);
  std::vector<float> logits(size_t(model.vocab_size()));
  for (const char* name : {"h2o", "tova", "sink"}) {
    SCOPED_TRACE(name);
    CacheOptions opt;
    opt.max_tokens = 60, opt.max_new = 50;
    auto cache = make_cache(parse_memory(name, "16", 2), model, opt);
    auto& b = static_cast<BoundedKvCache&>(*cache);
    const LayerObserver* obs = b.observer_for(true);
    EXPECT_EQ(obs != nullptr, std::string(name) == "h2o");  // TOVA and sinks read only the newest row
    model.forward(ids.data(), 50, 0, *cache, logits.data(), false, obs);
    b.observer_for(false);
    EXPECT_EQ(cache->size(0), 16);
    EXPECT_EQ(cache->size(1), 16);
    if (std::string(name) != "tova") {
      EXPECT_EQ(b.origins(0, 0)[b.order(0, 0)[15]], 49);  // the newest is in the recent window
    }
    if (std::string(name) == "h2o") {
      // Every prompt row added its attention: the kept scores of a head sum to far more than one row's 1.
      const auto& h2o = static_cast<const H2OPolicy&>(b.policy());
      float sum = 0;
      for (int64_t i = 0; i < 16; ++i) sum += h2o.score(1, 0, i);
      EXPECT_GT(sum, 5.0f);
    }
    model.forward(&ids[0], 1, cache_position(*cache, 50), *cache, logits.data(), false);
    EXPECT_EQ(cache->size(0), 16);
  }
}

TEST(BoundedKvCache, ARunOfTokensAfterEvictionsMasksByRow) {
  // After evictions the held rows are out of arrival order; a multi-token run (a chat message) appends its tokens
  // as the last rows and masks causally by row. With eviction frozen, one forward over 5 tokens must equal the 5
  // tokens fed one at a time.
  Llama llama(tiny_config());
  llama.init_random(5);
  LlamaRunner model(llama.config(), llama.weights(), 64, 256);
  std::vector<int32_t> ids(70);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 13 + 5) % 61);
  const int64_t V = model.vocab_size();
  for (const char* name : {"tova", "h2o"}) {
    SCOPED_TRACE(name);
    CacheOptions opt;
    opt.max_new = 5;
    std::vector<float> run(size_t(5 * V)), one(size_t(5 * V));
    std::unique_ptr<KvCache> caches[2];
    for (auto& c : caches) {
      c = make_cache(parse_memory(name, "16", 2), model, opt);
      decode(model, *c, std::vector<int32_t>(ids.begin(), ids.begin() + 65));
      static_cast<BoundedKvCache&>(*c).freeze(true);
    }
    bool permuted = false;
    for (int64_t i = 0; i < 16; ++i) permuted |= static_cast<BoundedKvCache&>(*caches[0]).order(0, 0)[i] != i;
    ASSERT_TRUE(permuted);
    model.forward(&ids[65], 5, 65, *caches[0], run.data(), true);
    for (int64_t i = 0; i < 5; ++i)
      model.forward(&ids[size_t(65 + i)], 1, 65 + i, *caches[1], one.data() + i * V, false);
    for (size_t i = 0; i < run.size(); ++i) ASSERT_NEAR(run[i], one[i], 1e-5f) << "logit " << i;
  }
}

// ---- several sequences in one step ----

namespace {

// A Llama whose matrices are Q4_1 (as SmolLM2's GGUF): each matrix quantized row by row; `owner` keeps the blocks.
LlamaWeights quantized(const Llama& llama) {
  auto blocks = std::make_shared<std::vector<std::vector<char>>>();
  auto q41 = [&](const WeightRef& w) {
    WeightRef q = w;
    q.type = QType::Q4_1;
    const int64_t rb = row_bytes(QType::Q4_1, w.cols);
    blocks->emplace_back(size_t(w.rows * rb));
    for (int64_t r = 0; r < w.rows; ++r)
      quantize_row(QType::Q4_1, static_cast<const float*>(w.data) + r * w.cols, blocks->back().data() + r * rb, w.cols);
    q.data = blocks->back().data();
    return q;
  };
  LlamaWeights w = llama.weights();
  blocks->reserve(w.layers.size() * 7 + 2);
  w.embed = w.lm_head = q41(w.embed);  // tied
  for (auto& L : w.layers)
    for (WeightRef* m : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) *m = q41(*m);
  w.owner = blocks;
  return w;
}

}  // namespace

TEST(DecodeBatch, EachSequenceMatchesItsDecodingAlone) {
  // Three sequences of different lengths decode together (joining and dropping out), each on its own cache;
  // every sequence's logits must match decoding it alone: exactly for one sequence per step (the same matvecs),
  // to fp32 summation order for several (one GEMM over the step's rows instead of a matvec per row).
  LlamaConfig c = tiny_config();
  c.intermediate_size = 64;  // Q4_1 rows are whole blocks of 32
  Llama llama(c);
  llama.init_random(7);
  for (auto& p : llama.params().all())  // far from uniform attention, so evictions and positions matter
    if (p.value.rank() == 2)
      for (int64_t i = 0; i < p.value.numel(); ++i) p.value.data()[i] *= 10.0f;
  for (const bool q41 : {false, true}) {
    LlamaRunner model(c, q41 ? quantized(llama) : llama.weights(), 64, 256);
    const int64_t V = model.vocab_size();
    Rng rng(3);
    const std::vector<int64_t> lengths = {90, 70, 45};
    std::vector<std::vector<int32_t>> seqs;
    for (int64_t n : lengths) {
      seqs.emplace_back(size_t(n));
      for (auto& id : seqs.back()) id = int32_t(rng.below(uint64_t(V)));
    }
    for (const char* memory : {"full", "tova", "h2o", "sink"}) {
      SCOPED_TRACE(cat(memory, q41 ? " Q4_1" : " F32"));
      const MemorySpec spec = parse_memory(memory, std::string(memory) == "full" ? "" : "24", 2);
      CacheOptions opt;
      opt.max_tokens = 90;
      std::vector<std::unique_ptr<KvCache>> caches;
      std::vector<std::vector<float>> alone;
      for (const auto& s : seqs) {
        caches.push_back(make_cache(spec, model, opt));
        alone.push_back(decode(model, *caches.back(), s));
        caches.back()->reset();
      }
      std::vector<std::vector<float>> got(seqs.size());
      std::vector<float> logits(seqs.size() * size_t(V));
      // Sequence s joins at step start[s] (as in continuous batching), so a step mixes positions.
      const std::vector<int64_t> start = {0, 7, 50};
      for (int64_t step_i = 0; step_i < 100; ++step_i) {
        std::vector<int32_t> ids;
        std::vector<int64_t> pos;
        std::vector<KvCache*> step;
        std::vector<size_t> who;
        for (size_t s = 0; s < seqs.size(); ++s)
          if (const int64_t t = step_i - start[s]; t >= 0 && t < lengths[s]) {
            ids.push_back(seqs[s][size_t(t)]);
            pos.push_back(cache_position(*caches[s], t));
            step.push_back(caches[s].get());
            who.push_back(s);
          }
        if (ids.empty()) continue;
        model.decode_batch(ids.data(), pos.data(), step.data(), int64_t(ids.size()), logits.data());
        for (size_t b = 0; b < who.size(); ++b)
          got[who[b]].insert(got[who[b]].end(), logits.begin() + int64_t(b) * V, logits.begin() + int64_t(b + 1) * V);
      }
      for (size_t s = 0; s < seqs.size(); ++s) {
        ASSERT_EQ(got[s].size(), alone[s].size());
        float worst = 0, scale = 0;
        for (size_t i = 0; i < got[s].size(); ++i) {
          worst = std::max(worst, std::fabs(got[s][i] - alone[s][i]));
          scale = std::max(scale, std::fabs(alone[s][i]));
        }
        // fp32 GEMM vs matvec: a few ulps per dot product, carried through 2 layers.
        EXPECT_LT(worst, 2e-5f * scale) << "sequence " << s;
      }
      if (std::string(memory) != "full") {
        EXPECT_EQ(caches[0]->size(0), 24);
        EXPECT_EQ(static_cast<BoundedKvCache&>(*caches[0]).evicted(0), 90 - 24);
      }
    }
    // One sequence per step is the single-token path itself: bit for bit.
    auto full = make_cache(parse_memory("full", "", 2), model, CacheOptions{45, 1, false});
    const std::vector<float> want = decode(model, *full, seqs[2]);
    full->reset();
    std::vector<float> one(static_cast<size_t>(V)), all;
    for (int64_t t = 0; t < 45; ++t) {
      KvCache* cp = full.get();
      model.decode_batch(&seqs[2][size_t(t)], &t, &cp, 1, one.data());
      all.insert(all.end(), one.begin(), one.end());
    }
    EXPECT_EQ(all, want);
  }
}
