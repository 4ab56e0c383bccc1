// The Recurrent Memory Transformer on a tiny BERT: the memory-writing op, gradients through the memory by finite
// differences, truncated BPTT, streaming inference against the batched pass, constant arena, model directories.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "autograd/ops.h"
#include "base/error.h"
#include "base/file.h"
#include "base/rng.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "memory/rmt.h"
#include "memory/rmt_dir.h"
#include "memory/rmt_ops.h"
#include "scratch.h"

using namespace mnemo;

namespace {

BertConfig tiny_bert() {
  BertConfig c;
  c.num_hidden_layers = 2, c.hidden_size = 16, c.num_attention_heads = 2, c.intermediate_size = 32;
  c.max_position_embeddings = 32, c.vocab_size = 40, c.head = BertHead::SequenceClassification, c.num_labels = 6;
  return c;
}

RmtConfig tiny_rmt() {
  RmtConfig r;
  r.num_mem_tokens = 2, r.segment_tokens = 5, r.cls_id = 1, r.sep_id = 2, r.pad_id = 0;
  r.labels = {"bathroom", "hallway", "garden", "office", "bedroom", "kitchen"};
  return r;
}

// Weights larger than HF's 0.02 so gradients through several segments are well above fp32 noise.
std::unique_ptr<RmtEncoder> tiny_model(uint64_t seed) {
  auto m = std::make_unique<RmtEncoder>(tiny_bert(), tiny_rmt());
  Rng rng(seed);
  for (auto& p : m->backbone().params().all()) {
    const bool ln = p.name.find("LayerNorm") != std::string::npos;
    for (int64_t i = 0; i < p.value.numel(); ++i)
      p.value[i] = ln && p.name.find("weight") != std::string::npos ? 1.0f + 0.1f * float(rng.normal())
                                                                    : 0.3f * float(rng.normal());
  }
  m->init_memory(seed + 7);
  for (int64_t i = 0; i < m->memory_params()[0].value.numel(); ++i) m->memory_params()[0].value[i] *= 30.0f;
  return m;
}

RmtBatch tiny_batch(int64_t B, int64_t S, uint64_t seed) {
  Rng rng(seed);
  RmtBatch b;
  b.B = B, b.S = S;
  const int64_t L = tiny_rmt().segment_tokens;
  for (int64_t i = 0; i < S * B * L; ++i) b.text.push_back(int32_t(3 + rng.below(37)));
  for (int64_t i = 0; i < S * B; ++i) b.lengths.push_back(int32_t(i % 3 == 2 ? 3 : L));  // some short rows
  for (int64_t i = 0; i < B; ++i) b.labels.push_back(int32_t(rng.below(6)));
  return b;
}

double loss_of(RmtEncoder& m, const RmtBatch& b) {
  Tape t(Tape::Mode::Inference), s(Tape::Mode::Inference);
  return rmt_forward(m, t, s, b, 0).loss;
}

std::vector<Parameter*> all_params(RmtEncoder& m) {
  std::vector<Parameter*> ps;
  for (auto& p : m.backbone().params().all()) ps.push_back(&p);
  ps.push_back(&m.memory_params()[0]);
  return ps;
}

void zero_all(RmtEncoder& m) {
  m.backbone().params().zero_grad();
  m.memory_params().zero_grad();
}

}  // namespace

