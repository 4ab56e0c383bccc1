#include "memory/rmt_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "autograd/ops.h"
#include "base/error.h"
#include "base/rng.h"

namespace mnemo::ag {

Var scatter_rows(Tape& t, const Var& x, const std::vector<int64_t>& rows, const Var& src) {
  const int64_t C = x.value.dim(-1), N = x.value.numel() / C, R = int64_t(rows.size());
  MNEMO_CHECK(src.value.numel() == R * C, "scatter_rows: src ", shape_str(src.shape()), " for ", R, " rows of ", C);
  Var out = t.output(x.shape(), x.needs_grad() || src.needs_grad());  // (N,C)
  std::memcpy(out.data(), x.data(), size_t(N * C) * sizeof(float));
  for (int64_t r = 0; r < R; ++r) {
    const int64_t row = rows[size_t(r)];
    MNEMO_CHECK(0 <= row && row < N, "scatter_rows: row ", row, " of ", N);
    std::memcpy(out.data() + row * C, src.data() + r * C, size_t(C) * sizeof(float));
  }
  if (out.needs_grad()) {
    t.record([out, x, src, rows, N, C, R]() {
      const float* g = out.grad.data();
      if (x.needs_grad()) {
        // Everything but the replaced rows flows to x.
        std::vector<uint8_t> replaced(size_t(N), 0);  // (N)
        for (int64_t r : rows) replaced[size_t(r)] = 1;
        float* dx = const_cast<float*>(x.grad.data());
        for (int64_t n = 0; n < N; ++n)
          if (!replaced[size_t(n)])
            for (int64_t c = 0; c < C; ++c) dx[n * C + c] += g[n * C + c];
      }
      if (src.needs_grad()) {
        float* ds = const_cast<float*>(src.grad.data());
        for (int64_t r = 0; r < R; ++r)
          for (int64_t c = 0; c < C; ++c) ds[r * C + c] += g[rows[size_t(r)] * C + c];
      }
    });
  }
  return out;
}

}  // namespace mnemo::ag

namespace mnemo {

void init_memory_from_embeddings(Tensor& memory, const Tensor& w, uint64_t seed) {
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < w.numel(); ++i) sum += w[i], sq += double(w[i]) * w[i];
  const double n = double(w.numel()), mean = sum / n;
  double sd = std::sqrt(std::max(0.0, sq / n - mean * mean));
  if (!(sd > 0)) sd = 0.02;  // an all-zero (freshly declared) table
  Rng rng(seed);
  for (int64_t i = 0; i < memory.numel(); ++i) memory[i] = float(rng.normal() * sd);
}

Var repeat_memory(Tape& t, ParameterSet& ps, int64_t i, int64_t B) {
  const int64_t m = ps[i].value.dim(0);
  auto* ids = static_cast<int32_t*>(t.alloc_bytes(size_t(B * m) * sizeof(int32_t)));  // (B*m)
  for (int64_t k = 0; k < B * m; ++k) ids[k] = int32_t(k % m);
  return ag::embedding(t, ids, B * m, ps.var(t, i));  // (B*m, C): a lookup of rows 0..m-1 per sample
}

double mean_row_norm(const float* x, int64_t rows, int64_t C) {
  double acc = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += double(x[r * C + c]) * x[r * C + c];
    acc += std::sqrt(s);
  }
  return rows ? acc / double(rows) : 0.0;
}

Var constant_input(const Tensor& t) {
  Var v;
  v.value = t;
  return v;
}

}  // namespace mnemo
