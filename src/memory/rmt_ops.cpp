#include "memory/rmt_ops.h"

#include <cstring>

#include "base/error.h"

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
