// Ways of threading one fp32 GEMM on this machine, per shape of a GPT-2 training step: the measurement behind the
// choice in src/tensor/gemm.cpp (docs/performance.md). Variants, each C (M,N) += op(A) op(B) with beta = 1:
//   pool        C split in num_threads() blocks of rows (or columns), one sequential dnnl_sgemm each (gemm()'s
//               split with oneDNN in every worker)
//   pool-cols   the same, always split by columns
//   transA+pool A^T copied to a row-major scratch first (only for A transposed), then "pool" N,N
//   omp2        one dnnl_sgemm on oneDNN's own OpenMP team of 2
//   Ksplit      the inner dimension split over workers, partial sums added afterwards
//   matmul-seq  the oneDNN matmul primitive (created per call, oneDNN caches it), sequential in each pool worker
//   packed      the pool split with mnemo's own packed kernel in each worker (gemm.cpp) instead of dnnl_sgemm
// Rates are GFLOP per CPU-second of the process x 2 (what both cores would give if the process had them to
// itself), medians of 7 interleaved runs: on a shared machine this is steadier than wall time, and it charges
// spinning OpenMP threads to the variant that starts them. Run: build-*/bench/bench_gemm_split [fwd|dw|rmt]
// (rmt: the products of the RMT training step on MiniLM, B*T = 8 * 77 = 616, d = 384, bench/rmt_bench.cpp)
#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "tensor/gemm_internal.h"
#include "tensor/kernels.h"

using namespace mnemo;