TEST(RmtOps, ScatterRowsGradient) {
  // out = x with rows {3, 0} replaced by src; loss = sum(out * w). Linear, so finite differences are exact up to
  // fp32 rounding of the sum: tolerance 1e-3 on O(1) gradients.
  Rng rng(1);
  const int64_t N = 5, C = 4;
  Tensor xw = Tensor::zeros({N, C}), sw = Tensor::zeros({2, C}), w = Tensor::zeros({N, C});
  for (int64_t i = 0; i < N * C; ++i) xw[i] = float(rng.normal()), w[i] = float(rng.normal());
  for (int64_t i = 0; i < 2 * C; ++i) sw[i] = float(rng.normal());
  auto run = [&](Tape& t, Var& x, Var& s) {
    return ag::weighted_sum(t, ag::scatter_rows(t, x, {3, 0}, s), w);
  };
  Tape t;
  Var x{xw, Tensor::zeros({N, C})}, s{sw, Tensor::zeros({2, C})};
  Var loss = run(t, x, s);
  t.backward(loss);
  for (int64_t r = 0; r < N; ++r)
    for (int64_t c = 0; c < C; ++c)
      EXPECT_FLOAT_EQ(x.grad[r * C + c], (r == 3 || r == 0) ? 0.0f : w[r * C + c]);
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_FLOAT_EQ(s.grad[c], w[3 * C + c]);
    EXPECT_FLOAT_EQ(s.grad[C + c], w[0 * C + c]);
  }
  // Finite differences on src.
  for (int64_t i = 0; i < 2 * C; ++i) {
    const float h = 1e-2f, keep = sw[i];
    Tape ti(Tape::Mode::Inference);
    Var xi{xw, Tensor()}, si{sw, Tensor()};
    sw[i] = keep + h;
    double up = run(ti, xi, si).data()[0];
    ti.reset();
    sw[i] = keep - h;
    double dn = run(ti, xi, si).data()[0];
    sw[i] = keep;
    EXPECT_NEAR((up - dn) / (2 * h), s.grad[i], 1e-3);
  }
}

TEST(Rmt, SegmentLayoutAndMemoryShape) {
  auto m = tiny_model(3);
  Tape t(Tape::Mode::Inference);
  std::vector<int32_t> text = {5, 6, 7, 8, 9, 10, 11, 0, 0, 0};  // (2,5), second row 2 tokens
  std::vector<int32_t> lens = {5, 2};
  Var mem = m->initial_memory(t, 2);
  EXPECT_EQ(mem.value.numel(), 2 * 2 * 16);
  auto out = m->segment(t, text.data(), lens.data(), 2, mem);
  EXPECT_EQ(out.hidden.value.numel(), 2 * m->config().seq_len() * 16);
  EXPECT_EQ(out.memory.value.numel(), 2 * 2 * 16);
  // Row 1 padding must not change row 1's result: same row alone with different garbage after its length.
  std::vector<int32_t> text2 = {8, 9, 10, 11, 12, 10, 11, 33, 34, 35};
  Tape t2(Tape::Mode::Inference);
  auto out2 = m->segment(t2, text2.data(), lens.data(), 2, m->initial_memory(t2, 2));
  const int64_t T = m->config().seq_len(), C = 16;
  for (int64_t i = 0; i < 2 * C; ++i) EXPECT_FLOAT_EQ(out.memory.data()[2 * C + i], out2.memory.data()[2 * C + i]);
  // ... while row 0 (different text) differs.
  double diff = 0;
  for (int64_t i = 0; i < T * C; ++i) diff += std::fabs(out.hidden.data()[i] - out2.hidden.data()[i]);
  EXPECT_GT(diff, 1e-3);
  // Bad input: a length outside 0..L, an id outside the vocabulary.
  std::vector<int32_t> bad_len = {6, 2};
  EXPECT_THROW(m->segment(t, text.data(), bad_len.data(), 2, mem), Error);
  std::vector<int32_t> bad_id = text;
  bad_id[1] = 40;
  EXPECT_THROW(m->segment(t, bad_id.data(), lens.data(), 2, mem), Error);
}

TEST(Rmt, MemoryCarriesInformationAcrossSegments) {
  // Changing only the first segment's text must change the last segment's logits (3 segments later).
  auto m = tiny_model(4);
  RmtBatch a = tiny_batch(2, 4, 5), b = a;
  for (int64_t i = 0; i < 2 * 5; ++i) b.text[size_t(i)] = int32_t(3 + (b.text[size_t(i)] + 7) % 37);
  Tape t(Tape::Mode::Inference), s(Tape::Mode::Inference);
  auto ra = rmt_forward(*m, t, s, a, 0);
  auto rb = rmt_forward(*m, t, s, b, 0);
  double diff = 0;
  for (size_t i = 0; i < ra.logits.size(); ++i) diff += std::fabs(ra.logits[i] - rb.logits[i]);
  EXPECT_GT(diff, 1e-4);
}

