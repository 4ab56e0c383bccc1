#include "tensor/quant_matmat.h"

#include <algorithm>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "tensor/kernels.h"
#include "tensor/simd.h"

namespace mnemo {

namespace ref {
void quant_matmat(QType t, float* Y, int64_t ldy, const void* W, const float* X, int64_t rows, int64_t cols,
                  int64_t n) {
  std::vector<float> y(static_cast<size_t>(rows));
  for (int64_t b = 0; b < n; ++b) {
    ref::quant_matvec(t, y.data(), W, X + b * cols, rows, cols);
    std::copy(y.begin(), y.end(), Y + b * ldy);
  }
}
}  // namespace ref

namespace {

using simd::kLanes;
using simd::Vf;

// y[v * ldy + r] = w[r] . x[v] for NR rows of w (ldw apart) and NV vectors x (ldx apart), over n values: NR * NV
// accumulators in registers, so each loaded vector of w serves NV products and each of x serves NR.
template <int NR, int NV>
void block_dots(const float* w, int64_t ldw, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy) {
  Vf acc[NR][NV];
  for (auto& a : acc)
    for (Vf& v : a) v = simd::zero();
  auto step = [&](int64_t j, int64_t m) {  // values [j, j + m), m <= kLanes
    Vf wv[NR];
    for (int r = 0; r < NR; ++r) wv[r] = m == kLanes ? simd::load(w + r * ldw + j) : simd::loadn(w + r * ldw + j, m);
    for (int v = 0; v < NV; ++v) {
      const Vf xv = m == kLanes ? simd::load(x + v * ldx + j) : simd::loadn(x + v * ldx + j, m);
      for (int r = 0; r < NR; ++r) acc[r][v] = simd::fmadd(wv[r], xv, acc[r][v]);
    }
  };
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) step(j, kLanes);
  if (j < n) step(j, n - j);  // a ragged end only for F32 rows of odd width
  for (int r = 0; r < NR; ++r)
    for (int v = 0; v < NV; ++v) y[v * ldy + r] = simd::reduce_add(acc[r][v]);
}

template <int NR>
void rows_dots(const float* w, int64_t ldw, const float* X, int64_t cols, int64_t n, float* y, int64_t ldy) {
  int64_t v = 0;
  for (; v + 4 <= n; v += 4) block_dots<NR, 4>(w, ldw, X + v * cols, cols, cols, y + v * ldy, ldy);
  switch (n - v) {
    case 3: return block_dots<NR, 3>(w, ldw, X + v * cols, cols, cols, y + v * ldy, ldy);
    case 2: return block_dots<NR, 2>(w, ldw, X + v * cols, cols, cols, y + v * ldy, ldy);
    case 1: return block_dots<NR, 1>(w, ldw, X + v * cols, cols, cols, y + v * ldy, ldy);
    default: return;
  }
}

}  // namespace

void quant_matmat(QType t, float* Y, int64_t ldy, const void* W, const float* X, int64_t rows, int64_t cols,
                  int64_t n) {
  if (reference_kernels()) return ref::quant_matmat(t, Y, ldy, W, X, rows, cols, n);
  MNEMO_CHECK(n >= 1 && ldy >= rows && qtype_dequantizable(t) && cols % qtype_block_size(t) == 0,
              "quant_matmat: ", n, " vectors, ", rows, "x", cols, " ", qtype_name(uint32_t(t)));
  constexpr int64_t kTile = 8;  // rows dequantized together; their n x kTile outputs are written out at once
  const int64_t rb = row_bytes(t, cols);
  parallel_for(rows, [&](int64_t r0, int64_t r1) {
    // Scratch reused across calls: kTile dequantized rows (kTile, cols) and their outputs (n, kTile). Outputs go
    // through the tile because Y's rows may lie a multiple of 4 KiB apart (the LM head: 49,152 floats), where
    // scattered single-float stores would all fall in one L1 set.
    thread_local std::vector<float> buf, out;
    buf.resize(size_t(kTile * cols));
    out.resize(size_t(n * kTile));
    for (int64_t r = r0; r < r1; r += kTile) {
      const int64_t nr = std::min(kTile, r1 - r);
      const char* rows_at = static_cast<const char*>(W) + r * rb;
      const float* w = reinterpret_cast<const float*>(rows_at);
      if (t != QType::F32) {
        for (int64_t i = 0; i < nr; ++i) dequantize_row(t, rows_at + i * rb, buf.data() + i * cols, cols);
        w = buf.data();
      }
      int64_t i = 0;
      for (; i + 2 <= nr; i += 2) rows_dots<2>(w + i * cols, cols, X, cols, n, out.data() + i, kTile);
      if (i < nr) rows_dots<1>(w + i * cols, cols, X, cols, n, out.data() + i, kTile);
      for (int64_t b = 0; b < n; ++b) std::copy_n(out.data() + b * kTile, nr, Y + b * ldy + r);
    }
  }, 16);
}

}  // namespace mnemo
