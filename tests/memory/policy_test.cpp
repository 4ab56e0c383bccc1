// Eviction policies on hand-made attention rows, without a model: each policy's choice, the cache invariants
// after many steps (against an independent re-implementation keyed by position), and bad names / budgets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "base/error.h"
#include "base/rng.h"
#include "memory/eviction_policy.h"
#include "memory/h2o_policy.h"
#include "memory/memory_spec.h"
#include "memory/sink_policy.h"
#include "memory/tova_policy.h"

using namespace mnemo;

namespace {

// Attention rows (H, Tq, n) given as a flat list.
struct Rows {
  std::vector<float> p;
  AttentionRows view(int64_t H, int64_t Tq, int64_t n) const { return AttentionRows{p.data(), H, Tq, n, n}; }
};

std::vector<int64_t> kept(const EvictionPlan& plan, int64_t h = 0) {
  return std::vector<int64_t>(plan.row(h), plan.row(h) + plan.n_keep);
}

using V = std::vector<int64_t>;

}  // namespace

TEST(Window, KeepsTheMostRecent) {
  auto p = make_policy("window");
  p->reset({1, 1, 1});
  EvictionPlan plan;
  p->plan(0, 10, 3, plan);
  check_plan(plan, 1);
  EXPECT_FALSE(plan.per_head);
  EXPECT_EQ(kept(plan), (V{7, 8, 9}));
  EXPECT_FALSE(p->uses_attention());
}

TEST(Sink, KeepsFourSinksAndTheWindow) {
  auto p = make_policy("sink");
  EXPECT_EQ(p->name(), "sink:4");
  EXPECT_EQ(p->min_budget(), 5);
  p->reset({1, 1, 1});
  EvictionPlan plan;
  p->plan(0, 12, 6, plan);
  check_plan(plan, 1);
  EXPECT_EQ(kept(plan), (V{0, 1, 2, 3, 10, 11}));
  p->commit(0, plan);
}

TEST(Tova, DropsTheLowestHeadAveragedAttentionOfTheNewestRow) {
  // H = 2 query heads, one kv head, Tq = 2 rows; only the last row counts. Head-mean of the last row:
  // entry: 0: (.1+.3)/2=.2  1: (.4+.0)/2=.2  2: (.1+.1)/2=.1  3: (.4+.6)/2=.5
  Rows r{{/*h0 t0*/ 0.9f, 0.1f, 0.0f, 0.0f, /*h0 t1*/ 0.1f, 0.4f, 0.1f, 0.4f,
          /*h1 t0*/ 0.9f, 0.1f, 0.0f, 0.0f, /*h1 t1*/ 0.3f, 0.0f, 0.1f, 0.6f}};
  TovaPolicy p;
  p.reset({1, 2, 1});
  p.observe(0, r.view(2, 2, 4));
  EXPECT_FLOAT_EQ(p.score(0, 3), 0.5f);
  EvictionPlan plan;
  p.plan(0, 4, 3, plan);
  EXPECT_EQ(kept(plan), (V{0, 1, 3}));  // entry 2 has the lowest mean
  p.plan(0, 4, 2, plan);
  EXPECT_EQ(kept(plan), (V{1, 3}));  // 0 and 1 tie at .2: the more recent (1) stays
  p.commit(0, plan);
  EXPECT_FLOAT_EQ(p.score(0, 0), 0.2f);
  EXPECT_FLOAT_EQ(p.score(0, 1), 0.5f);
}

TEST(Tova, PoolsGqaGroupsOntoOneChoicePerLayer) {
  // H = 4 query heads on Hkv = 2 kv heads: one per-layer plan for both kv heads.
  Rows r{{0.7f, 0.2f, 0.1f, /**/ 0.7f, 0.2f, 0.1f, /**/ 0.0f, 0.1f, 0.9f, /**/ 0.0f, 0.1f, 0.9f}};
  TovaPolicy p;
  p.reset({1, 4, 2});
  p.observe(0, r.view(4, 1, 3));  // means: .35 .15 .5
  EvictionPlan plan;
  p.plan(0, 3, 2, plan);
  check_plan(plan, 2);
  EXPECT_FALSE(plan.per_head);
  EXPECT_EQ(kept(plan), (V{0, 2}));
}