TEST(Rmt, GradientThroughMemoryMatchesFiniteDifferences) {
  // 3 segments, full BPTT. Central differences with h = 1e-2 on an fp32 loss of O(1): rounding contributes
  // ~1e-7/1e-2 = 1e-5 and truncation O(h^2); tolerance 2e-3 absolute + 5 % relative covers both. The initial
  // memory's gradient reaches it only through all three segments, so it checks the whole chain.
  auto m = tiny_model(11);
  RmtBatch b = tiny_batch(3, 3, 12);
  zero_all(*m);
  Tape t, s(Tape::Mode::Inference);
  auto r = rmt_forward(*m, t, s, b, 0);
  ASSERT_GT(r.loss, 0);
  Rng pick(13);
  int checked = 0;
  double max_mem_grad = 0;
  for (Parameter* p : all_params(*m)) {
    const bool is_mem = p->name == "rmt.memory";
    const int n_probe = is_mem ? 12 : 2;
    for (int k = 0; k < n_probe; ++k) {
      const int64_t i = int64_t(pick.below(uint64_t(p->value.numel())));
      const float keep = p->value[i], h = 1e-2f;
      p->value[i] = keep + h;
      const double up = loss_of(*m, b);
      p->value[i] = keep - h;
      const double dn = loss_of(*m, b);
      p->value[i] = keep;
      const double fd = (up - dn) / (2.0 * h), an = p->grad[i];
      EXPECT_NEAR(an, fd, 2e-3 + 0.05 * std::fabs(fd)) << p->name << "[" << i << "]";
      if (is_mem) max_mem_grad = std::max(max_mem_grad, std::fabs(an));
      ++checked;
    }
  }
  EXPECT_GT(checked, 50);
  EXPECT_GT(max_mem_grad, 1e-3);  // the check above is not vacuous: gradient reaches the first memory
}

TEST(Rmt, TruncatedBptt) {
  auto m = tiny_model(21);
  RmtBatch b = tiny_batch(2, 4, 22);
  Tape t, s(Tape::Mode::Inference);
  auto grads = [&](int64_t depth) {
    zero_all(*m);
    auto r = rmt_forward(*m, t, s, b, depth);
    std::vector<std::vector<float>> g;
    for (Parameter* p : all_params(*m)) g.push_back(p->grad.to_vector());
    return std::make_pair(r, g);
  };
  auto [r0, full] = grads(0);
  auto [r4, same] = grads(4);  // depth = S is full BPTT
  auto [r1, last] = grads(1);
  auto [r2, two] = grads(2);
  EXPECT_FLOAT_EQ(float(r0.loss), float(r1.loss));  // the forward pass does not depend on the depth
  EXPECT_FLOAT_EQ(float(r0.loss), float(r4.loss));
  auto ps = all_params(*m);
  for (size_t k = 0; k < ps.size(); ++k) {
    const bool head = ps[k]->name.rfind("classifier.", 0) == 0 || ps[k]->name.find("pooler.") != std::string::npos;
    for (size_t i = 0; i < full[k].size(); ++i) {
      ASSERT_EQ(full[k][i], same[k][i]) << ps[k]->name;
      // The head sees only the last segment: its gradient is the same at any depth.
      if (head) {
        ASSERT_NEAR(full[k][i], last[k][i], 1e-6) << ps[k]->name;
      }
    }
    if (ps[k]->name == "rmt.memory") {
      // The initial memory is outside a truncated window: no gradient at depth 1 or 2.
      for (float g : last[k]) ASSERT_EQ(g, 0.0f);
      for (float g : two[k]) ASSERT_EQ(g, 0.0f);
    }
  }
  // Depth 2 collects more than depth 1 in the backbone (a second segment's contribution).
  const Parameter* q = m->backbone().params().find("bert.encoder.layer.0.attention.self.query.weight");
  size_t qi = size_t(q - m->backbone().params().all().data());
  double d12 = 0;
  for (size_t i = 0; i < last[qi].size(); ++i) d12 += std::fabs(last[qi][i] - two[qi][i]);
  EXPECT_GT(d12, 1e-6);
}

