// RMT encoder on MiniLM (6 layers, d=384), 64 text tokens + 10 memory per segment: streaming inference over 64
// segments (batch 1) and one training step over 4 segments (batch 8, full BPTT, AdamW). bench/rmt_bench.py runs
// this and the same RMT in PyTorch on the same cores. The model: $MNEMO_RMT_MODEL (an RMT directory), else a fresh
// RMT on $MNEMO_DATA_DIR/models/minilm-l6-h384 (data/ by default; speed does not depend on the weights' values).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>

#include "base/rng.h"
#include "memory/rmt.h"
#include "memory/rmt_dir.h"
#include "train/optimizer.h"

using namespace mnemo;

namespace {

RmtEncoder& model() {
  static std::unique_ptr<RmtEncoder> m = [] {
    if (const char* dir = std::getenv("MNEMO_RMT_MODEL")) return load_rmt(dir);
    RmtConfig rc;
    rc.labels = {"bathroom", "hallway", "garden", "office", "bedroom", "kitchen"};
    const char* data = std::getenv("MNEMO_DATA_DIR");  // run from the repository root otherwise
    return rmt_from_pretrained(std::string(data ? data : "data") + "/models/minilm-l6-h384", rc, 1);
  }();
  return *m;
}

RmtBatch random_batch(int64_t B, int64_t S, int64_t L, uint64_t seed) {
  Rng rng(seed);
  RmtBatch b;
  b.B = B, b.S = S;
  for (int64_t i = 0; i < S * B * L; ++i) b.text.push_back(int32_t(1000 + rng.below(20000)));
  b.lengths.assign(size_t(S * B), int32_t(L));
  for (int64_t i = 0; i < B; ++i) b.labels.push_back(int32_t(rng.below(6)));
  return b;
}

void BM_RmtInference64(benchmark::State& state) {
  RmtEncoder& m = model();
  const int64_t L = m.config().segment_tokens, S = 64, B = 1;
  RmtBatch b = random_batch(B, S, L, 1);
  Tape tape(Tape::Mode::Inference);
  for (auto _ : state) {
    RmtStreamer st(m, tape, B);
    for (int64_t s = 0; s < S; ++s) st.step(b.text.data() + s * B * L, b.lengths.data() + s * B);
    benchmark::DoNotOptimize(st.classify());
  }
  state.counters["segments_per_s"] = benchmark::Counter(double(S), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_RmtTrainStep4(benchmark::State& state) {
  RmtEncoder& m = model();
  const int64_t L = m.config().segment_tokens, S = 4, B = 8;
  RmtBatch b = random_batch(B, S, L, 2);
  AdamWConfig ac;
  ac.lr = 1e-5f;
  AdamW ob(m.backbone().params(), ac), om(m.memory_params(), ac);
  Tape tape, scratch(Tape::Mode::Inference);
  auto step = [&] {
    m.backbone().params().zero_grad();
    m.memory_params().zero_grad();
    RmtResult r = rmt_forward(m, tape, scratch, b, 0);
    clip_grad_norm(m.backbone().params(), 1.0);
    ob.step(1e-5f);
    om.step(1e-5f);
    benchmark::DoNotOptimize(r.loss);
  };
  // Untimed first step, as the PyTorch side warms up and as a training run pays it once: it grows the tape's
  // arena (about 1 GB, faulted in page by page) and first touches the optimizer state; timed steps reuse both.
  step();
  for (auto _ : state) step();
}

}  // namespace

BENCHMARK(BM_RmtInference64)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RmtTrainStep4)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