namespace {

using SetT = void (*)(int);
SetT omp_set() { return reinterpret_cast<SetT>(dlsym(RTLD_DEFAULT, "omp_set_num_threads")); }
double now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

dnnl::engine& eng() { static dnnl::engine e(dnnl::engine::kind::cpu, 0); return e; }
// C(M,N) (+)= op(A) op(B), row-major strided, sequential on this thread
void mm_seq(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  using namespace dnnl;
  thread_local bool once = false; if (!once) { omp_set()(1); once = true; }
  memory::desc ad({M, K}, memory::data_type::f32, ta ? memory::dims{1, lda} : memory::dims{lda, 1});
  memory::desc bd({K, N}, memory::data_type::f32, tb ? memory::dims{1, ldb} : memory::dims{ldb, 1});
  memory::desc cd({M, N}, memory::data_type::f32, memory::dims{ldc, 1});
  primitive_attr attr;
  if (beta != 0) { post_ops po; po.append_sum(beta); attr.set_post_ops(po); }
  matmul::primitive_desc pd(matmul::desc(ad, bd, cd), attr, eng());
  matmul p(pd);
  stream s(eng());
  memory am(ad, eng(), const_cast<float*>(A)), bm(bd, eng(), const_cast<float*>(B)), cm(cd, eng(), C);
  p.execute(s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
  s.wait();
}

}  // namespace

int main(int argc, char** argv) {
  set_num_threads(2);
  struct S {
    int64_t M, N, K;
    bool ta, tb;
  };
  const std::string which = argc > 1 ? argv[1] : "fwd";
  std::vector<S> shapes;
  if (which == "rmt")  // dW (T,N), forward (N,T), dinp (N,N)
    shapes = {{384, 384, 616, 1, 0},  {1536, 384, 616, 1, 0}, {384, 1536, 616, 1, 0},
              {616, 384, 384, 0, 1},  {616, 1536, 384, 0, 1}, {616, 384, 1536, 0, 1},
              {616, 384, 384, 0, 0},  {616, 384, 1536, 0, 0}, {616, 1536, 384, 0, 0}};
  else if (which == "dw")  // weight gradients dW (OC,C) += dout^T (OC,BT) @ inp (BT,C), B*T = 2048
    shapes = {{2048, 512, 2048, 1, 0}, {512, 2048, 2048, 1, 0}, {1536, 512, 2048, 1, 0}, {512, 512, 2048, 1, 0},
              {8192, 512, 2048, 1, 0}, {1024, 256, 2048, 1, 0}, {256, 1024, 2048, 1, 0}, {768, 256, 2048, 1, 0},
              {8192, 256, 2048, 1, 0}};
  else  // forward (N,T) and input-gradient (N,N) products at d = 256 and 512
    shapes = {{2048, 768, 256, 0, 1},  {2048, 256, 256, 0, 1},  {2048, 1024, 256, 0, 1}, {2048, 256, 1024, 0, 1},
              {2048, 8192, 256, 0, 1}, {2048, 256, 8192, 0, 0}, {2048, 1536, 512, 0, 1}, {2048, 2048, 512, 0, 1},
              {2048, 512, 2048, 0, 1}, {2048, 8192, 512, 0, 1}, {2048, 512, 8192, 0, 0}};
  const int reps = 7;
  for (auto s : shapes) {
    const int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
    std::vector<float> A(size_t(s.M * s.K)), B(size_t(s.K * s.N)), C(size_t(s.M * s.N)), At(size_t(s.M * s.K)),
        P(size_t(s.M * s.N));
    for (size_t i = 0; i < A.size(); ++i) A[i] = float(i % 97) * 0.01f;
    for (size_t i = 0; i < B.size(); ++i) B[i] = float(i % 89) * 0.01f;
    const int NV = 7;
    std::vector<std::vector<double>> t(NV);
    const char* names[NV] = {"pool", "pool-cols", "transA+pool", "omp2", "Ksplit", "matmul-seq", "packed"};
    auto split = [](int64_t len, int ith, int nt, int64_t& b0, int64_t& b1) {
      auto edge = [&](int i) { return std::min(len, (len * i / nt + 8) / 16 * 16); };
      b0 = ith == 0 ? 0 : edge(ith), b1 = ith == nt - 1 ? len : edge(ith + 1);
    };
    for (int r = 0; r < reps; ++r)
      for (int v = 0; v < NV; ++v) {
        if (v == 2 && !s.ta) continue;
        const double t0 = now();
        if (v == 6) {
          gemm_with(GemmKernel::packed, s.ta, s.tb, s.M, s.N, s.K, 1, A.data(), lda, B.data(), ldb, 1, C.data(), s.N);
        } else if (v == 0) {
          gemm_with(GemmKernel::onednn, s.ta, s.tb, s.M, s.N, s.K, 1, A.data(), lda, B.data(), ldb, 1, C.data(), s.N);
        } else if (v == 1) {
          parallel_run([&](int ith, int nt) {
            int64_t b0, b1;
            split(s.N, ith, nt, b0, b1);
            const float* b = s.tb ? B.data() + b0 * ldb : B.data() + b0;
            gemm_sequential(s.ta, s.tb, s.M, b1 - b0, s.K, 1, A.data(), lda, b, ldb, 1, C.data() + b0, s.N);
          });
        } else if (v == 2) {
          parallel_for(s.M, [&](int64_t m0, int64_t m1) {  // A stored (K,M) -> At (M,K)
            for (int64_t k0 = 0; k0 < s.K; k0 += 64)
              for (int64_t m = m0; m < m1; ++m)
                for (int64_t k = k0; k < std::min(s.K, k0 + 64); ++k) At[size_t(m * s.K + k)] = A[size_t(k * s.M + m)];
          });
          gemm_with(GemmKernel::onednn, false, s.tb, s.M, s.N, s.K, 1, At.data(), s.K, B.data(), ldb, 1, C.data(),
                    s.N);
        } else if (v == 3) {
          omp_set()(2);
          dnnl_sgemm(s.ta ? 'T' : 'N', s.tb ? 'T' : 'N', s.M, s.N, s.K, 1, A.data(), lda, B.data(), ldb, 1, C.data(), s.N);
          omp_set()(1);
        } else if (v == 4) {
          parallel_run([&](int ith, int nt) {
            const int64_t k0 = s.K * ith / nt, k1 = s.K * (ith + 1) / nt;
            const float* a = s.ta ? A.data() + k0 * lda : A.data() + k0;
            const float* b = s.tb ? B.data() + k0 : B.data() + k0 * ldb;
            if (ith == 0)
              gemm_sequential(s.ta, s.tb, s.M, s.N, k1 - k0, 1, a, lda, b, ldb, 1, C.data(), s.N);
            else
              gemm_sequential(s.ta, s.tb, s.M, s.N, k1 - k0, 1, a, lda, b, ldb, 0, P.data(), s.N);
          });
          parallel_for(s.M, [&](int64_t m0, int64_t m1) {
            for (int64_t i = m0 * s.N; i < m1 * s.N; ++i) C[size_t(i)] += P[size_t(i)];
          });
        } else {
          parallel_run([&](int ith, int nt) {
            const bool rows = s.M >= s.N;
            int64_t b0, b1;
            split(rows ? s.M : s.N, ith, nt, b0, b1);
            if (rows)
              mm_seq(s.ta, s.tb, b1 - b0, s.N, s.K, s.ta ? A.data() + b0 : A.data() + b0 * lda, lda, B.data(), ldb, 1,
                     C.data() + b0 * s.N, s.N);
            else
              mm_seq(s.ta, s.tb, s.M, b1 - b0, s.K, A.data(), lda, s.tb ? B.data() + b0 * ldb : B.data() + b0, ldb,
                     1, C.data() + b0, s.N);
          });
        }
        t[size_t(v)].push_back(now() - t0);
      }
    std::printf("%s %lldx%lldx%lld:", s.ta ? "T,N" : (s.tb ? "N,T" : "N,N"), (long long)s.M, (long long)s.N,
                (long long)s.K);
    for (int v = 0; v < NV; ++v) {
      auto& tv = t[size_t(v)];
      if (tv.empty()) continue;
      std::sort(tv.begin(), tv.end());
      std::printf("  %s %.0f", names[v], 2.0 * 2.0 * double(s.M * s.N * s.K) / tv[tv.size() / 2] / 1e9);
    }
    std::printf("  GFLOP/s per CPU-second x 2\n");
    std::fflush(stdout);
  }
}