// A batch started from the memory a prefix ended with (RmtBatch::start_memory) answers as the whole input does,
// and the trainable initial memory, unused, gets no gradient.
TEST(Rmt, StartMemoryContinuesAnInput) {
  auto m = tiny_model(41);
  const int64_t B = 2, L = 5, S = 4, k = 2;
  RmtBatch whole = tiny_batch(B, S, 42);
  RmtBatch head = whole, tail = whole;
  head.S = k, tail.S = S - k;
  head.text.resize(size_t(k * B * L)), head.lengths.resize(size_t(k * B));
  tail.text.erase(tail.text.begin(), tail.text.begin() + k * B * L);
  tail.lengths.erase(tail.lengths.begin(), tail.lengths.begin() + k * B);
  Tape t(Tape::Mode::Inference), s(Tape::Mode::Inference);
  RmtResult w = rmt_forward(*m, t, s, whole, 0), h = rmt_forward(*m, t, s, head, 0);
  ASSERT_EQ(h.memory.size(), size_t(B * 2 * 16));
  tail.start_memory = h.memory;
  RmtResult c = rmt_forward(*m, t, s, tail, 0);
  ASSERT_EQ(c.logits.size(), w.logits.size());
  for (size_t i = 0; i < c.logits.size(); ++i) EXPECT_EQ(c.logits[i], w.logits[i]);
  EXPECT_EQ(c.memory, w.memory);
  // Training from it: the same loss, and no gradient into rmt.memory.
  Tape rec;
  zero_all(*m);
  RmtResult g = rmt_forward(*m, rec, s, tail, 0);
  EXPECT_NEAR(g.loss, w.loss, 1e-6);
  for (float x : m->memory_params()[0].grad.to_vector()) ASSERT_EQ(x, 0.0f);
  tail.start_memory.pop_back();
  EXPECT_ANY_THROW(rmt_forward(*m, t, s, tail, 0));
}

TEST(Rmt, StreamingMatchesBatchedAndHoldsConstantMemory) {
  auto m = tiny_model(31);
  const int64_t B = 2, L = 5;
  auto stream = [&](const RmtBatch& b, Tape& t) {
    RmtStreamer st(*m, t, B);
    for (int64_t s = 0; s < b.S; ++s) st.step(b.text.data() + s * B * L, b.lengths.data() + s * B);
    EXPECT_EQ(st.segments(), b.S);
    EXPECT_GT(st.memory_norm(), 0.0);
    return st.classify();
  };
  RmtBatch b = tiny_batch(B, 6, 32);
  Tape t(Tape::Mode::Inference), s(Tape::Mode::Inference);
  auto r = rmt_forward(*m, t, s, b, 0);
  Tape ts(Tape::Mode::Inference);
  auto logits = stream(b, ts);
  ASSERT_EQ(logits.size(), r.logits.size());
  for (size_t i = 0; i < logits.size(); ++i) EXPECT_EQ(logits[i], r.logits[i]);
  // The arena after 6 segments is the arena after 60: one segment's worth.
  const size_t arena6 = ts.arena_bytes();
  Tape t60(Tape::Mode::Inference);
  stream(tiny_batch(B, 60, 33), t60);
  EXPECT_EQ(t60.arena_bytes(), arena6);
}

