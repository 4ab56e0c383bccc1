// Decoding SmolLM2 with 8-bit activations (set_int8_decode: what `mnemo generate` and `chat` use) against fp32
// activations, which tests/oracle/test_llama.py holds to transformers within 2e-3 on logits. Teacher-forced over a
// sentence, one token per step, the logits of every step must agree as closely as llama.cpp's (which also rounds
// activations to 8 bits) agree with transformers in test_smollm2_llamacpp: mean |difference| < 0.5, max < 4,
// the same argmax on >= 90 % of steps, total NLL within 2 %. (Measured here: docs/llama.md, "Exactness".)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "base/file.h"
#include "io/gguf_tokenizer.h"
#include "io/llama_loader.h"
#include "tensor/quant.h"

using namespace mnemo;

namespace {

// Logits (T - 1, V) of steps 0 .. T-2: the first token as a one-token prompt, then one token per decode step.
std::vector<float> decode_logits(Decoder& dec, const std::vector<int32_t>& ids, bool int8) {
  const int64_t T = int64_t(ids.size()), V = dec.vocab_size();
  set_int8_decode(int8);
  auto cache = dec.make_full_cache(T);
  std::vector<float> logits(size_t((T - 1) * V));
  for (int64_t i = 0; i + 1 < T; ++i) dec.forward(&ids[size_t(i)], 1, i, *cache, logits.data() + i * V, false);
  set_int8_decode(false);
  return logits;
}

double nll(const float* l, int64_t V, int32_t target) {
  double mx = *std::max_element(l, l + V), s = 0;
  for (int64_t v = 0; v < V; ++v) s += std::exp(double(l[v]) - mx);
  return std::log(s) + mx - double(l[target]);
}

}  // namespace

TEST(LlamaInt8Decode, SmolLM2StaysWithinLlamaCppsDistanceOfFp32) {
  const std::string path = std::string(MNEMO_DATA_DIR) + "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!file_exists(path)) GTEST_SKIP() << path << " not present (scripts/setup fetches it)";
  const std::vector<int32_t> ids = load_any_tokenizer(path)->encode(
      "The whale is the largest animal that has ever lived on Earth. A blue whale can grow longer than thirty metres, "
      "and its heart alone weighs as much as a small car.");
  ASSERT_GE(ids.size(), 30u);
  auto dec = load_decoder(path, 1, int64_t(ids.size()));
  const int64_t steps = int64_t(ids.size()) - 1, V = dec->vocab_size();
  const std::vector<float> exact = decode_logits(*dec, ids, false), q8 = decode_logits(*dec, ids, true);
  double sum_abs = 0, max_abs = 0, nll_exact = 0, nll_q8 = 0;
  int same_argmax = 0;
  for (int64_t i = 0; i < steps; ++i) {
    const float *a = exact.data() + i * V, *b = q8.data() + i * V;
    for (int64_t v = 0; v < V; ++v) {
      sum_abs += std::fabs(double(a[v]) - b[v]);
      max_abs = std::max(max_abs, std::fabs(double(a[v]) - b[v]));
    }
    same_argmax += std::max_element(a, a + V) - a == std::max_element(b, b + V) - b;
    nll_exact += nll(a, V, ids[size_t(i + 1)]);
    nll_q8 += nll(b, V, ids[size_t(i + 1)]);
  }
  const double mean_abs = sum_abs / double(steps * V);
  std::printf("int8 vs fp32 decode, %lld steps: mean |d| %.4f, max |d| %.3f, argmax %d/%lld, NLL %.4f vs %.4f\n",
              static_cast<long long>(steps), mean_abs, max_abs, same_argmax, static_cast<long long>(steps), nll_q8,
              nll_exact);
  EXPECT_GT(mean_abs, 0.0);  // the int8 path did run
  EXPECT_LT(mean_abs, 0.5);
  EXPECT_LT(max_abs, 4.0);
  EXPECT_GE(same_argmax, 0.9 * double(steps));
  EXPECT_NEAR(nll_q8, nll_exact, 0.02 * nll_exact);
}
