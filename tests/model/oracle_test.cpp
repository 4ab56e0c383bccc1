// mnemo vs Hugging Face transformers, on data tests/oracle/models_oracle.py writes to $MNEMO_ORACLE_DIR (run by
// tests/oracle/test_models.py). Without the variable these tests skip; with it, missing files are a FAILURE.
//
// Tolerances. Both sides compute in fp32 with different summation orders (oneDNN vs MKL/ATen blocking, fused vs
// separate softmax), so each output carries a relative rounding error of roughly sqrt(K) * 2^-24 per reduction of
// length K, amplified a little by each layer; for these 2-layer models that is ~1e-6 of the output's scale. We
// allow 1e-4 of the scale (max |reference|) for logits and losses, and 1e-3 of each gradient tensor's scale
// (gradients go through twice as many reductions, and softmax/LayerNorm backward subtract nearly equal terms). A
// real bug — a transposed weight, a missing mask, a wrong GELU — is off by O(1) of the scale. The real MiniLM
// (6 layers, d=384, sequences to 128) gets 2e-4 of the hidden-state scale for the same reason, over more layers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "autograd/ops.h"
#include "base/file.h"
#include "io/model_dir.h"

namespace mnemo {
namespace {

// $MNEMO_ORACLE_DIR, or skip. Files under it must exist (checked by the callers with ASSERT).
std::string oracle_root() {
  const char* d = std::getenv("MNEMO_ORACLE_DIR");
  return d ? d : "";
}

#define REQUIRE_ORACLE()                                                                  \
  const std::string root = oracle_root();                                                 \
  if (root.empty()) GTEST_SKIP() << "MNEMO_ORACLE_DIR not set (tests/oracle/test_models.py sets it)"

// Max |a - b| over max(|b|), with the scale; reported so the achieved tolerances can be read off the log.
struct Diff {
  double max_abs = 0, scale = 0;
  double rel() const { return max_abs / std::max(scale, 1e-30); }
};

Diff compare(const float* a, const float* b, int64_t n) {
  Diff d;
  for (int64_t i = 0; i < n; ++i) {
    d.max_abs = std::max(d.max_abs, double(std::fabs(a[i] - b[i])));
    d.scale = std::max(d.scale, double(std::fabs(b[i])));
  }
  return d;
}

std::vector<int32_t> ints(const Tensor& t) {
  std::vector<int32_t> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = int32_t(t[i]);
  return v;
}

// Every parameter's gradient against "grad.<name>" (HF layout: Conv1D weights are (in, out)).
void compare_grads(const std::string& what, const ParameterSet& ps, const SafetensorsFile& o, double tol) {
  double worst = 0;
  std::string worst_name;
  for (const auto& p : ps.all()) {
    std::string key = "grad." + p.name;
    if (!o.contains(key) && p.name == "cls.predictions.bias") key = "grad.cls.predictions.decoder.bias";
    ASSERT_TRUE(o.contains(key)) << o.path() << ": no " << key;
    Tensor ref = o.tensor(key, p.disk_shape());
    Tensor mine = p.grad;
    if (p.transposed_on_disk) {  // bring ours to (in, out)
      const int64_t in = p.disk_shape()[0], out = p.disk_shape()[1];
      mine = Tensor::zeros({in, out});
      for (int64_t i = 0; i < in; ++i)
        for (int64_t k = 0; k < out; ++k) mine[i * out + k] = p.grad[k * in + i];
    }
    Diff d = compare(mine.data(), ref.data(), ref.numel());
    EXPECT_LE(d.max_abs, tol * d.scale + 1e-7) << what << " gradient of " << p.name << ": max |diff| " << d.max_abs
                                                << ", scale " << d.scale;
    // Key biases get (mathematically) zero gradient — softmax ignores a constant shift of a query's scores — so
    // both sides hold rounding noise there; those pass the absolute floor and stay out of the reported worst.
    if (d.scale > 1e-5 && d.rel() > worst) worst = d.rel(), worst_name = p.name;
  }
  std::printf("oracle %s: worst gradient max|diff|/scale = %.3g (%s)\n", what.c_str(), worst, worst_name.c_str());
}

TEST(OracleModels, Gpt2LogitsLossAndGradients) {
  REQUIRE_ORACLE();
  const std::string dir = join_path(root, "gpt2");
  ASSERT_TRUE(file_exists(join_path(dir, "oracle.safetensors"))) << dir << ": oracle files missing";
  SafetensorsFile o(join_path(dir, "oracle.safetensors"));
  auto model = load_gpt2(dir);
  const Tensor ids_t = o.tensor("ids");  // (B,T)
  const int64_t B = ids_t.dim(0), T = ids_t.dim(1);
  std::vector<int32_t> ids = ints(ids_t), labels = ints(o.tensor("labels"));
  Tape t;
  Var logits;
  Var loss = model->lm_loss(t, ids.data(), labels.data(), B, T, &logits);
  t.backward(loss);
  Tensor ref = o.tensor("logits", {B, T, model->config().vocab_size});
  Diff d = compare(logits.data(), ref.data(), ref.numel());
  EXPECT_LE(d.max_abs, 1e-4 * d.scale) << "logits: max |diff| " << d.max_abs << ", scale " << d.scale;
  const float ref_loss = o.tensor("loss")[0];
  EXPECT_NEAR(loss.value[0], ref_loss, 1e-4 * std::fabs(ref_loss));
  std::printf("oracle gpt2: logits max|diff|/scale = %.3g, loss %.7f vs %.7f\n", d.rel(), loss.value[0], ref_loss);
  compare_grads("gpt2", model->params(), o, 1e-3);

  // KV-cache decoding reproduces transformers' logits token by token.
  FullKvCache cache(int(model->config().n_layer), model->config().n_head,
                    model->config().n_embd / model->config().n_head, T);
  std::vector<float> step(size_t(model->config().vocab_size));
  Diff dd;
  for (int64_t i = 0; i < T; ++i) {
    model->decode(ids[size_t(i)], i, cache, step.data());
    Diff di = compare(step.data(), ref.data() + i * model->config().vocab_size, model->config().vocab_size);
    dd.max_abs = std::max(dd.max_abs, di.max_abs), dd.scale = std::max(dd.scale, di.scale);
  }
  EXPECT_LE(dd.max_abs, 1e-4 * dd.scale) << "decode logits";
  std::printf("oracle gpt2 decode: logits max|diff|/scale = %.3g\n", dd.rel());

  save_model_dir(dir + "_resaved", *model);
}

void bert_case(const std::string& name) {
  const std::string root = oracle_root();
  const std::string dir = join_path(root, name);
  ASSERT_TRUE(file_exists(join_path(dir, "oracle.safetensors"))) << dir << ": oracle files missing";
  SafetensorsFile o(join_path(dir, "oracle.safetensors"));
  auto model = load_bert(dir);
  const Tensor ids_t = o.tensor("ids");  // (B,T)
  const int64_t B = ids_t.dim(0), T = ids_t.dim(1);
  std::vector<int32_t> ids = ints(ids_t), types = ints(o.tensor("types")), labels = ints(o.tensor("labels"));
  std::vector<uint8_t> valid;
  for (int32_t m : ints(o.tensor("mask"))) valid.push_back(uint8_t(m != 0));
  Tape t;
  Var h = model->encode(t, ids.data(), types.data(), valid.data(), B, T);
  Var logits = model->config().head == BertHead::MaskedLM ? model->mlm_logits(t, h) : model->classify(t, h, B, T);
  Var loss = ag::cross_entropy(t, logits, labels.data());
  t.backward(loss);
  Tensor ref = o.tensor("logits");
  ASSERT_EQ(ref.numel(), logits.value.numel());
  Diff d = compare(logits.data(), ref.data(), ref.numel());
  EXPECT_LE(d.max_abs, 1e-4 * d.scale) << name << " logits: max |diff| " << d.max_abs << ", scale " << d.scale;
  const float ref_loss = o.tensor("loss")[0];
  EXPECT_NEAR(loss.value[0], ref_loss, 1e-4 * std::fabs(ref_loss));
  std::printf("oracle %s: logits max|diff|/scale = %.3g, loss %.7f vs %.7f\n", name.c_str(), d.rel(), loss.value[0],
              ref_loss);
  compare_grads(name, model->params(), o, 1e-3);
  save_model_dir(dir + "_resaved", *model);
}

TEST(OracleModels, BertMaskedLmWithPadding) {
  REQUIRE_ORACLE();
  bert_case("bert_mlm");
}

TEST(OracleModels, BertSequenceClassificationWithPadding) {
  REQUIRE_ORACLE();
  bert_case("bert_cls");
}

// The real MiniLM on real sentences, batched 16 at a time and padded to the longest (transformers batched 32).
TEST(OracleMiniLm, HiddenStatesMatchTransformers) {
  REQUIRE_ORACLE();
  const std::string path = join_path(root, "minilm.safetensors");
  ASSERT_TRUE(file_exists(path)) << path << ": oracle file missing";
  SafetensorsFile o(path);
  auto model = load_bert(std::string(MNEMO_DATA_DIR) + "/models/minilm-l6-h384");
  const int64_t C = model->config().hidden_size;
  std::vector<int32_t> ids = ints(o.tensor("ids")), lengths = ints(o.tensor("lengths"));
  Tensor ref = o.tensor("hidden");  // (total tokens, C)
  std::vector<int64_t> starts;
  int64_t total = 0;
  for (int32_t n : lengths) starts.push_back(total), total += n;
  ASSERT_EQ(ref.numel(), total * C);
  Tape t(Tape::Mode::Inference);
  Diff all;
  const int64_t S = int64_t(lengths.size()), batch = 16;
  for (int64_t s0 = 0; s0 < S; s0 += batch) {
    const int64_t B = std::min(batch, S - s0);
    int64_t T = 0;
    for (int64_t b = 0; b < B; ++b) T = std::max<int64_t>(T, lengths[size_t(s0 + b)]);
    std::vector<int32_t> bid(size_t(B * T), 0);  // (B,T), padded with [PAD] = 0
    std::vector<uint8_t> valid(size_t(B * T), 0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < lengths[size_t(s0 + b)]; ++i) {
        bid[size_t(b * T + i)] = ids[size_t(starts[size_t(s0 + b)] + i)];
        valid[size_t(b * T + i)] = 1;
      }
    t.reset();
    Var h = model->encode(t, bid.data(), nullptr, valid.data(), B, T);  // (B*T, C)
    for (int64_t b = 0; b < B; ++b) {
      const int64_t n = lengths[size_t(s0 + b)];
      Diff d = compare(h.data() + b * T * C, ref.data() + starts[size_t(s0 + b)] * C, n * C);
      all.max_abs = std::max(all.max_abs, d.max_abs), all.scale = std::max(all.scale, d.scale);
    }
  }
  EXPECT_LE(all.max_abs, 2e-4 * all.scale) << "MiniLM hidden states: max |diff| " << all.max_abs << ", scale "
                                           << all.scale;
  std::printf("oracle minilm: %lld sentences, %lld tokens, hidden max|diff| = %.3g, scale %.3g, rel %.3g\n",
              (long long)S, (long long)total, all.max_abs, all.scale, all.rel());
}

}  // namespace
}  // namespace mnemo