// A probe's logits are those of a run whose last segment is the probe's; the memory after it is the memory before
// it, so the run goes on as if no probe had been asked.
TEST(Rmt, ProbeIsARunThatEndsThere) {
  auto m = tiny_model(35);
  const int64_t B = 2, L = 5;
  RmtBatch b = tiny_batch(B, 5, 36), probe = tiny_batch(B, 1, 37);
  auto run = [&](int64_t S, bool with_probe) {
    Tape t(Tape::Mode::Inference);
    RmtStreamer st(*m, t, B);
    std::vector<float> probed;
    for (int64_t s = 0; s < S; ++s) {
      st.step(b.text.data() + s * B * L, b.lengths.data() + s * B);
      if (with_probe && s == 2) probed = st.probe(probe.text.data(), probe.lengths.data());
    }
    EXPECT_EQ(st.segments(), S);
    return std::pair{st.classify(), probed};
  };
  const auto [plain, none] = run(5, false);
  const auto [after, probed] = run(5, true);
  EXPECT_EQ(after, plain);  // bit for bit
  Tape t(Tape::Mode::Inference);
  RmtStreamer st(*m, t, B);
  for (int64_t s = 0; s < 3; ++s) st.step(b.text.data() + s * B * L, b.lengths.data() + s * B);
  st.step(probe.text.data(), probe.lengths.data());
  EXPECT_EQ(probed, st.classify());
  EXPECT_NE(probed, plain);
  Tape t0(Tape::Mode::Inference);
  RmtStreamer fresh(*m, t0, B);
  EXPECT_THROW(fresh.probe(probe.text.data(), probe.lengths.data()), Error);
}

TEST(RmtDir, SaveLoadFullAndDelta) {
  const std::string root = scratch_dir();
  auto m = tiny_model(41);
  save_rmt(root + "/full", *m);
  auto back = load_rmt(root + "/full");
  RmtBatch b = tiny_batch(2, 3, 42);
  EXPECT_EQ(loss_of(*m, b), loss_of(*back, b));
  // Delta against the "pretrained" base = this model; then change a few tensors, as fine-tuning would.
  save_rmt(root + "/base", *m);
  auto tuned = load_rmt(root + "/full");
  for (auto& p : tuned->backbone().params().all())
    if (p.name.find("layer.1.output.dense") != std::string::npos)
      for (int64_t i = 0; i < p.value.numel(); ++i) p.value[i] += 0.01f * float(i % 7);
  tuned->memory_params()[0].value[0] += 1.0f;
  save_rmt_delta(root + "/delta", *tuned, root + "/base", "../base");
  SafetensorsFile f(root + "/delta/model.safetensors");
  EXPECT_TRUE(f.contains("delta/bert.encoder.layer.1.output.dense.weight"));
  EXPECT_FALSE(f.contains("delta/bert.embeddings.word_embeddings.weight"));  // unchanged: left out
  EXPECT_TRUE(f.contains("rmt.memory"));
  auto dl = load_rmt(root + "/delta");
  // BF16 deltas: values agree within bf16's relative precision of the delta (0.06 * 2^-8).
  const Parameter* a = tuned->backbone().params().find("bert.encoder.layer.1.output.dense.weight");
  const Parameter* c = dl->backbone().params().find("bert.encoder.layer.1.output.dense.weight");
  for (int64_t i = 0; i < a->value.numel(); ++i) ASSERT_NEAR(a->value[i], c->value[i], 1e-3);
  EXPECT_EQ(dl->memory_params()[0].value[0], tuned->memory_params()[0].value[0]);
  EXPECT_NEAR(loss_of(*tuned, b), loss_of(*dl, b), 1e-3);
}

TEST(RmtDir, BadDirectories) {
  const std::string root = scratch_dir();
  EXPECT_THROW(load_rmt(root + "/does-not-exist"), Error);
  auto m = tiny_model(51);
  save_rmt(root + "/bad", *m);
  // A config without the rmt key.
  Json j = Json::parse(read_file(root + "/bad/config.json"));
  Json j2 = Json::object();
  for (auto& [k, v] : j.as_object())
    if (k != "rmt") j2[k] = v;
  atomic_write(root + "/bad/config.json", j2.dump());
  try {
    load_rmt(root + "/bad");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rmt"), std::string::npos);
  }
  // More labels than the classifier has.
  RmtConfig r = tiny_rmt();
  r.labels.push_back("attic");
  EXPECT_THROW(RmtEncoder(tiny_bert(), r), Error);
  // A segment longer than the positions allow.
  RmtConfig big = tiny_rmt();
  big.segment_tokens = 40;
  EXPECT_THROW(RmtEncoder(tiny_bert(), big), Error);
}

