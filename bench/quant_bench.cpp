// Quantized matvec y = W x at SmolLM2-135M's shapes, against the fp32 matvec on the same shape. The figure of merit
// is weight bytes read per second (bytes_per_second): decoding one token reads every weight once, so a kernel
// that keeps up with memory bandwidth is as fast as decode can go, and fewer bytes per weight is the whole point.
//
// Two regimes per case:
//  - hot: the same matrix every iteration (it stays in cache when small: measures the kernel's arithmetic);
//  - cold: cycles through enough copies of the matrix to exceed 256 MB, so every iteration streams from DRAM
//    (what decoding a 30-layer model actually does).
// Shapes (rows x cols): 576x576 (q/o projections), 1536x576 (gate/up), 576x1536 (down), 49152x576 (LM head).
// "CPU" is the process's CPU time per matvec (all threads), which time-slicing on a shared machine inflates less
// than the wall-clock time.
// Run: build-*/bench/bench_quant --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "tensor/kernels.h"
#include "tensor/quant.h"

using namespace mnemo;

namespace {

struct Weights {
  std::vector<std::vector<uint8_t>> copies;  // each (rows, row_bytes(t, cols))
  size_t bytes = 0;                          // of one copy
};

Weights make_weights(QType t, int64_t rows, int64_t cols, bool cold) {
  std::mt19937 gen(1);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> row(static_cast<size_t>(cols));  // (cols)
  Weights w;
  w.bytes = size_t(row_bytes(t, cols) * rows);
  const size_t n = cold ? std::max<size_t>(2, (size_t(256) << 20) / w.bytes + 1) : 1;
  w.copies.resize(n);
  for (size_t c = 0; c < n; ++c) {
    w.copies[c].resize(w.bytes);
    for (int64_t r = 0; r < rows; ++r) {
      if (c == 0 || r < 4) for (auto& v : row) v = normal(gen);
      quantize_row(t, row.data(), w.copies[c].data() + size_t(r * row_bytes(t, cols)), cols);
    }
  }
  return w;
}

// q8x: x is quantized to 8-bit blocks every call (its cost included) and W . x uses integer dots.
void run(benchmark::State& state, QType t, int64_t rows, int64_t cols, bool cold, bool q8x) {
  Weights w = make_weights(t, rows, cols, cold);
  std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));  // (cols), (rows)
  Q8Vector xq;
  size_t i = 0;
  for (auto _ : state) {
    const uint8_t* W = w.copies[i++ % w.copies.size()].data();
    if (q8x) {
      quantize_q8_vector(x.data(), cols, &xq);
      quant_matvec_q8(t, y.data(), W, xq, rows);
    } else if (t == QType::F32) matvec(y.data(), reinterpret_cast<const float*>(W), x.data(), nullptr, rows, cols);
    else quant_matvec(t, y.data(), W, x.data(), rows, cols);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(w.bytes));
  state.counters["weights_per_s"] =
      benchmark::Counter(double(state.iterations()) * double(rows * cols), benchmark::Counter::kIsRate);
  state.counters["threads"] = num_threads();
}

}  // namespace

int main(int argc, char** argv) {
  struct Shape2 {
    const char* name;
    int64_t rows, cols;
  };
  const Shape2 shapes[] = {{"576x576", 576, 576}, {"1536x576", 1536, 576}, {"576x1536", 576, 1536}, {"49152x576", 49152, 576}};
  const QType types[] = {QType::F32, QType::BF16, QType::Q8_0, QType::Q4_1, QType::Q4_0, QType::Q5_1};
  for (bool cold : {false, true})
    for (const auto& s : shapes)
      for (QType t : types)
        for (bool q8x : {false, true}) {
          if (q8x && !quant_matvec_q8_supported(t)) continue;
          std::string name = std::string("matvec/") + (cold ? "cold/" : "hot/") + s.name + "/" + qtype_name(uint32_t(t)) +
                             (q8x ? "_q8x" : "");
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { run(st, t, s.rows, s.cols, cold, q8x); })
              ->Unit(benchmark::kMicrosecond)
              ->MinTime(0.2)
              ->MeasureProcessCPUTime()  // CPU time of all threads: what a kernel costs even when cores are shared
              ->UseRealTime();
        }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
