// The non-GEMM kernels, fast against their reference twins in the same run (each benchmark takes /0 = fast,
// /1 = reference; the reference is single-threaded plain loops, so the ratio includes threading and SIMD).
// Shapes are those of a GPT-2 d=512 training step with B*T = 4096 (B=8, T=512, 8 heads of 64) and a 16384 vocab;
// the Llama ones are SmolLM2-135M's.
// Run: build-*/bench/bench_kernels --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "tensor/kernels.h"
#include "tensor/llama_kernels.h"

namespace {

using namespace mnemo;

struct Mode {  // selects fast (0) or reference (1) kernels for one benchmark
  explicit Mode(benchmark::State& st) { set_reference_kernels(st.range(0) != 0); }
  ~Mode() { set_reference_kernels(false); }
};

std::vector<float> ramp(size_t n, float scale) {  // deterministic O(1) values without a generator
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * float(int64_t(i * 2654435761u % 2001) - 1000) / 1000.0f;
  return v;
}

constexpr int64_t BT = 4096, C = 512;

void bytes_counter(benchmark::State& st, double bytes) {
  st.counters["GBs"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_LayerNormForward(benchmark::State& st) {
  Mode m(st);
  auto x = ramp(BT * C, 1.0f), w = ramp(C, 1.0f), b = ramp(C, 0.1f);
  std::vector<float> out(BT * C), mean(BT), rstd(BT);  // (BT, C), (BT), (BT)
  for (auto _ : st) layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), BT, C, 1e-5f);
  bytes_counter(st, 2.0 * BT * C * 4);
}

void BM_LayerNormBackward(benchmark::State& st) {
  Mode m(st);
  auto x = ramp(BT * C, 1.0f), w = ramp(C, 1.0f), b = ramp(C, 0.1f), g = ramp(BT * C, 0.5f);
  std::vector<float> out(BT * C), mean(BT), rstd(BT), dx(BT * C), dw(C), db(C);
  ref::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), BT, C, 1e-5f);
  for (auto _ : st)
    layernorm_backward(dx.data(), dw.data(), db.data(), g.data(), x.data(), w.data(), mean.data(), rstd.data(), BT, C);
  bytes_counter(st, 3.0 * BT * C * 4);
}

void BM_GeluTanhForward(benchmark::State& st) {
  Mode m(st);
  const int64_t n = BT * 4 * C;
  auto x = ramp(n, 3.0f);
  std::vector<float> y(n);  // (BT, 4C)
  for (auto _ : st) gelu_forward(y.data(), x.data(), n, Gelu::Tanh);
  bytes_counter(st, 2.0 * n * 4);
}

void BM_GeluTanhBackward(benchmark::State& st) {
  Mode m(st);
  const int64_t n = BT * 4 * C;
  auto x = ramp(n, 3.0f), g = ramp(n, 1.0f);
  std::vector<float> dx(n);
  for (auto _ : st) gelu_backward(dx.data(), x.data(), g.data(), n, Gelu::Tanh);
  bytes_counter(st, 3.0 * n * 4);
}

void BM_Softmax(benchmark::State& st) {
  Mode m(st);
  const int64_t N = 8 * 8 * 512, T = 512;  // (B, H, T) rows of T scores
  auto x = ramp(N * T, 4.0f);
  std::vector<float> y(N * T);
  for (auto _ : st) softmax_forward(y.data(), x.data(), N, T);
  bytes_counter(st, 2.0 * N * T * 4);
}

void BM_AttentionForwardBackward(benchmark::State& st) {
  Mode m(st);
  AttentionShape s{2, 512, 512, 8, 8, 64, 0, true};  // B=2 keeps the reference run short
  const int64_t nq = s.B * s.Tq * s.H * s.hs, nk = s.B * s.Tk * s.Hkv * s.hs;
  auto q = ramp(nq, 1.0f), k = ramp(nk, 1.0f), v = ramp(nk, 1.0f), g = ramp(nq, 1.0f);
  std::vector<float> out(nq), probs(s.B * s.H * s.Tq * s.Tk), dq(nq), dk(nk), dv(nk);
  for (auto _ : st) {
    attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), nullptr, s, 0.125f, nullptr);
    attention_backward(dq.data(), dk.data(), dv.data(), g.data(), probs.data(), q.data(), k.data(), v.data(), s,
                       0.125f);
  }
  // Dense-equivalent flops: forward 2 products, backward 4, each 2*B*H*T*T*hs.
  st.counters["GFLOPs"] = benchmark::Counter(6.0 * 2.0 * s.B * s.H * s.Tq * s.Tk * s.hs,
                                             benchmark::Counter::kIsIterationInvariantRate);
}

