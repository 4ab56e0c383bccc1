// The RMT decoder variant on a tiny Llama: memory carried across segments, gradients through the memory by finite
// differences, truncated BPTT, streaming against the batched pass (and a constant arena), model directories (full
// and delta), bad inputs, evaluation and a resumed training run. Also the helper that dumps gradients for
// tests/oracle/test_rmt_decoder.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include "../autograd/gradcheck.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/progress.h"
#include "base/rng.h"
#include "eval/rmt_eval.h"
#include "io/llama_loader.h"
#include "io/safetensors.h"
#include "memory/rmt_decoder.h"
#include "memory/rmt_dir.h"
#include "text/tokenizer.h"
#include "train/rmt_trainer.h"
#include "scratch.h"

using namespace mnemo;

namespace {

LlamaConfig tiny_llama(int64_t vocab = 40) {
  LlamaConfig c;
  c.num_hidden_layers = 2, c.hidden_size = 16, c.num_attention_heads = 2, c.num_key_value_heads = 1;
  c.intermediate_size = 32, c.vocab_size = vocab, c.max_position_embeddings = 64, c.tie_word_embeddings = true;
  c.bos_token_id = 3, c.eos_token_id = 1;
  return c;
}

RmtDecoderConfig tiny_rmt(int32_t sink = -1) {
  RmtDecoderConfig r;
  r.num_mem_tokens = 2, r.segment_tokens = 5, r.max_answer_tokens = 3, r.eos_id = 1, r.pad_id = 0, r.sink_id = sink;
  return r;
}

// Weights larger than HF's 0.02 so gradients through several segments are well above fp32 noise.
std::unique_ptr<RmtDecoder> tiny_model(uint64_t seed, int32_t sink = -1) {
  auto m = std::make_unique<RmtDecoder>(tiny_llama(), tiny_rmt(sink));
  Rng rng(seed);
  for (auto& p : m->backbone().params().all())
    for (int64_t i = 0; i < p.value.numel(); ++i)
      p.value[i] = p.value.rank() == 1 ? 1.0f + 0.1f * float(rng.normal()) : 0.3f * float(rng.normal());
  m->init_memory(seed + 7);
  return m;
}

RmtDecoderBatch tiny_batch(int64_t B, int64_t S, uint64_t seed) {
  Rng rng(seed);
  RmtDecoderBatch b;
  b.B = B, b.S = S, b.A = 3;
  const int64_t L = tiny_rmt().segment_tokens;
  for (int64_t i = 0; i < S * B * L; ++i) b.text.push_back(int32_t(3 + rng.below(37)));
  for (int64_t i = 0; i < S * B; ++i) b.lengths.push_back(int32_t(i % 3 == 2 ? 3 : L));  // some short rows
  for (int64_t i = 0; i < B; ++i) {  // answers of 1 or 2 tokens, then EOS
    const int64_t n = 1 + i % 2;
    for (int64_t k = 0; k < b.A; ++k) b.answers.push_back(k < n ? int32_t(3 + rng.below(37)) : k == n ? 1 : -1);
  }
  return b;
}

RmtDecoderResult run(RmtDecoder& m, const RmtDecoderBatch& b, int64_t depth = 0) {
  Tape t(Tape::Mode::Inference), s(Tape::Mode::Inference);
  return rmt_decoder_forward(m, t, s, b, depth);
}

std::vector<Parameter*> all_params(RmtDecoder& m) {
  std::vector<Parameter*> ps;
  for (auto& p : m.backbone().params().all()) ps.push_back(&p);
  ps.push_back(&m.memory_params()[0]);
  return ps;
}

void zero_all(RmtDecoder& m) {
  m.backbone().params().zero_grad();
  m.memory_params().zero_grad();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(RmtDecoder, LayoutPaddingAndBadInputs) {
  auto m = tiny_model(3);
  Tape t(Tape::Mode::Inference);
  const int64_t C = 16;
  std::vector<int32_t> text = {5, 6, 7, 8, 9, 10, 11, 0, 0, 0};  // (2,5), second row 2 tokens
  std::vector<int32_t> lens = {5, 2};
  Var mem = m->initial_memory(t, 2);
  Var out = m->write(t, text.data(), lens.data(), 2, mem);
  ASSERT_EQ(out.value.numel(), 2 * 2 * C);
  std::vector<float> a(out.data(), out.data() + out.value.numel());
  // Row 1's padding is masked: other garbage after its length changes nothing in its memory.
  std::vector<int32_t> text2 = {8, 9, 10, 11, 12, 10, 11, 33, 34, 35};
  Tape t2(Tape::Mode::Inference);
  Var out2 = m->write(t2, text2.data(), lens.data(), 2, m->initial_memory(t2, 2));
  for (int64_t i = 0; i < 2 * C; ++i) EXPECT_FLOAT_EQ(a[size_t(2 * C + i)], out2.data()[2 * C + i]);
  double diff = 0;  // ... while row 0 (different text) differs
  for (int64_t i = 0; i < 2 * C; ++i) diff += std::fabs(a[size_t(i)] - out2.data()[i]);
  EXPECT_GT(diff, 1e-4);
  // The written memory is taken after the final RMSNorm: each row's RMS is that of the norm weights (1 +- 0.1
  // here), whatever the residual stream's scale.
  for (int64_t r = 0; r < 4; ++r) {
    double sq = 0;
    for (int64_t c = 0; c < C; ++c) sq += double(a[size_t(r * C + c)]) * a[size_t(r * C + c)];
    EXPECT_NEAR(std::sqrt(sq / double(C)), 1.0, 0.3) << "row " << r;
  }
  // Bad inputs: lengths outside the range, ids outside the vocabulary, an empty last segment, no answers.
  std::vector<int32_t> bad_len = {6, 2};
  EXPECT_NE(error_of([&] { m->write(t, text.data(), bad_len.data(), 2, mem); }).find("expected 0..5"),
            std::string::npos);
  std::vector<int32_t> bad_id = text;
  bad_id[1] = 40;
  EXPECT_NE(error_of([&] { m->write(t, bad_id.data(), lens.data(), 2, mem); }).find("outside the vocabulary"),
            std::string::npos);
  std::vector<int32_t> zero = {0, 2};
  EXPECT_NE(error_of([&] { m->read(t, text.data(), zero.data(), 2, 5, mem); }).find("1..5"), std::string::npos);
  RmtDecoderBatch b = tiny_batch(2, 2, 4);
  RmtDecoderBatch empty_last = b;
  empty_last.lengths[2] = 0;
  EXPECT_NE(error_of([&] { run(*m, empty_last); }).find("last segment"), std::string::npos);
  RmtDecoderBatch no_answer = b;
  for (int64_t k = 0; k < b.A; ++k) no_answer.answers[size_t(k)] = -1;
  EXPECT_NE(error_of([&] { run(*m, no_answer); }).find("no answer tokens"), std::string::npos);
  RmtDecoderBatch none = b;
  none.B = 0;
  EXPECT_NE(error_of([&] { run(*m, none); }).find("empty batch"), std::string::npos);
  // Configs: missing fields, wrong variant, a segment longer than the positions, ids outside the vocabulary.
  Json j = tiny_rmt().to_json();
  EXPECT_EQ(RmtDecoderConfig::from_json(j, "cfg").to_json().dump(), j.dump());
  for (const char* key : {"num_mem_tokens", "segment_tokens", "eos_id"}) {
    Json k = Json::object();
    for (auto& [name, v] : j.as_object())
      if (name != key) k[name] = v;
    EXPECT_NE(error_of([&] { RmtDecoderConfig::from_json(k, "cfg"); }).find(std::string("rmt.") + key + " is missing"),
              std::string::npos);
  }
  Json wrong = j;
  wrong["variant"] = "encoder";
  EXPECT_NE(error_of([&] { RmtDecoderConfig::from_json(wrong, "cfg"); }).find("variant"), std::string::npos);
  RmtDecoderConfig big = tiny_rmt();
  big.segment_tokens = 60;
  EXPECT_NE(error_of([&] { RmtDecoder(tiny_llama(), big); }).find("max_position_embeddings"), std::string::npos);
  RmtDecoderConfig eos = tiny_rmt();
  eos.eos_id = 40;
  EXPECT_THROW(RmtDecoder(tiny_llama(), eos), Error);
}

TEST(RmtDecoder, MemoryCarriesInformationAcrossSegments) {
  // Changing only the first segment's text must change the answer logits 3 segments later; changing the text of
  // the last segment after the answer position must not (causal attention).
  auto m = tiny_model(4);
  RmtDecoderBatch a = tiny_batch(2, 4, 5), b = a;
  for (int64_t i = 0; i < 2 * 5; ++i) b.text[size_t(i)] = int32_t(3 + (b.text[size_t(i)] + 7) % 37);
  auto ra = run(*m, a), rb = run(*m, b);
  double diff = 0;
  for (size_t i = 0; i < ra.logits.size(); ++i) diff += std::fabs(ra.logits[i] - rb.logits[i]);
  EXPECT_GT(diff, 1e-4);
  EXPECT_NE(ra.memory_norm, rb.memory_norm);
}

TEST(RmtDecoder, GradientThroughMemoryMatchesFiniteDifferences) {
  // 3 segments (2 memory segments + the last), full BPTT, every parameter tensor probed; the initial memory's
  // gradient reaches it only through both memory segments (read and write placeholders), so it checks the whole
  // chain. Tolerances: ../autograd/gradcheck.h, with 5 % relative for a loss that went through 3 x 2 layers.
  for (int32_t sink : {-1, 2}) {  // without and with a sink token opening every segment
  SCOPED_TRACE(cat("sink_id ", sink));
  auto m = tiny_model(11, sink);
  RmtDecoderBatch b = tiny_batch(3, 3, 12);
  std::vector<mnemo::testing::Checked> items;
  for (Parameter* p : all_params(*m)) items.push_back({p->name, p->value, p->grad});
  const int n = mnemo::testing::gradcheck([&](Tape& t) { return rmt_decoder_loss(*m, t, b); }, items,
                                   {.atol = 2e-3f, .rtol = 5e-2f, .entries = 3});
  EXPECT_EQ(n, 3 * int(items.size()));
  double mem_grad = 0;
  for (float g : m->memory_params()[0].grad.to_vector()) mem_grad = std::max(mem_grad, double(std::fabs(g)));
  EXPECT_GT(mem_grad, 1e-3);  // not vacuous: gradient reaches the first memory
  // rmt_decoder_forward at full depth differentiates the same graph.
  std::vector<float> want = m->memory_params()[0].grad.to_vector();
  zero_all(*m);
  Tape t, s(Tape::Mode::Inference);
  rmt_decoder_forward(*m, t, s, b, 0);
  EXPECT_EQ(m->memory_params()[0].grad.to_vector(), want);
  }
}

TEST(RmtDecoder, TruncatedBptt) {
  // Depth k keeps the last k segments on the tape: depth S is full BPTT; the initial memory gets a gradient only
  // when every segment is on the tape; a memory segment more on the tape adds to the backbone's gradient.
  auto m = tiny_model(21);
  const RmtDecoderBatch b = tiny_batch(2, 4, 22);
  auto grads_at = [&](int64_t depth, double* loss) {
    zero_all(*m);
    Tape t, s(Tape::Mode::Inference);
    *loss = rmt_decoder_forward(*m, t, s, b, depth).loss;
    std::vector<float> all;
    for (Parameter* p : all_params(*m)) {
      std::vector<float> g = p->grad.to_vector();
      all.insert(all.end(), g.begin(), g.end());
    }
    return all;
  };
  std::vector<double> loss(5);
  std::vector<std::vector<float>> g(5);
  for (int64_t k = 0; k <= 4; ++k) g[size_t(k)] = grads_at(k, &loss[size_t(k)]);
  for (int64_t k = 1; k <= 4; ++k) EXPECT_EQ(loss[size_t(k)], loss[0]);  // the forward pass is the same
  EXPECT_EQ(g[4], g[0]);
  const int64_t mem = m->memory_params()[0].value.numel(), n = int64_t(g[0].size());
  auto abs_sum = [&](const std::vector<float>& v, int64_t from, int64_t to) {
    double a = 0;
    for (int64_t i = from; i < to; ++i) a += std::fabs(v[size_t(i)]);
    return a;
  };
  EXPECT_GT(abs_sum(g[0], n - mem, n), 1e-4);
  for (int64_t k = 1; k <= 3; ++k) EXPECT_EQ(abs_sum(g[size_t(k)], n - mem, n), 0.0) << "depth " << k;
  double d12 = 0;
  for (int64_t i = 0; i < n - mem; ++i) d12 += std::fabs(g[1][size_t(i)] - g[2][size_t(i)]);
  EXPECT_GT(d12, 1e-6);
}

TEST(RmtDecoder, StreamingMatchesBatchedAndHoldsConstantMemory) {
  for (int32_t sink : {-1, 2}) {
  SCOPED_TRACE(cat("sink_id ", sink));
  auto m = tiny_model(31, sink);
  const int64_t B = 2, L = 5, V = 40;
  RmtDecoderBatch b = tiny_batch(B, 6, 32);
  auto r = run(*m, b);
  Tape ts(Tape::Mode::Inference);
  RmtDecoderStreamer st(*m, ts, B);
  for (int64_t s = 0; s + 1 < b.S; ++s) st.step(b.text.data() + s * B * L, b.lengths.data() + s * B);
  EXPECT_EQ(st.segments(), b.S - 1);
  EXPECT_EQ(st.memory_norm(), r.memory_norm);  // the same memory, bit for bit
  // Teacher-forced next-token logits after the text and k answer tokens = the batched logits at answer position k.
  // The last segment's width differs (the batch pads to its longest row), so GEMM shapes differ: 1e-5 relative.
  const int32_t* last = b.text.data() + (b.S - 1) * B * L;
  const int32_t* last_len = b.lengths.data() + (b.S - 1) * B;
  for (int64_t k = 0; k < 2; ++k) {
    const int64_t W = L + k;
    std::vector<int32_t> tokens(static_cast<size_t>(B * W), 0), lens(static_cast<size_t>(B));
    for (int64_t i = 0; i < B; ++i) {
      std::copy(last + i * L, last + i * L + last_len[i], tokens.begin() + i * W);
      for (int64_t j = 0; j < k; ++j) tokens[size_t(i * W + last_len[i] + j)] = b.answers[size_t(i * b.A + j)];
      lens[size_t(i)] = int32_t(last_len[i] + k);
    }
    std::vector<float> lg = st.next_logits(tokens.data(), lens.data(), W);  // (B, V)
    for (int64_t i = 0; i < B; ++i) {
      if (b.answers[size_t(i * b.A + k)] < 0) continue;
      for (int64_t v = 0; v < V; ++v) {
        const float want = r.logits[size_t((i * b.A + k) * V + v)];
        ASSERT_NEAR(lg[size_t(i * V + v)], want, 1e-5 * (1 + std::fabs(want))) << i << "," << k << "," << v;
      }
    }
  }
  // Greedy answers: each generated token is the argmax of next_logits after the ones before it.
  auto ans = st.answer(last, last_len);
  ASSERT_EQ(ans.size(), size_t(B));
  for (int64_t i = 0; i < B; ++i) {
    EXPECT_LE(int64_t(ans[size_t(i)].size()), tiny_rmt().max_answer_tokens);
    std::vector<int32_t> row(last + i * L, last + i * L + last_len[i]);
    for (int32_t y : ans[size_t(i)]) {
      EXPECT_NE(y, tiny_rmt().eos_id);
      RmtDecoderStreamer one(*m, ts, 1);
      for (int64_t s = 0; s + 1 < b.S; ++s) {
        std::vector<int32_t> seg(b.text.begin() + (s * B + i) * L, b.text.begin() + (s * B + i + 1) * L);
        one.step(seg.data(), &b.lengths[size_t(s * B + i)]);
      }
      const int32_t n = int32_t(row.size());
      std::vector<float> lg = one.next_logits(row.data(), &n, n);
      EXPECT_EQ(int32_t(std::max_element(lg.begin(), lg.end()) - lg.begin()), y);
      row.push_back(y);
    }
  }
  // The arena after 6 segments is the arena after 60: one segment's worth.
  Tape t6(Tape::Mode::Inference), t60(Tape::Mode::Inference);
  for (auto [tape, S] : {std::pair<Tape*, int64_t>{&t6, 6}, {&t60, 60}}) {
    RmtDecoderBatch bb = tiny_batch(B, S, 33);
    RmtDecoderStreamer s2(*m, *tape, B);
    for (int64_t s = 0; s < S; ++s) s2.step(bb.text.data() + s * B * L, bb.lengths.data() + s * B);
  }
  EXPECT_EQ(t60.arena_bytes(), t6.arena_bytes());
  }
}

TEST(RmtDecoder, SinkTokenOpensEverySegment) {
  // The same weights with and without the sink token answer differently (it is really fed, at position 0), the
  // sink id round-trips through the config, a config without it (saved before it existed) has none, and an id
  // outside the vocabulary is refused.
  auto plain = tiny_model(61), sunk = tiny_model(61, 2);
  EXPECT_EQ(sunk->config().write_len(), plain->config().write_len() + 1);
  RmtDecoderBatch b = tiny_batch(2, 3, 62);
  auto ra = run(*plain, b), rb = run(*sunk, b);
  double diff = 0;
  for (size_t i = 0; i < ra.logits.size(); ++i) diff += std::fabs(ra.logits[i] - rb.logits[i]);
  EXPECT_GT(diff, 1e-4);
  EXPECT_EQ(RmtDecoderConfig::from_json(tiny_rmt(2).to_json(), "c").sink_id, 2);
  EXPECT_FALSE(tiny_rmt().to_json().contains("sink_id"));
  EXPECT_EQ(RmtDecoderConfig::from_json(tiny_rmt().to_json(), "c").sink_id, -1);
  EXPECT_NE(error_of([] { RmtDecoder(tiny_llama(), tiny_rmt(40)); }).find("sink_id 40"), std::string::npos);
}

TEST(RmtDecoderDir, SaveLoadFullAndDelta) {
  const std::string root = scratch_dir();
  auto m = tiny_model(41);
  save_rmt_decoder(root + "/full", *m);
  EXPECT_EQ(rmt_variant(root + "/full"), "decoder");
  auto back = load_rmt_decoder(root + "/full");
  RmtDecoderBatch b = tiny_batch(2, 3, 42);
  EXPECT_EQ(run(*m, b).loss, run(*back, b).loss);
  // The base is an HF Llama directory (GGUF bases load through the same path, dequantized).
  save_llama_dir(root + "/base", m->backbone());
  auto fresh = rmt_decoder_from_pretrained(root + "/base", tiny_rmt(), false, 5);
  EXPECT_EQ(fresh->config().eos_id, 1);  // the backbone's eos_token_id
  EXPECT_EQ(fresh->config().sink_id, -1);
  EXPECT_EQ(rmt_decoder_from_pretrained(root + "/base", tiny_rmt(), true, 5)->config().sink_id, 3);  // its BOS
  auto tuned = load_rmt_decoder(root + "/full");
  for (auto& p : tuned->backbone().params().all())
    if (p.name.find("layers.1.mlp.down_proj") != std::string::npos)
      for (int64_t i = 0; i < p.value.numel(); ++i) p.value[i] += 0.01f * float(i % 7);
  tuned->memory_params()[0].value[0] += 1.0f;
  save_rmt_decoder_delta(root + "/delta", *tuned, root + "/base", "../base");
  SafetensorsFile f(root + "/delta/model.safetensors");
  EXPECT_TRUE(f.contains("delta/model.layers.1.mlp.down_proj.weight"));
  EXPECT_FALSE(f.contains("delta/model.embed_tokens.weight"));  // unchanged: left out
  EXPECT_TRUE(f.contains("rmt.memory"));
  EXPECT_EQ(rmt_tokenizer_path(root + "/delta"), root + "/delta/../base");
  auto dl = load_rmt_decoder(root + "/delta");
  const Parameter* a = tuned->backbone().params().find("model.layers.1.mlp.down_proj.weight");
  const Parameter* c = dl->backbone().params().find("model.layers.1.mlp.down_proj.weight");
  for (int64_t i = 0; i < a->value.numel(); ++i) ASSERT_NEAR(a->value[i], c->value[i], 1e-3);  // BF16 deltas
  EXPECT_EQ(dl->memory_params()[0].value[0], tuned->memory_params()[0].value[0]);
  EXPECT_NEAR(run(*tuned, b).loss, run(*dl, b).loss, 1e-3);
  // 1-bit deltas: signs and a rank-1 magnitude (row x column). A delta whose magnitudes are rank 1 comes back
  // exactly; any other comes back with its signs and its rows' and columns' sizes.
  Parameter* w = tuned->backbone().params().find("model.layers.0.self_attn.q_proj.weight");
  const Parameter* w0 = m->backbone().params().find("model.layers.0.self_attn.q_proj.weight");
  const int64_t cols = w->value.shape()[1];
  for (int64_t i = 0; i < w->value.numel(); ++i) {
    const int64_t r = i / cols, c = i % cols;
    w->value[i] = w0->value[i] + ((r * 7 + c * 3) % 5 < 2 ? -1.0f : 1.0f) * 0.01f * float(r + 1) * float(c % 3 + 1);
  }
  save_rmt_decoder_delta(root + "/delta1", *tuned, root + "/base", "../base", 1);
  SafetensorsFile f1(root + "/delta1/model.safetensors");
  EXPECT_TRUE(f1.contains("delta_sign/model.layers.0.self_attn.q_proj.weight"));
  EXPECT_FALSE(f1.contains("delta/model.layers.0.self_attn.q_proj.weight"));
  EXPECT_EQ(f1.entry("delta_sign/model.layers.0.self_attn.q_proj.weight").nbytes, size_t((w->value.numel() + 7) / 8));
  auto d1 = load_rmt_decoder(root + "/delta1");
  const Parameter* back1 = d1->backbone().params().find("model.layers.0.self_attn.q_proj.weight");
  for (int64_t i = 0; i < w->value.numel(); ++i) ASSERT_NEAR(back1->value[i], w->value[i], 1e-5) << i;
  const Parameter* down = d1->backbone().params().find("model.layers.1.mlp.down_proj.weight");
  const Parameter* down0 = m->backbone().params().find("model.layers.1.mlp.down_proj.weight");
  for (int64_t i = 0; i < down->value.numel(); ++i)  // deltas 0.01 * (i % 7) >= 0: all signs +, sizes averaged
    ASSERT_GT(down->value[i] - down0->value[i], 0.0f) << i;
  EXPECT_EQ(d1->memory_params()[0].value[0], tuned->memory_params()[0].value[0]);
  // A trained decoder as --init keeps its memory.
  auto again = rmt_decoder_from_pretrained(root + "/full", tiny_rmt(), false, 99);
  EXPECT_EQ(again->memory_params()[0].value.to_vector(), m->memory_params()[0].value.to_vector());
  // The encoder's directories still read as the encoder.
  Json cfg = Json::parse(read_file(root + "/full/config.json"));
  cfg["rmt"].as_object().erase(std::remove_if(cfg["rmt"].as_object().begin(), cfg["rmt"].as_object().end(),
                                              [](const auto& kv) { return kv.first == "variant"; }),
                               cfg["rmt"].as_object().end());
  make_directories(root + "/novariant");
  atomic_write(root + "/novariant/config.json", cfg.dump());
  EXPECT_EQ(rmt_variant(root + "/novariant"), "encoder");
}

TEST(RmtDecoderDir, BadDirectories) {
  const std::string root = scratch_dir();
  EXPECT_THROW(load_rmt_decoder(root + "/does-not-exist"), Error);
  auto m = tiny_model(51);
  save_rmt_decoder(root + "/bad", *m);
  const Json good = Json::parse(read_file(root + "/bad/config.json"));
  auto with_rmt = [&](const std::function<void(Json&)>& edit) {
    Json j = good;
    edit(j["rmt"]);
    atomic_write(root + "/bad/config.json", j.dump());
    return error_of([&] { load_rmt_decoder(root + "/bad"); });
  };
  EXPECT_NE(with_rmt([](Json& r) { r["num_mem_tokens"] = Json(); }).find("rmt.num_mem_tokens is missing"),
            std::string::npos);
  EXPECT_NE(with_rmt([](Json& r) { r["segment_tokens"] = 0; }).find("segment_tokens must be positive"),
            std::string::npos);
  EXPECT_NE(with_rmt([](Json& r) { r["variant"] = "other"; }).find("variant"), std::string::npos);
  EXPECT_NE(with_rmt([](Json& r) { r["num_mem_tokens"] = 3; }).find("rmt.memory"), std::string::npos);  // shape
  EXPECT_NE(with_rmt([](Json& r) { r["delta_of"] = "../nowhere"; }).find("missing"), std::string::npos);
  Json j = good;
  j.as_object().erase(std::remove_if(j.as_object().begin(), j.as_object().end(),
                                     [](const auto& kv) { return kv.first == "rmt"; }),
                      j.as_object().end());
  atomic_write(root + "/bad/config.json", j.dump());
  EXPECT_NE(error_of([&] { load_rmt_decoder(root + "/bad"); }).find("no \"rmt\""), std::string::npos);
  EXPECT_NE(error_of([&] { rmt_variant(root + "/bad"); }).find("no \"rmt\""), std::string::npos);
}

// ---- evaluation and training with a real tokenizer (MiniLM's WordPiece vocabulary, [SEP] as EOS) ----

namespace {

const std::string kMiniLM = std::string(MNEMO_DATA_DIR) + "/models/minilm-l6-h384";

void write_tiny_llama_dir(const std::string& dir) {
  LlamaConfig c = tiny_llama(30522);
  c.eos_token_id = 102;  // [SEP]
  c.max_position_embeddings = 128;
  Llama l(c);
  l.init_random(5);
  save_llama_dir(dir, l);
}

// A tiny corpus: one paragraph, repeated, as every split's documents.
void write_corpus(const std::string& dir) {
  make_directories(dir);
  const std::string para =
      "The old man walked along the river. He saw a ship near the town. People lived in small houses by the sea. "
      "In the morning the boats went out and in the evening they came back with fish. ";
  std::string text;
  for (int i = 0; i < 30; ++i) text += para;
  for (const char* split : {"train", "validation", "test"}) {
    Json j = Json::object();
    j["id"] = cat(split, "/0");
    j["source"] = "test";
    j["text"] = text;
    atomic_write(join_path(dir, cat(split, ".jsonl")), j.dump() + "\n");
  }
}

}  // namespace

TEST(RmtDecoderEval, GeneratedAndFileSamples) {
  if (!file_exists(kMiniLM + "/vocab.txt")) GTEST_SKIP() << kMiniLM << " missing (scripts/setup fetches it)";
  Progress::set_quiet(true);
  const std::string root = scratch_dir();
  write_corpus(root + "/corpus");
  write_tiny_llama_dir(root + "/llama");
  RmtDecoderConfig rc;
  rc.num_mem_tokens = 2, rc.segment_tokens = 16;
  auto m = rmt_decoder_from_pretrained(root + "/llama", rc, false, 3);
  auto tok = load_tokenizer(kMiniLM);
  RmtGenerateOptions g;
  g.task = "qa1", g.segments = 3, g.count = 3, g.batch = 2, g.corpus_dir = root + "/corpus";
  g.story.qa1_min = g.story.qa1_max = 2;
  RmtEvalResult r = eval_rmt_decoder_generated(*m, *tok, g);
  EXPECT_EQ(r.count, 3);
  EXPECT_EQ(r.tokens, 3 * 3 * 16);
  EXPECT_EQ(r.segments, 2 * 3);  // two batches of 3 segments
  ASSERT_EQ(r.samples.size(), 3u);
  EXPECT_EQ(r.by_segments.at(3).first, 3);
  EXPECT_LE(r.needs_memory.at(3).first, 3);  // those with a supporting fact before the last segment
  RmtGenerateOptions one = g;
  one.segments = 1, one.story.qa1_min = one.story.qa1_max = 1;
  EXPECT_EQ(eval_rmt_decoder_generated(*m, *tok, one).needs_memory.at(1).first, 0);  // one segment: none
  // A task file: one result per record; an empty input is an error naming the file and line.
  const std::string path = root + "/f.jsonl";
  Json rec = Json::object();
  rec["input"] = "Mary went to the garden. The man saw a ship.";
  rec["question"] = "Where is Mary?";
  rec["target"] = r.samples[0].prediction.empty() ? "nothing" : r.samples[0].prediction;
  atomic_write(path, rec.dump() + "\n");
  RmtEvalResult f = eval_rmt_decoder_file(*m, *tok, path, 4);
  EXPECT_EQ(f.count, 1);
  rec["input"] = "";
  atomic_write(path, rec.dump() + "\n");
  const std::string e = error_of([&] { eval_rmt_decoder_file(*m, *tok, path, 4); });
  EXPECT_NE(e.find("f.jsonl:1"), std::string::npos) << e;
  EXPECT_NE(e.find("input"), std::string::npos) << e;
  g.attention_out = root + "/a.json";
  EXPECT_THROW(eval_rmt_decoder_generated(*m, *tok, g), Error);
}

TEST(RmtDecoderTrainer, ResumedRunGivesTheSameLosses) {
  if (!file_exists(kMiniLM + "/vocab.txt")) GTEST_SKIP() << kMiniLM << " missing (scripts/setup fetches it)";
  Progress::set_quiet(true);
  const std::string root = scratch_dir();
  write_corpus(root + "/corpus");
  write_tiny_llama_dir(root + "/llama");
  RmtTrainConfig c;
  c.variant = "decoder";
  c.init = root + "/llama";
  c.tokenizer = kMiniLM + "/vocab.txt";
  c.corpus_dir = root + "/corpus";
  c.task = "qa1", c.facts_min = 1, c.facts_max = 2;
  c.num_mem_tokens = 2, c.segment_tokens = 24, c.batch = 3, c.lr = 1e-3, c.warmup = 2;
  c.eval_every = 2, c.val_count = 3, c.val_batch = 2, c.seed = 9;
  c.curriculum.max_segments = 2, c.curriculum.threshold = 0.01, c.curriculum.confirm = 1;
  c.curriculum.min_steps = 2, c.curriculum.max_steps = 4, c.curriculum.mixed_steps = 2;
  RmtTrainLimits all;
  all.max_total_steps = 7;
  RmtTrainSummary a = train_rmt(c, root + "/a", false, all);
  ASSERT_EQ(a.losses.size(), 7u);
  RmtTrainLimits first;
  first.max_total_steps = 3;  // stops between evaluations
  RmtTrainSummary b1 = train_rmt(c, root + "/b", false, first);
  RmtTrainSummary b2 = resume_rmt(root + "/b", all);
  std::vector<double> b = b1.losses;
  b.insert(b.end(), b2.losses.begin(), b2.losses.end());
  ASSERT_EQ(b.size(), a.losses.size());
  for (size_t i = 0; i < b.size(); ++i) EXPECT_EQ(b[i], a.losses[i]) << "step " << i + 1;
  EXPECT_LT(a.losses.back(), a.losses.front());  // it learns something (the answer words) in 7 steps
  // Stage directories are decoder directories that tokenize on their own; embeddings stayed frozen.
  ASSERT_TRUE(file_exists(root + "/a/stage-01/config.json"));
  EXPECT_EQ(rmt_variant(root + "/a/stage-01"), "decoder");
  EXPECT_TRUE(file_exists(root + "/a/stage-01/vocab.txt"));
  auto m = load_rmt_decoder(root + "/a/stage-01");
  EXPECT_EQ(m->config().segment_tokens, 24);
  EXPECT_EQ(m->config().eos_id, 102);
  auto base = load_llama_dir(root + "/llama");
  EXPECT_EQ(base->params().find("model.embed_tokens.weight")->value.to_vector(), m->embeddings().value.to_vector());
  // The wrong backbone for the variant is a clear error.
  RmtTrainConfig wrong = c;
  wrong.init = kMiniLM;
  EXPECT_NE(error_of([&] { train_rmt(wrong, root + "/c", false, first); }).find("Llama"), std::string::npos);
}

// Helper for tests/oracle/test_rmt_decoder.py (not a check by itself): when MNEMO_RMT_DECODER_ORACLE=DIR is set,
// load the RMT decoder DIR/model and the batch DIR/batch.json ({"B","S","L","A","text": (S,B,L), "lengths":
// (S,B), "answers": (B,A), "bptt_depth"}), run forward and backward, and write DIR/grads.safetensors: "loss" (1),
// "logits" (B, A, V), "memory_norm" (1) and every parameter's gradient under its name.
TEST(RmtDecoderOracle, DumpGradients) {
  const char* dir = std::getenv("MNEMO_RMT_DECODER_ORACLE");
  if (!dir) GTEST_SKIP() << "helper for tests/oracle/test_rmt_decoder.py (set MNEMO_RMT_DECODER_ORACLE)";
  auto model = load_rmt_decoder(join_path(dir, "model"));
  Json j = Json::parse(read_file(join_path(dir, "batch.json")));
  RmtDecoderBatch b;
  b.B = j["B"].as_int(), b.S = j["S"].as_int(), b.A = j["A"].as_int();
  for (auto& v : j["text"].as_array()) b.text.push_back(int32_t(v.as_int()));
  for (auto& v : j["lengths"].as_array()) b.lengths.push_back(int32_t(v.as_int()));
  for (auto& v : j["answers"].as_array()) b.answers.push_back(int32_t(v.as_int()));
  zero_all(*model);
  Tape tape, scratch(Tape::Mode::Inference);
  RmtDecoderResult r = rmt_decoder_forward(*model, tape, scratch, b, j["bptt_depth"].as_int());
  const int64_t V = model->backbone().config().vocab_size;
  std::vector<SafetensorsItem> items;
  items.emplace_back("loss", Tensor::from({1}, {float(r.loss)}));
  items.emplace_back("memory_norm", Tensor::from({1}, {float(r.memory_norm)}));
  items.emplace_back("logits", Tensor::from({b.B, b.A, V}, r.logits));
  for (auto& p : model->backbone().params().all()) items.emplace_back(p.name, p.grad);
  items.emplace_back("rmt.memory", model->memory_params()[0].grad);
  save_safetensors(join_path(dir, "grads.safetensors"), items);
}
