// GEMM and matvec against the machine's own limits, measured in the same run:
//  - FP32 peak: an FMA-throughput loop (12 independent 16-lane FMA chains per worker) on every pool worker, run
//    right before and after each product (the machine is shared; both then see the same load);
//  - memory bandwidth: a streaming read of a 512 MiB buffer on every worker, likewise around each matvec;
//  - mnemo::gemm at GPT-2 training shapes (forward, and the two backward products) as GFLOP/s and % of peak, beside
//    the same split with dnnl_sgemm (BM_GemmOnednnPool) or the packed kernel (BM_GemmPackedPool) in every worker,
//    and two other ways of calling oneDNN (row-major sgemm and the matmul primitive, both on oneDNN's own OpenMP
//    threads) so the choice in gemm.cpp stays measured;
//  - mnemo::matvec (decoding one token) as GB/s of weights read and % of the measured bandwidth.
// Run: build-*/bench/bench_gemm --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "base/thread_pool.h"
#include "tensor/gemm_internal.h"
#include "tensor/kernels.h"
#include "tensor/simd.h"

namespace {

using namespace mnemo;

// ---- machine limits ----

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// FMA throughput of all workers, best of 3 short runs: GFLOP/s of wall time and GFLOP per CPU-second of the process
// (2 flops per lane per FMA).
struct Peak {
  double wall = 0.0, cpu = 0.0;
};
Peak measure_peak() {
  const int64_t iters = 20'000'000;
  Peak best;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<float> sink(static_cast<size_t>(num_threads()));
    const double c0 = process_cpu_seconds();
    auto t0 = std::chrono::steady_clock::now();
    parallel_run([&](int ith, int) {
      simd::Vf acc[12];
      for (int i = 0; i < 12; ++i) acc[i] = simd::set1(1.0f + 1e-7f * float(i + ith));
      const simd::Vf a = simd::set1(0.9999999f), b = simd::set1(1e-7f);
      for (int64_t it = 0; it < iters; ++it)
        for (int i = 0; i < 12; ++i) acc[i] = simd::fmadd(acc[i], a, b);  // 12 chains hide the 4-cycle latency
      simd::Vf s = acc[0];
      for (int i = 1; i < 12; ++i) s += acc[i];
      sink[size_t(ith)] = simd::reduce_add(s);  // keep the loop alive
    });
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double c = process_cpu_seconds() - c0;
    benchmark::DoNotOptimize(sink.data());
    const double gflop = double(num_threads()) * double(iters) * 12.0 * 2.0 * double(simd::kLanes) / 1e9;
    best.wall = std::max(best.wall, gflop / t);
    best.cpu = std::max(best.cpu, gflop / c);
  }
  return best;
}

// The machine is shared: the peak is measured right before and right after each benchmark and the product's rate
// is reported as a percentage of their mean, so both see the same load (pct_peak). pct_peak_cpu compares GFLOP
// per CPU-second of the process instead: what the product reaches while it actually holds the cores, robust to
// time-slicing by other processes but blind to workers idling at the end of a split.
struct PeakBracket {
  Peak before = measure_peak();
  double c0 = process_cpu_seconds();
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  void finish(benchmark::State& st, double flops_per_iter) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = process_cpu_seconds() - c0;
    const Peak after = measure_peak();
    const double gflop = flops_per_iter * double(st.iterations()) / 1e9;
    st.counters["GFLOPs"] = gflop / secs;
    st.counters["peak_GFLOPs"] = 0.5 * (before.wall + after.wall);
    st.counters["pct_peak"] = 100.0 * gflop / secs / (0.5 * (before.wall + after.wall));
    st.counters["pct_peak_cpu"] = 100.0 * gflop / cpu / (0.5 * (before.cpu + after.cpu));
  }
};

std::vector<float> filled(size_t n, float v) { return std::vector<float>(n, v); }