TEST(H2O, HalfRecentHalfHeavyPerKvHead) {
  H2OPolicy p;
  EXPECT_EQ(p.recent_count(4), 2);
  EXPECT_EQ(p.recent_count(5), 3);  // the odd one goes to the window
  EXPECT_EQ(p.recent_count(1), 1);
  // H = 2 query heads, Hkv = 2 (one head per group), 6 entries, budget 4: recent = {4, 5}, 2 heavy of {0..3}.
  Rows r{{0.30f, 0.05f, 0.20f, 0.05f, 0.1f, 0.3f, /*h1*/ 0.05f, 0.40f, 0.05f, 0.30f, 0.1f, 0.1f}};
  p.reset({1, 2, 2});
  p.observe(0, r.view(2, 1, 6));
  EvictionPlan plan;
  p.plan(0, 6, 4, plan);
  check_plan(plan, 2);
  EXPECT_TRUE(plan.per_head);
  EXPECT_EQ(kept(plan, 0), (V{0, 2, 4, 5}));
  EXPECT_EQ(kept(plan, 1), (V{1, 3, 4, 5}));
  p.commit(0, plan);
  EXPECT_FLOAT_EQ(p.score(0, 1, 1), 0.30f);  // head 1's second kept entry is old entry 3
}

TEST(H2O, AccumulatesOverStepsAndPromptRows) {
  // One head. Step 1: a 3-token prompt, causal rows (all rows count). Step 2: one more token.
  Rows prompt{{1.0f, 0.0f, 0.0f, /**/ 0.5f, 0.5f, 0.0f, /**/ 0.2f, 0.2f, 0.6f}};
  H2OPolicy p;
  p.reset({1, 1, 1});
  p.observe(0, prompt.view(1, 3, 3));
  EXPECT_FLOAT_EQ(p.score(0, 0, 0), 1.7f);
  EXPECT_FLOAT_EQ(p.score(0, 0, 1), 0.7f);
  EXPECT_FLOAT_EQ(p.score(0, 0, 2), 0.6f);
  Rows step{{0.1f, 0.5f, 0.1f, 0.3f}};
  p.observe(0, step.view(1, 1, 4));
  EXPECT_FLOAT_EQ(p.score(0, 0, 1), 1.2f);
  EXPECT_FLOAT_EQ(p.score(0, 0, 3), 0.3f);
  EvictionPlan plan;
  p.plan(0, 4, 2, plan);  // recent {3}, heavy: the best of {0: 1.8, 1: 1.2, 2: 0.7} -> 0
  EXPECT_EQ(kept(plan), (V{0, 3}));
  // h2o:1 gives the whole budget to the recent window: a sliding window.
  H2OPolicy all_recent(1.0);
  all_recent.reset({1, 1, 1});
  all_recent.observe(0, prompt.view(1, 3, 3));
  all_recent.plan(0, 3, 2, plan);
  EXPECT_EQ(kept(plan), (V{1, 2}));
}

TEST(SinkComposite, HandsTheRestToItsInnerPolicy) {
  // sink:1+tova: entry 0 stays whatever its attention; TOVA picks among 1..4 with budget 2.
  auto p = make_policy("sink:1+tova");
  EXPECT_EQ(p->name(), "sink:1+tova");
  EXPECT_TRUE(p->uses_attention());
  p->reset({1, 1, 1});
  Rows r{{0.0f, 0.4f, 0.1f, 0.3f, 0.2f}};
  p->observe(0, r.view(1, 1, 5));
  EvictionPlan plan;
  p->plan(0, 5, 3, plan);
  check_plan(plan, 1);
  EXPECT_EQ(kept(plan), (V{0, 1, 3}));
  p->commit(0, plan);
  // sink:2+h2o is per head and keeps the sinks in every head.
  auto q = make_policy("sink:2+h2o");
  q->reset({1, 2, 2});
  Rows r2{{0.1f, 0.1f, 0.5f, 0.1f, 0.1f, 0.1f, /*h1*/ 0.1f, 0.1f, 0.1f, 0.5f, 0.1f, 0.1f}};
  q->observe(0, r2.view(2, 1, 6));
  q->plan(0, 6, 4, plan);
  check_plan(plan, 2);
  EXPECT_TRUE(plan.per_head);
  EXPECT_EQ(kept(plan, 0), (V{0, 1, 2, 5}));  // 2 sinks + 1 heavy (2) + 1 recent (5)
  EXPECT_EQ(kept(plan, 1), (V{0, 1, 3, 5}));
  q->commit(0, plan);
}