// Inference attention of a MiniLM batch: 8 sequences of 128 tokens, 12 heads of 32, bidirectional (the shape
// `mnemo embed` runs per layer). range(1) = 1 adds a padding mask (a quarter of each sequence's keys).
void BM_AttentionForwardEncoder(benchmark::State& st) {
  Mode m(st);
  AttentionShape s{8, 128, 128, 12, 12, 32, 0, false};
  const int64_t nq = s.B * s.Tq * s.H * s.hs;
  auto q = ramp(nq, 1.0f), k = ramp(nq, 1.0f), v = ramp(nq, 1.0f);
  std::vector<float> out(nq), probs(s.B * s.H * s.Tq * s.Tk);
  std::vector<uint8_t> valid(size_t(s.B * s.Tk), 1);
  for (int64_t i = 0; i < s.B * s.Tk; ++i) valid[size_t(i)] = i % s.Tk < 96;
  const uint8_t* kv = st.range(1) ? valid.data() : nullptr;
  for (auto _ : st)
    attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), kv, s, 0.17677f, nullptr);
  st.counters["GFLOPs"] = benchmark::Counter(2.0 * 2.0 * s.B * s.H * s.Tq * s.Tk * s.hs,
                                             benchmark::Counter::kIsIterationInvariantRate);
}

// Decoding one token against a cache of Tk keys: GPT-2 small's 12 heads of 64 (the kernel the KV-cache verbs run
// once per layer per token). range(1) = Tk.
void BM_AttentionDecode(benchmark::State& st) {
  Mode m(st);
  const int64_t Tk = st.range(1);
  AttentionShape s{1, 1, Tk, 12, 12, 64, Tk - 1, true};
  const int64_t nq = s.H * s.hs, nk = Tk * s.Hkv * s.hs;
  auto q = ramp(nq, 1.0f), k = ramp(nk, 1.0f), v = ramp(nk, 1.0f);
  std::vector<float> out(nq), probs(s.H * Tk);
  for (auto _ : st)
    attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), nullptr, s, 0.125f, nullptr);
  bytes_counter(st, 2.0 * nk * 4);  // K and V read once
}

void BM_CrossEntropyForwardBackward(benchmark::State& st) {
  Mode m(st);
  const int64_t N = 1024, V = 16384;
  auto logits = ramp(N * V, 5.0f);
  std::vector<int32_t> t(N);
  for (int64_t n = 0; n < N; ++n) t[n] = int32_t(n * 37 % V);
  std::vector<float> losses(N), dl(N, 1.0f / N), dlogits(N * V);
  for (auto _ : st) {
    crossentropy_forward(losses.data(), logits.data(), t.data(), N, V);
    crossentropy_backward(dlogits.data(), logits.data(), t.data(), dl.data(), N, V);
  }
  bytes_counter(st, 4.0 * N * V * 4);
}

void BM_AdamW(benchmark::State& st) {
  Mode m(st);
  const int64_t n = 16 << 20;  // 16M parameters
  auto p = ramp(n, 1.0f), g = ramp(n, 0.1f);
  std::vector<float> mm(n), vv(n);
  AdamWConfig cfg;
  cfg.weight_decay = 0.1f;
  int64_t step = 0;
  for (auto _ : st) adamw_update(p.data(), g.data(), mm.data(), vv.data(), n, cfg, ++step);
  bytes_counter(st, 7.0 * n * 4);  // read p, g, m, v; write p, m, v
}