// args: M, N, K, trans_a, trans_b. kernel: gemm() itself (null) or gemm()'s split with the given per-worker kernel.
void gemm_benchmark(benchmark::State& st, const GemmKernel* kernel) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const bool ta = st.range(3), tb = st.range(4);
  auto A = filled(size_t(M * K), 0.01f), B = filled(size_t(K * N), 0.02f), C = filled(size_t(M * N), 0.0f);
  PeakBracket bracket;
  for (auto _ : st) {
    if (kernel)
      gemm_with(*kernel, ta, tb, M, N, K, 1.0f, A.data(), ta ? M : K, B.data(), tb ? K : N, 0.0f, C.data(), N);
    else
      gemm(ta, tb, M, N, K, 1.0f, A.data(), ta ? M : K, B.data(), tb ? K : N, 0.0f, C.data(), N);
    benchmark::ClobberMemory();
  }
  bracket.finish(st, 2.0 * double(M) * double(N) * double(K));
}
void BM_Gemm(benchmark::State& st) { gemm_benchmark(st, nullptr); }
// The same pool split with dnnl_sgemm in every worker: gemm()'s kernel before the packed one (gemm.cpp).
void BM_GemmOnednnPool(benchmark::State& st) {
  const GemmKernel onednn = GemmKernel::onednn;
  gemm_benchmark(st, &onednn);
}

// The same split with mnemo's packed kernel in every worker (gemm.cpp: AVX2's kernel for A^T products).
void BM_GemmPackedPool(benchmark::State& st) {
  const GemmKernel packed = GemmKernel::packed;
  gemm_benchmark(st, &packed);
}

// oneDNN on its own OpenMP team of num_threads() threads (the alternative to gemm.cpp's split over the pool).
using SetThreadsFn = void (*)(int);
void omp_threads(int n) {
  static auto fn = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (fn) fn(n);
}

void BM_OnednnSgemmOmp(benchmark::State& st) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  auto A = filled(size_t(M * K), 0.01f), B = filled(size_t(K * N), 0.02f), C = filled(size_t(M * N), 0.0f);
  omp_threads(num_threads());
  PeakBracket bracket;
  for (auto _ : st) {
    dnnl_sgemm('N', 'T', M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C.data(), N);
    benchmark::ClobberMemory();
  }
  omp_threads(1);
  bracket.finish(st, 2.0 * double(M) * double(N) * double(K));
}