TEST(RmtDir, InitFromAFinishedRmtKeepsEverything) {
  // `mnemo train rmt --init RUN/final`: a full RMT directory is also a BERT directory; its classifier and memory
  // are kept, so the new run starts from the trained model's function.
  const std::string root = scratch_dir();
  auto m = tiny_model(61);
  save_rmt(root + "/init", *m);
  auto n = rmt_from_pretrained(root + "/init", tiny_rmt(), 99);
  EXPECT_EQ(n->memory_params()[0].value.to_vector(), m->memory_params()[0].value.to_vector());
  RmtBatch b = tiny_batch(2, 3, 62);
  EXPECT_EQ(loss_of(*m, b), loss_of(*n, b));
  // A delta directory (how models/ ships them) starts a run as load_rmt reads it: base + deltas, memory.
  save_model_dir(root + "/init-base", m->backbone());
  auto tuned = tiny_model(61);
  for (auto& p : tuned->backbone().params().all())
    if (p.name.find("layer.1.output.dense") != std::string::npos)
      for (int64_t i = 0; i < p.value.numel(); ++i) p.value[i] += 0.01f * float(i % 7);
  save_rmt_delta(root + "/init-delta", *tuned, root + "/init-base", "../init-base");
  auto d = rmt_from_pretrained(root + "/init-delta", tiny_rmt(), 99);
  EXPECT_EQ(loss_of(*load_rmt(root + "/init-delta"), b), loss_of(*d, b));
  EXPECT_NEAR(loss_of(*tuned, b), loss_of(*d, b), 1e-3);  // BF16 deltas
  EXPECT_NE(loss_of(*m, b), loss_of(*d, b));
  // A trained RMT of another shape cannot start the run: one error naming its config.
  RmtConfig other = tiny_rmt();
  other.num_mem_tokens += 1;
  try {
    rmt_from_pretrained(root + "/init-delta", other, 99);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("init-delta/config.json: this RMT has"), std::string::npos) << e.what();
  }
}

TEST(RmtDir, InitFromAMaskedLmBertStartsAFreshPooler) {
  // A BERT trained here for masked-LM only (`mnemo train lm --arch bert --objective mlm`, the from-scratch
  // ablation's backbone) has no pooler: the RMT takes its embeddings and encoder, and starts the pooler and the
  // classifier fresh, as transformers' BertForSequenceClassification.from_pretrained does. Any other missing
  // tensor is still an error.
  const std::string root = scratch_dir();
  BertConfig c = tiny_bert();
  c.head = BertHead::MaskedLM;
  Bert mlm(c);
  mlm.init_random(5);
  save_model_dir(root + "/mlm", mlm);
  auto n = rmt_from_pretrained(root + "/mlm", tiny_rmt(), 7);
  const std::string q = "bert.encoder.layer.1.attention.self.query.weight";
  ASSERT_NE(n->backbone().params().find(q), nullptr);
  EXPECT_EQ(n->backbone().params().find(q)->value.to_vector(), mlm.params().find(q)->value.to_vector());
  RmtBatch b = tiny_batch(2, 3, 8);
  EXPECT_TRUE(std::isfinite(loss_of(*n, b)));
  // Without the encoder's last layer the directory is not a usable base.
  std::vector<SafetensorsItem> items;
  for (auto& p : mlm.params().all())
    if (p.name.find("layer.1.") == std::string::npos) items.emplace_back(p.name, p.value);
  save_safetensors(root + "/mlm/model.safetensors", items, {});
  EXPECT_THROW(rmt_from_pretrained(root + "/mlm", tiny_rmt(), 7), Error);
}