void BM_EmbeddingForwardBackward(benchmark::State& st) {
  Mode m(st);
  const int64_t V = 16384;
  auto table = ramp(V * C, 1.0f), g = ramp(BT * C, 1.0f);
  std::vector<int32_t> ids(BT);
  for (int64_t n = 0; n < BT; ++n) ids[n] = int32_t(n * 7919 % V);
  std::vector<float> out(BT * C), dtable(V * C);
  for (auto _ : st) {
    embedding_forward(out.data(), ids.data(), table.data(), BT, C);
    embedding_backward(dtable.data(), g.data(), ids.data(), BT, C);
  }
  bytes_counter(st, 5.0 * BT * C * 4);
}

// Llama's row kernels at SmolLM2-135M's decode shapes, prefill of 512 tokens: RMSNorm (512, 576), SwiGLU
// (512, 1536), rotary positions (512 tokens x 9 heads of 64).
void BM_LlamaRmsNormSwigluRope(benchmark::State& st) {
  Mode m(st);
  const int64_t N = 512, Cm = 576, I = 1536, H = 9, hs = 64;
  auto x = ramp(N * Cm, 1.0f), w = ramp(Cm, 1.0f), g = ramp(N * I, 3.0f), u = ramp(N * I, 1.0f);
  auto q = ramp(N * H * hs, 1.0f), cs = ramp(N * hs / 2, 1.0f), sn = ramp(N * hs / 2, 1.0f);
  std::vector<float> y(N * Cm), r(N), a(N * I), qr(N * H * hs);
  for (auto _ : st) {
    rmsnorm_forward(y.data(), r.data(), x.data(), w.data(), N, Cm, 1e-5f);
    swiglu_forward(a.data(), g.data(), u.data(), N * I);
    rope_forward(qr.data(), q.data(), cs.data(), sn.data(), N, H, hs);
  }
  bytes_counter(st, 4.0 * (2 * N * Cm + 3 * N * I + 2 * N * H * hs));
}

// One decode step of SmolLM2's attention for one kv head (3 query heads of 64) over Tk cached entries: scores,
// softmax, weighted sum (tensor/llama_kernels.h). range(1) = Tk.
void BM_LlamaDecodeAttention(benchmark::State& st) {
  Mode m(st);
  const int64_t Tk = st.range(1), G = 3, hs = 64;
  auto q = ramp(G * hs, 1.0f), K = ramp(Tk * hs, 1.0f), V = ramp(Tk * hs, 1.0f);
  std::vector<float> s(G * Tk), out(G * hs);  // (G, Tk), (G, hs)
  for (auto _ : st) {
    attn_scores(s.data(), Tk, q.data(), K.data(), Tk, G, hs, 0.125f);
    for (int64_t g = 0; g < G; ++g) attn_softmax(s.data() + g * Tk, Tk, Tk);
    attn_mix(out.data(), hs, s.data(), Tk, V.data(), Tk, G, hs, 0, hs);
  }
  bytes_counter(st, 2.0 * Tk * hs * 4);  // K and V read once
}

#define KERNEL_BENCH(fn) BENCHMARK(fn)->ArgName("reference")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()
KERNEL_BENCH(BM_LayerNormForward);
KERNEL_BENCH(BM_LayerNormBackward);
KERNEL_BENCH(BM_GeluTanhForward);
KERNEL_BENCH(BM_GeluTanhBackward);
KERNEL_BENCH(BM_Softmax);
KERNEL_BENCH(BM_AttentionForwardBackward);
BENCHMARK(BM_AttentionForwardEncoder)
    ->ArgNames({"reference", "mask"})
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_AttentionDecode)
    ->ArgNames({"reference", "Tk"})
    ->ArgsProduct({{0, 1}, {64, 512, 4096}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
KERNEL_BENCH(BM_CrossEntropyForwardBackward);
KERNEL_BENCH(BM_AdamW);
KERNEL_BENCH(BM_EmbeddingForwardBackward);
KERNEL_BENCH(BM_LlamaRmsNormSwigluRope);
BENCHMARK(BM_LlamaDecodeAttention)
    ->ArgNames({"reference", "Tk"})
    ->ArgsProduct({{0, 1}, {128, 2048}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