void BM_OnednnMatmulOmp(benchmark::State& st) {  // the matmul primitive, created once (as a cache would)
  using namespace dnnl;
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  auto A = filled(size_t(M * K), 0.01f), B = filled(size_t(K * N), 0.02f), C = filled(size_t(M * N), 0.0f);
  omp_threads(num_threads());
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  memory::desc ad({M, K}, memory::data_type::f32, {K, 1});
  memory::desc bd({K, N}, memory::data_type::f32, {1, K});  // weight (N, K) seen as (K, N) transposed
  memory::desc cd({M, N}, memory::data_type::f32, {N, 1});
  matmul prim(matmul::primitive_desc(matmul::desc(ad, bd, cd), eng));
  memory am(ad, eng, A.data()), bm(bd, eng, B.data()), cm(cd, eng, C.data());
  PeakBracket bracket;
  for (auto _ : st) {
    prim.execute(strm, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    strm.wait();
  }
  omp_threads(1);
  bracket.finish(st, 2.0 * double(M) * double(N) * double(K));
}

// GPT-2 training shapes. d=256 (4 layers), B*T = 8*256; d=512 (6 layers), B*T = 8*512. Forward products are
// inp (BT,C) @ W^T: (BT, 3C, C) qkv, (BT, C, C) attention projection, (BT, 4C, C) fc, (BT, C, 4C) fc-proj,
// (BT, V, C) LM head. Backward: dinp = dout @ W (no transposes), dW = dout^T @ inp (trans_a, K = BT).
void gpt2_shapes(benchmark::internal::Benchmark* b) {
  for (int64_t C : {256, 512}) {
    const int64_t BT = C == 256 ? 2048 : 4096;
    for (int64_t N : {3 * C, C, 4 * C}) b->Args({BT, N, C, 0, 1});
    b->Args({BT, C, 4 * C, 0, 1});
    b->Args({BT, C, 4 * C, 0, 0});      // backward dinp of the fc layer: (BT, 4C) @ (4C, C)
    b->Args({4 * C, C, BT, 1, 0});      // backward dW of the fc layer: (4C, BT) @ (BT, C)
  }
  b->Args({2048, 50257, 256, 0, 1});  // GPT-2 vocabulary LM head at d=256
  b->Args({512, 256, 256, 0, 1});     // a small product: 64 MFLOP
}
void omp_shapes(benchmark::internal::Benchmark* b) {
  for (int64_t C : {256, 512}) {
    const int64_t BT = C == 256 ? 2048 : 4096;
    for (int64_t N : {3 * C, C, 4 * C}) b->Args({BT, N, C});
    b->Args({BT, C, 4 * C});
  }
  b->Args({512, 256, 256});
}

BENCHMARK(BM_Gemm)->Apply(gpt2_shapes)->ArgNames({"M", "N", "K", "ta", "tb"})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GemmOnednnPool)
    ->Apply(gpt2_shapes)
    ->ArgNames({"M", "N", "K", "ta", "tb"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_GemmPackedPool)
    ->Apply(gpt2_shapes)
    ->ArgNames({"M", "N", "K", "ta", "tb"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_OnednnSgemmOmp)->Apply(omp_shapes)->ArgNames({"M", "N", "K"})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_OnednnMatmulOmp)->Apply(omp_shapes)->ArgNames({"M", "N", "K"})->Unit(benchmark::kMillisecond)->UseRealTime();

// ---- bandwidth and matvec ----

// Streaming read of a 512 MiB buffer on all workers (4 independent accumulators each): GB/s, best of 3.
double measure_read_gbs() {
  static std::vector<float> buf(size_t(128) << 20, 1.0f);  // 512 MiB: far beyond every cache
  const int64_t n = int64_t(buf.size());
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<float> sink(static_cast<size_t>(num_threads()));
    auto t0 = std::chrono::steady_clock::now();
    parallel_run([&](int ith, int nth) {
      int64_t b = n * ith / nth / 64 * 64, e = ith == nth - 1 ? n : n * (ith + 1) / nth / 64 * 64;
      simd::Vf a0 = simd::zero(), a1 = simd::zero(), a2 = simd::zero(), a3 = simd::zero();
      for (int64_t i = b; i + 4 * simd::kLanes <= e; i += 4 * simd::kLanes) {
        a0 += simd::load(&buf[size_t(i)]);
        a1 += simd::load(&buf[size_t(i + simd::kLanes)]);
        a2 += simd::load(&buf[size_t(i + 2 * simd::kLanes)]);
        a3 += simd::load(&buf[size_t(i + 3 * simd::kLanes)]);
      }
      sink[size_t(ith)] = simd::reduce_add(a0 + a1 + a2 + a3);
    });
    double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(sink.data());
    best = std::max(best, double(n) * 4.0 / t / 1e9);
  }
  return best;
}

// rows, cols: y (rows) = W (rows, cols) @ x, as GB/s of W read and % of the read bandwidth measured right before
// and after (the machine is shared). W larger than the caches is the decode case (weights stream from memory);
// small W stays in L2/L3 and may exceed the memory bandwidth.
void BM_Matvec(benchmark::State& st) {
  const int64_t rows = st.range(0), cols = st.range(1);
  auto W = filled(size_t(rows * cols), 0.01f), x = filled(size_t(cols), 1.0f), y = filled(size_t(rows), 0.0f);
  const double bw_before = measure_read_gbs();
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : st) {
    matvec(y.data(), W.data(), x.data(), nullptr, rows, cols);
    benchmark::ClobberMemory();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double bw = 0.5 * (bw_before + measure_read_gbs());
  const double rate = double(rows * cols) * 4.0 * double(st.iterations()) / secs / 1e9;
  st.counters["GBs"] = rate;
  st.counters["read_bw_GBs"] = bw;
  st.counters["pct_bw"] = 100.0 * rate / bw;
}
// GPT-2 small decode shapes (d=768): qkv (2304, 768), fc (3072, 768), LM head (50257, 768), and d=512's fc-proj.
BENCHMARK(BM_Matvec)
    ->Args({2304, 768})
    ->Args({3072, 768})
    ->Args({512, 2048})
    ->Args({50257, 768})
    ->ArgNames({"rows", "cols"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