// ---- many steps: invariants, and the choices against an independent model keyed by absolute position ----

namespace {

// What a bounded cache holds, in metadata only: positions per (layer, kv head), with the plan applied the way
// the real cache applies it. The attention of each step is random (softmax of Gaussian logits, fixed seed).
struct Sim {
  CacheShape shape;
  std::vector<V> pos;  // (L * Hkv) positions held
  std::vector<float> probs;

  void step(EvictionPolicy& p, int64_t t, int64_t budget, Rng& rng) {
    for (int layer = 0; layer < shape.n_layer; ++layer) {
      for (int64_t g = 0; g < shape.Hkv; ++g) pos[size_t(layer * shape.Hkv + g)].push_back(t);
      const int64_t n = int64_t(pos[size_t(layer * shape.Hkv)].size());
      probs.assign(size_t(shape.H * n), 0.0f);
      for (int64_t h = 0; h < shape.H; ++h) {
        float* row = probs.data() + h * n;
        double sum = 0;
        for (int64_t j = 0; j < n; ++j) sum += (row[j] = float(std::exp(2.0 * rng.normal())));
        for (int64_t j = 0; j < n; ++j) row[j] = float(row[j] / sum);
      }
      if (p.uses_attention()) p.observe(layer, AttentionRows{probs.data(), shape.H, 1, n, n});
      if (n > budget) {
        EvictionPlan plan;
        p.plan(layer, n, budget, plan);
        check_plan(plan, shape.Hkv);
        for (int64_t g = 0; g < shape.Hkv; ++g) {
          V& v = pos[size_t(layer * shape.Hkv + g)];
          compact_entries(plan.row(g), plan.n_keep, v.data(), 1);
          v.resize(size_t(plan.n_keep));
        }
        p.commit(layer, plan);
      }
    }
  }
};

// Choose `k` of the candidate positions by score, ties to the later position (what the policies promise).
V best(const std::map<int64_t, double>& score, const V& cand, int64_t k) {
  V c = cand;
  std::sort(c.begin(), c.end(), [&](int64_t a, int64_t b) {
    return score.at(a) != score.at(b) ? score.at(a) > score.at(b) : a > b;
  });
  c.resize(size_t(k));
  std::sort(c.begin(), c.end());
  return c;
}

void run_many_steps(const std::string& name) {
  SCOPED_TRACE(name);
  const CacheShape shape{3, 6, 2};
  const int64_t budget = 9, steps = 200;
  auto p = make_policy(name);
  p->reset(shape);
  Sim sim{shape, std::vector<V>(size_t(shape.n_layer * shape.Hkv)), {}};
  Rng rng(7);
  // The reference: per (layer, kv head), scores keyed by position (H2O: accumulated; TOVA: last row).
  std::vector<std::map<int64_t, double>> acc(sim.pos.size()), last(sim.pos.size() / size_t(shape.Hkv));
  for (int64_t t = 0; t < steps; ++t) {
    std::vector<V> before = sim.pos;
    Rng probe = rng;  // replay the same draws for the reference
    sim.step(*p, t, budget, rng);
    for (int layer = 0; layer < shape.n_layer; ++layer) {
      V held = before[size_t(layer * shape.Hkv)];
      held.push_back(t);
      const int64_t n = int64_t(held.size());
      std::vector<double> p_h(size_t(shape.H * n));
      for (int64_t h = 0; h < shape.H; ++h) {
        double sum = 0;
        for (int64_t j = 0; j < n; ++j) sum += (p_h[size_t(h * n + j)] = float(std::exp(2.0 * probe.normal())));
        for (int64_t j = 0; j < n; ++j) p_h[size_t(h * n + j)] = float(p_h[size_t(h * n + j)] / sum);
      }
      const int64_t G = shape.H / shape.Hkv;
      auto& lst = last[size_t(layer)];
      lst.clear();
      for (int64_t g = 0; g < shape.Hkv; ++g) {
        V hp = before[size_t(layer * shape.Hkv + g)];
        hp.push_back(t);
        auto& a = acc[size_t(layer * shape.Hkv + g)];
        for (int64_t j = 0; j < n; ++j) {
          double m = 0;
          for (int64_t h = g * G; h < (g + 1) * G; ++h) m += p_h[size_t(h * n + j)] / double(G);
          a[hp[size_t(j)]] += m;
          lst[held[size_t(j)]] += m / double(shape.Hkv);  // per-layer: TOVA keeps the same entries in every head
        }
        const V& got = sim.pos[size_t(layer * shape.Hkv + g)];
        // Invariants: ascending positions, the budget, the newest token (t) considered, heads agreeing when
        // selection is per layer.
        ASSERT_TRUE(std::is_sorted(got.begin(), got.end()) && std::adjacent_find(got.begin(), got.end()) == got.end());
        ASSERT_EQ(int64_t(got.size()), std::min<int64_t>(t + 1, budget));
        if (n <= budget) {
          ASSERT_EQ(got, hp);
          continue;
        }
        V want;
        if (name == "window") {
          want = V(hp.end() - budget, hp.end());
        } else if (name == "sink") {
          want = V(hp.begin(), hp.begin() + 4);
          want.insert(want.end(), hp.end() - (budget - 4), hp.end());
        } else if (name == "tova") {
          // Scored with the layer's mean; checked after the loop over heads.
          continue;
        } else if (name == "h2o") {
          const int64_t recent = budget - budget / 2;
          V older(hp.begin(), hp.end() - recent);
          want = best(a, older, budget - recent);
          want.insert(want.end(), hp.end() - recent, hp.end());
        }
        ASSERT_EQ(got, want) << "layer " << layer << " head " << g << " step " << t;
        for (auto it = a.begin(); it != a.end();)  // the reference forgets evicted entries too
          it = std::binary_search(got.begin(), got.end(), it->first) ? std::next(it) : a.erase(it);
      }
      if (name == "tova" && n > budget) {
        // The head-averaged mean computed above through kv-head group means equals the mean over all heads.
        V want = best(lst, held, budget);
        for (int64_t g = 0; g < shape.Hkv; ++g)
          ASSERT_EQ(sim.pos[size_t(layer * shape.Hkv + g)], want) << "layer " << layer << " step " << t;
      }
    }
  }
}

}  // namespace

