// Whole-model gradient checks (a 2-layer tiny GPT-2 and BERT: every parameter tensor, a few entries each, against
// finite differences; tolerances in ../autograd/gradcheck.h), decode-vs-forward agreement, observers, configs.
#include <gtest/gtest.h>

#include <cmath>

#include "../autograd/gradcheck.h"
#include "autograd/ops.h"
#include "base/error.h"
#include "model/bert.h"
#include "model/gpt2.h"

namespace mnemo {
namespace {

using testing::Checked;
using testing::gradcheck;

// Weights large enough that every gradient is O(0.1): with HF's N(0, 0.02) most gradients would sit below the
// checker's absolute tolerance and a wrong one could pass.
void randomize(ParameterSet& ps, uint64_t seed) {
  Rng rng(seed);
  for (auto& p : ps.all()) {
    const bool ln = p.name.find("ln_") != std::string::npos || p.name.find("LayerNorm") != std::string::npos;
    const bool is_weight = p.name.size() > 6 && p.name.compare(p.name.size() - 6, 6, "weight") == 0;
    for (int64_t i = 0; i < p.value.numel(); ++i)
      p.value[i] = (ln && is_weight ? 1.0f : 0.0f) + float(rng.normal()) * 0.3f;
  }
}

std::vector<Checked> all_params(ParameterSet& ps) {
  std::vector<Checked> out;
  for (auto& p : ps.all()) out.push_back(Checked{p.name, p.value, p.grad});
  return out;
}

Gpt2Config tiny_gpt2() {
  Gpt2Config c;
  c.n_layer = 2, c.n_head = 2, c.n_embd = 8, c.n_positions = 8, c.vocab_size = 13;
  return c;
}

BertConfig tiny_bert(BertHead head) {
  BertConfig c;
  c.num_hidden_layers = 2, c.hidden_size = 8, c.num_attention_heads = 2, c.intermediate_size = 12;
  c.max_position_embeddings = 8, c.type_vocab_size = 2, c.vocab_size = 11, c.num_labels = 3, c.head = head;
  return c;
}

TEST(Gpt2, ParameterNamesAndShapesAreHfs) {
  Gpt2 m(tiny_gpt2());
  const Parameter* p = m.params().find("transformer.h.1.attn.c_attn.weight");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->value.shape(), (Shape{24, 8}));
  EXPECT_EQ(p->disk_shape(), (Shape{8, 24}));  // Conv1D (in, out)
  EXPECT_NE(m.params().find("transformer.ln_f.bias"), nullptr);
  EXPECT_EQ(m.params().find("lm_head.weight"), nullptr);  // tied to transformer.wte.weight
  EXPECT_EQ(m.params().size(), 4 + 2 * 12);
}

TEST(Gpt2, LossGradientsMatchFiniteDifferences) {
  Gpt2 m(tiny_gpt2());
  randomize(m.params(), 1);
  const int64_t B = 2, T = 5;
  const int32_t ids[] = {1, 5, 7, 2, 12, 0, 3, 3, 9, 4};
  const int32_t labels[] = {1, 5, 7, -100, 12, 0, 3, 3, 9, 4};  // one ignored label
  int n = gradcheck([&](Tape& t) { return m.lm_loss(t, ids, labels, B, T); }, all_params(m.params()),
                    {.atol = 5e-4f, .entries = 3});
  EXPECT_EQ(n, 3 * int(m.params().size()));
}

TEST(Gpt2, DecodeWithCacheMatchesForward) {
  Gpt2 m(tiny_gpt2());
  randomize(m.params(), 2);
  const int64_t T = 8;
  const int32_t ids[] = {4, 1, 12, 7, 7, 0, 3, 9};
  Tape t(Tape::Mode::Inference);
  Var logits = m.forward(t, ids, 1, T);  // (T,V)
  FullKvCache cache(2, 2, 4, T);
  std::vector<float> step(13);
  int observed = 0;
  LayerObserver obs = [&](int layer, const float* p, const AttentionShape& s) {
    EXPECT_EQ(s.Tk, s.q_offset + 1);
    double sum = 0;
    for (int64_t j = 0; j < s.Tk; ++j) sum += p[j];
    EXPECT_NEAR(sum, 1.0, 1e-5);
    observed += layer == 1;
  };
  for (int64_t i = 0; i < T; ++i) {
    m.decode(ids[i], i, cache, step.data(), &obs);
    for (int64_t v = 0; v < 13; ++v)
      // Same arithmetic in a different order (matvec vs GEMM, one row vs many): fp32 rounding only.
      EXPECT_NEAR(step[size_t(v)], logits.value[i * 13 + v], 1e-4f) << "position " << i << " token " << v;
  }
  EXPECT_EQ(observed, T);
  EXPECT_EQ(cache.size(0), T);
  EXPECT_THROW(m.decode(1, T, cache, step.data()), Error);  // position T is past n_positions
}

TEST(Gpt2, ObserverSeesEveryLayer) {
  Gpt2 m(tiny_gpt2());
  randomize(m.params(), 3);
  const int32_t ids[] = {1, 2, 3, 4};
  std::vector<int> layers;
  LayerObserver obs = [&](int layer, const float*, const AttentionShape& s) {
    layers.push_back(layer);
    EXPECT_TRUE(s.causal);
    EXPECT_EQ(s.Tq, 4);
  };
  Tape t(Tape::Mode::Inference);
  m.forward(t, ids, 1, 4, nullptr, &obs);
  EXPECT_EQ(layers, (std::vector<int>{0, 1}));
}

TEST(Gpt2, RejectsBadInput) {
  Gpt2 m(tiny_gpt2());
  Tape t(Tape::Mode::Inference);
  const int32_t bad[] = {1, 13};
  EXPECT_THROW(m.forward(t, bad, 1, 2), Error);
  std::vector<int32_t> too_long(9, 1);
  EXPECT_THROW(m.forward(t, too_long.data(), 1, 9), Error);
}

// MLM with padding: the loss only covers labelled (masked) positions of valid tokens.
TEST(Bert, MaskedLmGradientsMatchFiniteDifferences) {
  Bert m(tiny_bert(BertHead::MaskedLM));
  randomize(m.params(), 4);
  const int64_t B = 2, T = 5;
  const int32_t ids[] = {2, 5, 7, 3, 10, 2, 4, 9, 0, 0};
  const int32_t types[] = {0, 0, 1, 1, 1, 0, 0, 1, 0, 0};
  const uint8_t valid[] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  const int32_t labels[] = {-100, 6, -100, 3, 1, -100, 8, -100, -100, -100};
  int n = gradcheck(
      [&](Tape& t) {
        Var h = m.encode(t, ids, types, valid, B, T);
        return ag::cross_entropy(t, m.mlm_logits(t, h), labels);
      },
      all_params(m.params()), {.atol = 5e-4f, .entries = 3});
  EXPECT_EQ(n, 3 * int(m.params().size()));
  EXPECT_EQ(m.params().find("bert.pooler.dense.weight"), nullptr);  // BertForMaskedLM has no pooler
}

TEST(Bert, SequenceClassificationGradientsMatchFiniteDifferences) {
  Bert m(tiny_bert(BertHead::SequenceClassification));
  randomize(m.params(), 5);
  const int64_t B = 2, T = 4;
  const int32_t ids[] = {2, 5, 7, 3, 2, 4, 0, 0};
  const uint8_t valid[] = {1, 1, 1, 1, 1, 1, 0, 0};
  const int32_t labels[] = {2, 0};
  gradcheck(
      [&](Tape& t) {
        Var h = m.encode(t, ids, nullptr, valid, B, T);
        return ag::cross_entropy(t, m.classify(t, h, B, T), labels);
      },
      all_params(m.params()), {.atol = 5e-4f, .entries = 3});
}

TEST(Bert, PaddingDoesNotChangeValidPositions) {
  // A sequence alone and the same sequence padded in a batch give the same hidden states at its positions.
  Bert m(tiny_bert(BertHead::None));
  randomize(m.params(), 6);
  const int32_t one[] = {2, 5, 7};
  const int32_t padded[] = {2, 5, 7, 0, 0, 3, 4, 6, 8, 9};
  const uint8_t valid[] = {1, 1, 1, 0, 0, 1, 1, 1, 1, 1};
  Tape t(Tape::Mode::Inference);
  Tensor a = m.encode(t, one, nullptr, nullptr, 1, 3).value.clone();
  Tensor b = m.encode(t, padded, nullptr, valid, 2, 5).value;
  for (int64_t i = 0; i < 3 * 8; ++i) EXPECT_NEAR(a[i], b[i], 1e-5f);
  EXPECT_NE(m.params().find("pooler.dense.weight"), nullptr);  // BertModel names carry no prefix
  EXPECT_NE(m.params().find("embeddings.word_embeddings.weight"), nullptr);
}

TEST(Bert, Bf16PrecisionIsCloseToFp32AndInferenceOnly) {
  // bf16 rounds the blocks' weights and their inputs (model/precision.h): near fp32, not equal to it; back at fp32
  // the model gives exactly its fp32 states again; a recording tape refuses bf16.
  BertConfig c = tiny_bert(BertHead::None);
  c.hidden_size = 32, c.intermediate_size = 48;  // products long enough to show bf16 rounding
  Bert m(c);
  m.init_random(7);
  const int32_t ids[] = {2, 5, 7, 1, 9, 3};
  Tape t(Tape::Mode::Inference);
  Tensor fp32 = m.encode(t, ids, nullptr, nullptr, 2, 3).value.clone();
  m.set_precision(Precision::bf16);
  EXPECT_EQ(m.precision(), Precision::bf16);
  Tensor bf16 = m.encode(t, ids, nullptr, nullptr, 2, 3).value.clone();
  double worst = 0;  // post-LayerNorm states are O(1)
  for (int64_t i = 0; i < fp32.numel(); ++i) worst = std::max(worst, double(std::fabs(fp32[i] - bf16[i])));
  EXPECT_GT(worst, 1e-6);
  EXPECT_LT(worst, 3e-2);
  Tape train;
  try {
    m.encode(train, ids, nullptr, nullptr, 2, 3);
    ADD_FAILURE() << "a recording tape accepted bf16";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "bf16 linear layers are for inference: training needs fp32 weights");
  }
  m.set_precision(Precision::fp32);
  Tensor again = m.encode(t, ids, nullptr, nullptr, 2, 3).value;
  for (int64_t i = 0; i < fp32.numel(); ++i) ASSERT_EQ(fp32[i], again[i]) << i;
  EXPECT_THROW(parse_precision("f16", "--precision"), Error);
}

