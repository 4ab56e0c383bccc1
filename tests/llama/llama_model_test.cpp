// The Llama model: tape forward/backward against finite differences, the inference runner (prefill + cached
// decode) against the tape, HF directory round trip, config errors, and — when tests/oracle/test_llama.py points
// MNEMO_LLAMA_ORACLE_DIR at a directory it wrote with transformers — logits, loss and every parameter gradient
// against LlamaForCausalLM.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "autograd/tape.h"
#include "base/error.h"
#include "base/rng.h"
#include "base/thread_pool.h"
#include "io/llama_loader.h"
#include "io/safetensors.h"
#include "model/llama.h"
#include "scratch.h"

using namespace mnemo;

namespace {

LlamaConfig tiny_config(bool tied) {
  LlamaConfig c;
  c.num_hidden_layers = 2, c.hidden_size = 32, c.num_attention_heads = 4, c.num_key_value_heads = 2;
  c.intermediate_size = 48, c.vocab_size = 67, c.max_position_embeddings = 64;
  c.rms_norm_eps = 1e-5f, c.rope_theta = 500.0f, c.tie_word_embeddings = tied;
  return c;
}

// Random weights large enough that attention is far from uniform (HF's 0.02 init would hide mistakes).
void randomize(Llama& m, uint64_t seed, float scale) {
  Rng r(seed);
  for (auto& p : m.params().all()) {
    float* d = p.value.data();
    for (int64_t i = 0; i < p.value.numel(); ++i)
      d[i] = p.value.rank() == 1 ? 1.0f + float(r.normal()) * 0.1f : float(r.normal()) * scale;
  }
}

std::vector<int32_t> random_ids(int64_t n, int64_t V, uint64_t seed) {
  Rng r(seed);
  std::vector<int32_t> ids(size_t(n), 0);
  for (auto& x : ids) x = int32_t(r.below(uint64_t(V)));
  return ids;
}

}  // namespace

TEST(LlamaModel, GradientMatchesFiniteDifferences) {
  Llama m(tiny_config(false));
  randomize(m, 1, 0.2f);
  const int64_t B = 2, T = 5;
  auto ids = random_ids(B * T, 67, 2);
  Tape t;
  Var loss = m.lm_loss(t, ids.data(), ids.data(), B, T);
  t.backward(loss);
  // Probe a few entries of every kind of parameter. Step 1e-2 in fp32 on a loss of O(4): rounding of the loss
  // (~4e-7 / 1e-2 = 4e-5) and truncation (~1e-4 h^2 terms) stay well under 1e-3 + 2 % of the gradient, while a
  // missing or wrong term (rotary sign, GQA head mapping, norm gradient) is off by O(gradient).
  Rng pick(3);
  for (auto& p : m.params().all()) {
    for (int probe = 0; probe < 3; ++probe) {
      int64_t i = int64_t(pick.below(uint64_t(p.value.numel())));
      float* w = p.value.data() + i;
      const float w0 = *w, h = 1e-2f;
      Tape tp(Tape::Mode::Inference);
      *w = w0 + h;
      float lp = m.lm_loss(tp, ids.data(), ids.data(), B, T).data()[0];
      tp.reset();
      *w = w0 - h;
      float lm = m.lm_loss(tp, ids.data(), ids.data(), B, T).data()[0];
      *w = w0;
      float num = (lp - lm) / (2 * h), ana = p.grad.data()[i];
      EXPECT_NEAR(ana, num, 1e-3 + 0.02 * std::fabs(num)) << p.name << "[" << i << "]";
    }
  }
}

TEST(LlamaModel, Bf16PrecisionIsCloseToFp32AndInferenceOnly) {
  // bf16 rounds the blocks' seven projections (model/precision.h): logits near fp32, not equal; fp32 again gives
  // the same bits as before; a recording tape refuses bf16.
  Llama m(tiny_config(true));
  randomize(m, 3, 0.2f);
  const auto ids = random_ids(12, 67, 4);
  Tape t(Tape::Mode::Inference);
  Tensor fp32 = m.forward(t, ids.data(), 2, 6).value.clone();
  m.set_precision(Precision::bf16);
  Tensor bf16 = m.forward(t, ids.data(), 2, 6).value.clone();
  double worst = 0, scale = 0;
  for (int64_t i = 0; i < fp32.numel(); ++i) {
    worst = std::max(worst, double(std::fabs(fp32[i] - bf16[i])));
    scale = std::max(scale, double(std::fabs(fp32[i])));
  }
  EXPECT_GT(worst, 1e-6 * scale);
  EXPECT_LT(worst, 3e-2 * scale);
  Tape train;
  EXPECT_THROW(m.forward(train, ids.data(), 2, 6), Error);
  m.set_precision(Precision::fp32);
  Tensor again = m.forward(t, ids.data(), 2, 6).value;
  for (int64_t i = 0; i < fp32.numel(); ++i) ASSERT_EQ(fp32[i], again[i]) << i;
}