TEST(ManySteps, WindowMatchesReference) { run_many_steps("window"); }
TEST(ManySteps, SinkMatchesReference) { run_many_steps("sink"); }
TEST(ManySteps, TovaMatchesReference) { run_many_steps("tova"); }
TEST(ManySteps, H2OMatchesReference) { run_many_steps("h2o"); }

// ---- names and budgets ----

TEST(MemorySpec, FullTakesNoBudget) {
  EXPECT_TRUE(parse_memory("full", "", 30).full());
  EXPECT_TRUE(parse_memory("", "", 30).full());
  EXPECT_THROW(parse_memory("full", "256", 30), Error);
}

TEST(MemorySpec, BudgetsPerLayer) {
  MemorySpec s = parse_memory("tova", "256", 3);
  EXPECT_EQ(s.budgets, (V{256, 256, 256}));
  s = parse_memory("h2o", "8,16,32", 3);
  EXPECT_EQ(s.budgets, (V{8, 16, 32}));
  // Larger than any context is allowed: it never evicts (documented; equals the full cache).
  EXPECT_EQ(parse_memory("window", "1000000", 1).budgets, (V{1000000}));
}

TEST(MemorySpec, BadInputIsAOneLineErrorNamingTheFlag) {
  auto message = [](const std::string& policy, const std::string& budget) {
    try {
      parse_memory(policy, budget, 3);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("tova", "0").find("--budget 0"), std::string::npos);
  EXPECT_NE(message("tova", "-3").find("at least 1"), std::string::npos);
  EXPECT_NE(message("tova", "").find("needs --budget"), std::string::npos);
  EXPECT_NE(message("tova", "12x").find("not a whole number"), std::string::npos);
  EXPECT_NE(message("tova", "4,4").find("3 layers"), std::string::npos);
  EXPECT_NE(message("sink", "4").find("at least 5"), std::string::npos);
  EXPECT_NE(message("lru", "64").find("unknown policy 'lru'"), std::string::npos);
  EXPECT_NE(message("sink:0", "64").find("sinks"), std::string::npos);
  EXPECT_NE(message("h2o:2", "64").find("recent share"), std::string::npos);
  EXPECT_NE(message("tova+sink", "64").find("--memory 'tova+sink'"), std::string::npos);
  EXPECT_NE(message("sink+full", "64").find("cannot be combined"), std::string::npos);
  for (const char* bad : {"0", "-3", "", "12x", "4,4", ",", "1,,2"})
    EXPECT_EQ(message("tova", bad).find('\n'), std::string::npos) << bad;
}
