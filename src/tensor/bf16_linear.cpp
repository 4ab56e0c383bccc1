#include "tensor/bf16_linear.h"

#include <algorithm>
#include <array>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "tensor/gemm_internal.h"
#include "tensor/kernels.h"
#include "tensor/profile.h"
#include "tensor/quant.h"

namespace mnemo {

namespace {

using dnnl::memory;
using Dt = memory::data_type;
using Tag = memory::format_tag;

dnnl::engine& cpu() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// out (M,OC) f32 = a (M,C) bf16 @ w^T + bias for any M (oneDNN's runtime dimension: one primitive per layer shape
// rather than per batch size; 0-3 % slower than a fixed M, measured 2026-12-01 on Zen 4). The weight is read in
// place, (OC,C) row-major being oneDNN's "ba" view of (C,OC): packing it into oneDNN's blocked layout once would
// gain ~3 % at the price of a layout that depends on the ISA.
struct Matmul {
  memory::desc w, bias;
  dnnl::matmul prim;
  Matmul(int64_t C, int64_t OC, bool has_bias) : w({C, OC}, Dt::bf16, Tag::ba), bias({1, OC}, Dt::f32, Tag::ab) {
    const memory::desc a({DNNL_RUNTIME_DIM_VAL, C}, Dt::bf16, Tag::ab);
    const memory::desc out({DNNL_RUNTIME_DIM_VAL, OC}, Dt::f32, Tag::ab);
    auto d = has_bias ? dnnl::matmul::desc(a, w, bias, out) : dnnl::matmul::desc(a, w, out);
    prim = dnnl::matmul(dnnl::matmul::primitive_desc(d, cpu()));
  }
};

// One worker's rows, on the calling thread: round them, then one sequential oneDNN call. Primitives are cached per
// thread and layer shape (a model has a handful; building one costs ~0.1 ms).
void rows_native(float* out, const float* inp, const uint16_t* weight, const float* bias, int64_t M, int64_t C,
                 int64_t OC) {
  onednn_sequential_here();
  thread_local std::map<std::array<int64_t, 3>, Matmul> cache;
  thread_local dnnl::stream stream(cpu());
  thread_local std::vector<uint16_t> a;
  const std::array<int64_t, 3> key = {C, OC, bias != nullptr};
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, Matmul(C, OC, bias != nullptr)).first;
  const Matmul& mm = it->second;
  a.resize(size_t(M * C));
  fp32_to_bf16_row(a.data(), inp, M * C);
  const memory::desc ad({M, C}, Dt::bf16, Tag::ab), od({M, OC}, Dt::f32, Tag::ab);
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, memory(ad, cpu(), a.data())},
                                          {DNNL_ARG_WEIGHTS, memory(mm.w, cpu(), const_cast<uint16_t*>(weight))},
                                          {DNNL_ARG_DST, memory(od, cpu(), out)}};
  if (bias) args.emplace(DNNL_ARG_BIAS, memory(mm.bias, cpu(), const_cast<float*>(bias)));
  mm.prim.execute(stream, args);
  stream.wait();
}

}  // namespace

bool bf16_native() {
  static const bool native = [] {
    try {  // oneDNN's reference implementations ("ref:any") give the same numbers far slower than fp32
      const Matmul mm(64, 64, true);
      const char* impl = nullptr;
      dnnl_primitive_desc_query(mm.prim.get_primitive_desc(), dnnl_query_impl_info_str, 0, &impl);
      return impl && std::string(impl).rfind("ref", 0) != 0;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return native;
}

void linear_bf16_forward_widened(float* out, const float* inp, const uint16_t* weight, const float* bias,
                                 int64_t N, int64_t C, int64_t OC) {
  std::vector<uint16_t> a(size_t(N * C));
  std::vector<float> a32(a.size()), w32(size_t(OC * C));
  fp32_to_bf16_row(a.data(), inp, N * C);
  bf16_to_fp32_row(a32.data(), a.data(), N * C);
  bf16_to_fp32_row(w32.data(), weight, OC * C);
  linear_forward(out, a32.data(), w32.data(), bias, N, C, OC);  // split over the pool as usual
}

void linear_bf16_forward(float* out, const float* inp, const uint16_t* weight, const float* bias, int64_t N,
                         int64_t C, int64_t OC) {
  if (reference_kernels()) return ref::linear_bf16_forward(out, inp, weight, bias, N, C, OC);
  if (N <= 0 || OC <= 0) return;
  prof::Scope scope("linear_bf16_forward", N, C, OC);
  if (!bf16_native()) return linear_bf16_forward_widened(out, inp, weight, bias, N, C, OC);
  const int nth = num_threads();
  if (nth == 1 || N * OC * C < kParallelMacs) return rows_native(out, inp, weight, bias, N, C, OC);
  parallel_run([&](int ith, int nt) {  // rows split as gemm() splits them
    const auto [r0, r1] = worker_block(N, ith, nt);
    if (r0 < r1) rows_native(out + r0 * OC, inp + r0 * C, weight, bias, r1 - r0, C, OC);
  });
}

namespace ref {
void linear_bf16_forward(float* out, const float* inp, const uint16_t* weight, const float* bias, int64_t N,
                         int64_t C, int64_t OC) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < OC; ++o) {
      double acc = bias ? bias[o] : 0.0;
      for (int64_t c = 0; c < C; ++c)
        acc += double(bf16_to_fp32(fp32_to_bf16(inp[n * C + c]))) * double(bf16_to_fp32(weight[o * C + c]));
      out[n * OC + o] = float(acc);
    }
}
}  // namespace ref

}  // namespace mnemo