TEST(LlamaModel, RunnerPrefillAndDecodeMatchTape) {
  for (bool tied : {false, true}) {
    Llama m(tiny_config(tied));
    randomize(m, 4, 0.2f);
    const int64_t T = 9, V = 67;
    auto ids = random_ids(T, V, 5);
    Tape t(Tape::Mode::Inference);
    Var ref = m.forward(t, ids.data(), 1, T);  // (T, V)
    LlamaRunner run(m.config(), m.weights(), 4, 16);
    auto cache = run.make_full_cache(16);
    std::vector<float> logits(size_t(T * V));
    // Prefill 4 tokens (GEMM path, all logits), then one token at a time (matvec path).
    run.forward(ids.data(), 4, 0, *cache, logits.data(), true);
    for (int64_t i = 4; i < T; ++i) run.forward(ids.data() + i, 1, i, *cache, logits.data() + i * V, false);
    // Same math, different summation order (GEMM blocking, vector lanes): fp32 agreement to ~1e-5 relative.
    for (int64_t i = 0; i < T * V; ++i)
      ASSERT_NEAR(logits[size_t(i)], ref.data()[i], 1e-4f * (1.0f + std::fabs(ref.data()[i]))) << "tied " << tied
                                                                                               << " at " << i;
    EXPECT_EQ(cache->size(0), T);
  }
}

TEST(LlamaModel, RunnerRejectsBadInput) {
  Llama m(tiny_config(true));
  LlamaRunner run(m.config(), m.weights(), 4, 8);
  auto cache = run.make_full_cache(8);
  std::vector<float> logits(67 * 8);
  int32_t bad = 67;
  EXPECT_THROW(run.forward(&bad, 1, 0, *cache, logits.data(), false), Error);
  int32_t ids[5] = {1, 2, 3, 4, 5};
  EXPECT_THROW(run.forward(ids, 5, 0, *cache, logits.data(), true), Error);  // more than max_batch
}

TEST(LlamaModel, ConfigErrorsNameTheFieldAndDirectoryRoundTrips) {
  Json j = tiny_config(false).to_json();
  j["num_key_value_heads"] = 3;
  try {
    LlamaConfig::from_json(j, "x/config.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x/config.json: num_key_value_heads 3"), std::string::npos) << e.what();
  }
  j = tiny_config(false).to_json();
  j["rope_scaling"] = Json::object();
  j["rope_scaling"]["rope_type"] = "yarn";
  EXPECT_THROW(LlamaConfig::from_json(j, "x/config.json"), Error);

  Llama m(tiny_config(false));
  randomize(m, 6, 0.2f);
  const std::string dir = scratch_dir();
  save_llama_dir(dir, m, DType::F32);
  auto back = load_llama_dir(dir);
  for (int64_t i = 0; i < m.params().size(); ++i) {
    const auto& a = m.params()[i];
    const auto& b = back->params()[i];
    ASSERT_EQ(a.name, b.name);
    for (int64_t k = 0; k < a.value.numel(); ++k) ASSERT_EQ(a.value[k], b.value[k]) << a.name;
  }
}