TEST(Bert, RejectsBadInput) {
  Bert m(tiny_bert(BertHead::None));
  Tape t(Tape::Mode::Inference);
  const int32_t ids[] = {1, 11};
  EXPECT_THROW(m.encode(t, ids, nullptr, nullptr, 1, 2), Error);
  const int32_t ok[] = {1, 2}, types[] = {0, 2};
  EXPECT_THROW(m.encode(t, ok, types, nullptr, 1, 2), Error);
}

TEST(Config, ParsesHfKeysAndRejectsBadOnes) {
  Json g = Json::parse(R"({"model_type":"gpt2","n_layer":3,"n_head":4,"n_embd":64,"n_positions":32,
                           "vocab_size":100,"layer_norm_epsilon":1e-5,"activation_function":"gelu_new","n_inner":null})");
  Gpt2Config gc = Gpt2Config::from_json(g, "cfg.json");
  EXPECT_EQ(gc.n_layer, 3);
  EXPECT_EQ(gc.inner(), 256);
  EXPECT_EQ(gc.gelu(), Gelu::Tanh);
  EXPECT_EQ(Gpt2Config::from_json(gc.to_json(), "x").n_embd, 64);
  auto fails = [](const char* text, const char* want) {
    try {
      Gpt2Config::from_json(Json::parse(text), "cfg.json");
      ADD_FAILURE() << "accepted " << text;
    } catch (const Error& e) {
      std::string m = e.what();
      EXPECT_NE(m.find("cfg.json"), std::string::npos) << m;
      EXPECT_NE(m.find(want), std::string::npos) << m;
    }
  };
  fails(R"({"n_head":5,"n_embd":64})", "n_head");
  fails(R"({"n_layer":"two"})", "n_layer");
  fails(R"({"activation_function":"relu"})", "activation_function");
  fails(R"([1,2])", "object");

  Json b = Json::parse(R"({"model_type":"bert","architectures":["BertForSequenceClassification"],
                           "hidden_size":32,"num_attention_heads":4,"id2label":{"0":"a","1":"b","2":"c"}})");
  BertConfig bc = BertConfig::from_json(b, "b.json");
  EXPECT_EQ(bc.head, BertHead::SequenceClassification);
  EXPECT_EQ(bc.num_labels, 3);
  EXPECT_EQ(bc.gelu(), Gelu::Erf);
  EXPECT_THROW(BertConfig::from_json(Json::parse(R"({"architectures":["BertForQuestionAnswering"]})"), "b"), Error);
  EXPECT_THROW(model_type_of(Json::parse(R"({"model_type":"t5"})"), "c"), Error);
}

}  // namespace
}  // namespace mnemo