// Against transformers: tests/oracle/test_llama.py writes DIR (an HF Llama directory and expected.safetensors with
// ids, labels, logits, loss and grad.<name> for every parameter) and runs this test with MNEMO_LLAMA_ORACLE_DIR.
TEST(LlamaOracle, MatchesTransformers) {
  const char* dir = std::getenv("MNEMO_LLAMA_ORACLE_DIR");
  if (!dir) GTEST_SKIP() << "run by tests/oracle/test_llama.py";
  auto m = load_llama_dir(dir);
  SafetensorsFile ex(std::string(dir) + "/expected.safetensors");
  Tensor ids_f = ex.tensor("ids"), labels_f = ex.tensor("labels"), want = ex.tensor("logits");
  const int64_t B = ids_f.dim(0), T = ids_f.dim(1), V = m->config().vocab_size;
  std::vector<int32_t> ids(size_t(B * T)), labels(size_t(B * T));
  for (int64_t i = 0; i < B * T; ++i) ids[size_t(i)] = int32_t(ids_f[i]), labels[size_t(i)] = int32_t(labels_f[i]);
  Tape t;
  Var logits;
  Var loss = m->lm_loss(t, ids.data(), labels.data(), B, T, &logits);
  t.backward(loss);
  // fp32 both sides, different summation orders: logits O(1) agree to ~1e-5; 1e-4 leaves margin for 2 layers.
  float max_logit = 0.0f;
  for (int64_t i = 0; i < B * T * V; ++i) {
    max_logit = std::max(max_logit, std::fabs(logits.data()[i] - want[i]));
    ASSERT_NEAR(logits.data()[i], want[i], 1e-4f * (1.0f + std::fabs(want[i]))) << "logit " << i;
  }
  EXPECT_NEAR(loss.data()[0], ex.tensor("loss")[0], 1e-5f * (1.0f + std::fabs(ex.tensor("loss")[0])));
  for (auto& p : m->params().all()) {
    Tensor g = ex.tensor("grad." + p.name);
    ASSERT_EQ(g.numel(), p.grad.numel()) << p.name;
    float scale = 0.0f;
    for (int64_t i = 0; i < g.numel(); ++i) scale = std::max(scale, std::fabs(g[i]));
    // Gradients relative to the tensor's largest entry: 1e-4 (fp32 sums over B*T rows in different orders).
    for (int64_t i = 0; i < g.numel(); ++i)
      ASSERT_NEAR(p.grad[i], g[i], 1e-4f * scale + 1e-7f) << p.name << "[" << i << "]";
  }
  // The runner (prefill of half, then cached decode) on row 0 matches transformers' logits too.
  LlamaRunner run(m->config(), m->weights(), T, T);
  auto cache = run.make_full_cache(T);
  std::vector<float> out(size_t(T * V));
  const int64_t half = T / 2;
  run.forward(ids.data(), half, 0, *cache, out.data(), true);
  for (int64_t i = half; i < T; ++i) run.forward(ids.data() + i, 1, i, *cache, out.data() + i * V, false);
  for (int64_t i = 0; i < T * V; ++i) ASSERT_NEAR(out[size_t(i)], want[i], 1e-4f * (1.0f + std::fabs(want[i])));
  std::printf("max |logit difference| vs transformers: %.3g\n", double(max_logit));
}

// Decode splits every matrix by rows and attention by entries / heads / dims, each output computed by one worker
// in a fixed order: logits must be bit-identical for 1 and 2 workers and from run to run. A long enough cache
// (> 4096 / H entries) takes the parallel attention path.
TEST(LlamaModel, DecodeIsIdenticalForAnyThreadCount) {
  LlamaConfig c = tiny_config(false);
  c.max_position_embeddings = 2048;
  Llama m(c);
  randomize(m, 7, 0.2f);
  const int64_t T = 1100, V = c.vocab_size;
  auto ids = random_ids(T, V, 8);
  auto run_all = [&](int threads) {
    set_num_threads(threads);
    LlamaRunner run(m.config(), m.weights(), 512, T);
    auto cache = run.make_full_cache(T);
    std::vector<float> logits(static_cast<size_t>(V));
    std::vector<float> out;
    for (int64_t b0 = 0; b0 < T - 4; b0 += 512) {
      const int64_t n = std::min<int64_t>(512, T - 4 - b0);
      run.forward(ids.data() + b0, n, b0, *cache, logits.data(), false);
    }
    for (int64_t i = T - 4; i < T; ++i) {
      run.forward(ids.data() + i, 1, i, *cache, logits.data(), false);
      out.insert(out.end(), logits.begin(), logits.end());
    }
    return out;
  };
  const int before = num_threads();
  auto a = run_all(2), b = run_all(2);
  // The prefill GEMM may block differently for 1 worker, so compare 1 vs 2 workers on decode from one prefill.
  EXPECT_EQ(a, b);
  set_num_threads(1);
  {
    LlamaRunner run1(m.config(), m.weights(), 512, T);
    auto c1 = run1.make_full_cache(T), c2 = run1.make_full_cache(T);
    std::vector<float> l1(static_cast<size_t>(V)), l2(static_cast<size_t>(V));
    for (int64_t b0 = 0; b0 < T - 1; b0 += 512)
      run1.forward(ids.data() + b0, std::min<int64_t>(512, T - 1 - b0), b0, *c1, l1.data(), false);
    for (int64_t b0 = 0; b0 < T - 1; b0 += 512)
      run1.forward(ids.data() + b0, std::min<int64_t>(512, T - 1 - b0), b0, *c2, l2.data(), false);
    run1.forward(ids.data() + T - 1, 1, T - 1, *c1, l1.data(), false);  // one worker
    set_num_threads(2);
    run1.forward(ids.data() + T - 1, 1, T - 1, *c2, l2.data(), false);  // two workers, same cache contents
    EXPECT_EQ(l1, l2);
  }
  set_num_threads(before);
}
