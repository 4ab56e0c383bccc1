// Scaled dot-product attention, fast version. Per (batch, head) the scores are one product Q K^T straight into the
// probabilities buffer, the masked softmax runs row by row in SIMD, and the output is one product P V: both
// products go through oneDNN sequentially, while (batch, head, row-block) units are spread over the pool. A unit of
// at most kDirectRows query rows (decoding) uses direct SIMD dot products and a weighted sum of V rows instead.
// Backward runs per (batch, kv head) so query heads that share a kv head (GQA) accumulate dk, dv on one thread.
#include <algorithm>
#include <cmath>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "tensor/gemm_internal.h"
#include "tensor/kernels.h"
#include "tensor/profile.h"
#include "tensor/simd.h"

namespace mnemo {

namespace {

using namespace simd;

// Masked softmax of one score row p (Tk) in place: keys j >= limit and keys with key_valid[j] == 0 get
// probability 0; a row with no visible key becomes all zeros.
void masked_softmax_row(float* p, int64_t Tk, int64_t limit, const uint8_t* key_valid) {
  if (key_valid)
    for (int64_t j = 0; j < limit; ++j)
      if (!key_valid[j]) p[j] = -INFINITY;
  Vf mx = set1(-INFINITY);
  int64_t j = 0;
  for (; j + kLanes <= limit; j += kLanes) mx = max(mx, load(p + j));
  if (j < limit) mx = max(mx, loadn(p + j, limit - j, -INFINITY));
  const float m = reduce_max(mx);
  if (m == -INFINITY) {  // nothing visible
    std::fill(p, p + Tk, 0.0f);
    return;
  }
  const Vf mv = set1(m);
  Vf sum = zero();
  for (j = 0; j + kLanes <= limit; j += kLanes) {
    Vf e = exp(load(p + j) - mv);  // exp(-inf) = 0 for padded keys
    store(p + j, e);
    sum += e;
  }
  if (j < limit) {
    Vf e = exp(loadn(p + j, limit - j, -INFINITY) - mv);
    storen(p + j, e, limit - j);
    sum += e;
  }
  const Vf inv = set1(1.0f / reduce_add(sum));
  for (j = 0; j + kLanes <= limit; j += kLanes) store(p + j, load(p + j) * inv);
  if (j < limit) storen(p + j, loadn(p + j, limit - j) * inv, limit - j);
  std::fill(p + limit, p + Tk, 0.0f);  // keys in the causal future
}

// Dot product of two rows of length n.
float dot(const float* a, const float* b, int64_t n) {
  Vf acc = zero();
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) acc = fmadd(load(a + c), load(b + c), acc);
  if (c < n) acc = fmadd(loadn(a + c, n - c), loadn(b + c, n - c), acc);
  return reduce_add(acc);
}

// o (hs) = sum_j p[j] * v_j over j < kmax, v rows of length hs at stride ks.
void weighted_sum(float* o, const float* p, const float* v, int64_t kmax, int64_t ks, int64_t hs) {
  int64_t c = 0;
  for (; c < hs; c += 4 * kLanes) {  // up to 4 vectors of the output in registers across all keys
    const int64_t w = std::min<int64_t>(4 * kLanes, hs - c);
    Vf a[4] = {zero(), zero(), zero(), zero()};
    for (int64_t j = 0; j < kmax; ++j) {
      if (p[j] == 0.0f) continue;  // masked keys
      const Vf pj = set1(p[j]);
      const float* vj = v + j * ks + c;
      for (int64_t u = 0; u * kLanes < w; ++u) {
        const int64_t n = std::min(kLanes, w - u * kLanes);
        a[u] = fmadd(pj, n == kLanes ? load(vj + u * kLanes) : loadn(vj + u * kLanes, n), a[u]);
      }
    }
    for (int64_t u = 0; u * kLanes < w; ++u) {
      const int64_t n = std::min(kLanes, w - u * kLanes);
      if (n == kLanes)
        store(o + c + u * kLanes, a[u]);
      else
        storen(o + c + u * kLanes, a[u], n);
    }
  }
}

// Below this many query rows per unit, scores and output are direct SIMD loops: a oneDNN call per (batch, head)
// costs more than the few dot products of decoding.
constexpr int64_t kDirectRows = 4;
// Query rows per block in causal attention: small enough that skipping the keys a block cannot see saves most of
// the upper triangle (5/8 of the T x T work remains at T = 256), large enough that each product stays efficient.
constexpr int64_t kRowBlock = 64;

std::vector<float>& scratch(size_t n) {  // per-thread work buffer, grown once and reused
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf;
}

}  // namespace

void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       const uint8_t* key_valid, const AttentionShape& s, float scale,
                       const AttentionObserver* observer) {
  if (reference_kernels()) return ref::attention_forward(out, probs, q, k, v, key_valid, s, scale, observer);
  prof::Scope scope("attention_forward", s.B * s.H, s.Tq, s.Tk);
  MNEMO_CHECK(s.Hkv > 0 && s.H % s.Hkv == 0, "attention: H=", s.H, " not a multiple of Hkv=", s.Hkv);
  MNEMO_CHECK(probs || !(observer && *observer), "attention: an observer needs the probabilities");
  const int64_t group = s.H / s.Hkv;
  const int64_t qs = s.H * s.hs, ks = s.Hkv * s.hs;  // row strides of q/out and of k/v
  // Enough units for every worker even with few heads: split the query rows when B*H is small.
  const int64_t bh = s.B * s.H;
  const int64_t splits = std::clamp<int64_t>((2 * num_threads() + bh - 1) / bh, 1, std::max<int64_t>(1, s.Tq / 16));
  const int64_t rows_per = (s.Tq + splits - 1) / splits;
  parallel_for(bh * splits, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t b = u / (s.H * splits), h = u / splits % s.H, blk = u % splits;
      const int64_t i0 = blk * rows_per, i1 = std::min(s.Tq, i0 + rows_per);
      if (i0 >= i1) continue;
      const int64_t hk = h / group;
      const float* qb = q + (b * s.Tq + i0) * qs + h * s.hs;  // (rows, hs), stride qs
      const float* kb = k + b * s.Tk * ks + hk * s.hs;        // (Tk, hs), stride ks
      const float* vb = v + b * s.Tk * ks + hk * s.hs;        // (Tk, hs), stride ks
      thread_local std::vector<float> own;  // probabilities nobody keeps: one unit's, reused
      if (!probs && own.size() < size_t((i1 - i0) * s.Tk)) own.resize(size_t((i1 - i0) * s.Tk));
      float* pb = probs ? probs + ((b * s.H + h) * s.Tq + i0) * s.Tk : own.data();  // (rows, Tk)
      float* ob = out + (b * s.Tq + i0) * qs + h * s.hs;       // (rows, hs), stride qs
      const uint8_t* kv = key_valid ? key_valid + b * s.Tk : nullptr;
      // Causal rows only need keys up to q_offset + i1 - 1; the rest of each row is zero.
      const int64_t kmax = s.causal ? std::clamp<int64_t>(s.q_offset + i1, 0, s.Tk) : s.Tk;
      const bool direct = i1 - i0 <= kDirectRows;
      if (direct) {
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t limit = s.causal ? std::clamp<int64_t>(s.q_offset + i + 1, 0, s.Tk) : s.Tk;
          float* p = pb + (i - i0) * s.Tk;  // (Tk)
          for (int64_t j = 0; j < limit; ++j) p[j] = scale * dot(qb + (i - i0) * qs, kb + j * ks, s.hs);
          masked_softmax_row(p, s.Tk, limit, kv);
          weighted_sum(ob + (i - i0) * qs, p, vb, kmax, ks, s.hs);
        }
        continue;
      }
      // Causal: blocks of kRowBlock query rows, each multiplying only the keys its last row can see (about half of
      // the T x T products for a whole sequence); the rest of each probability row is written as zeros.
      for (int64_t r0 = i0; r0 < i1; r0 += s.causal ? kRowBlock : i1 - i0) {
        const int64_t r1 = s.causal ? std::min(i1, r0 + kRowBlock) : i1;
        const int64_t rk = s.causal ? std::clamp<int64_t>(s.q_offset + r1, 0, s.Tk) : s.Tk;  // keys this block sees
        float* pr = pb + (r0 - i0) * s.Tk;  // (r1 - r0, Tk)
        float* orow = ob + (r0 - i0) * qs;  // (r1 - r0, hs), stride qs
        if (rk > 0) gemm_sequential(false, true, r1 - r0, rk, s.hs, scale, qb + (r0 - i0) * qs, qs, kb, ks, 0.0f, pr, s.Tk);
        for (int64_t i = r0; i < r1; ++i) {
          const int64_t limit = s.causal ? std::clamp<int64_t>(s.q_offset + i + 1, 0, s.Tk) : s.Tk;
          masked_softmax_row(pr + (i - r0) * s.Tk, s.Tk, limit, kv);
        }
        if (rk > 0)
          gemm_sequential(false, false, r1 - r0, s.hs, rk, 1.0f, pr, s.Tk, vb, ks, 0.0f, orow, qs);
        else
          for (int64_t i = r0; i < r1; ++i) std::fill(orow + (i - r0) * qs, orow + (i - r0) * qs + s.hs, 0.0f);
      }
    }
  });
  if (observer && *observer) (*observer)(probs, s);
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* probs, const float* q,
                        const float* k, const float* v, const AttentionShape& s, float scale) {
  if (reference_kernels()) return ref::attention_backward(dq, dk, dv, dout, probs, q, k, v, s, scale);
  prof::Scope scope("attention_backward", s.B * s.H, s.Tq, s.Tk);
  const int64_t group = s.H / s.Hkv;
  const int64_t qs = s.H * s.hs, ks = s.Hkv * s.hs;
  parallel_for(s.B * s.Hkv, [&](int64_t u0, int64_t u1) {
    float* ds = scratch(size_t(s.Tq * s.Tk)).data();  // (Tq, Tk) dscores for one head
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t b = u / s.Hkv, hk = u % s.Hkv;
      const float* kb = k + b * s.Tk * ks + hk * s.hs;  // (Tk, hs), stride ks
      const float* vb = v + b * s.Tk * ks + hk * s.hs;
      for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
        const float* qb = q + b * s.Tq * qs + h * s.hs;     // (Tq, hs), stride qs
        const float* gob = dout + b * s.Tq * qs + h * s.hs;  // (Tq, hs)
        const float* pb = probs + (b * s.H + h) * s.Tq * s.Tk;  // (Tq, Tk)
        // Causal: per block of query rows, only the keys the block can see (the forward's blocks). dS rows are
        // zero beyond them, so the key-block products below may start at the first row that sees their keys.
        const int64_t rb = s.causal ? kRowBlock : s.Tq;
        for (int64_t r0 = 0; r0 < s.Tq; r0 += rb) {
          const int64_t r1 = std::min(s.Tq, r0 + rb);
          const int64_t rk = s.causal ? std::clamp<int64_t>(s.q_offset + r1, 0, s.Tk) : s.Tk;
          // dP (rows, rk) = dout @ V^T, then dS = P * (dP - rowsum(P * dP)) * scale, in place.
          float* dsr = ds + r0 * s.Tk;  // (r1 - r0, Tk)
          if (rk > 0) gemm_sequential(false, true, r1 - r0, rk, s.hs, 1.0f, gob + r0 * qs, qs, vb, ks, 0.0f, dsr, s.Tk);
          for (int64_t i = r0; i < r1; ++i) {
            const float* p = pb + i * s.Tk;
            float* d = ds + i * s.Tk;
            Vf acc = zero();
            int64_t j = 0;
            for (; j + kLanes <= rk; j += kLanes) acc = fmadd(load(p + j), load(d + j), acc);
            if (j < rk) acc = fmadd(loadn(p + j, rk - j), loadn(d + j, rk - j), acc);
            const Vf dot = set1(reduce_add(acc)), sc = set1(scale);
            for (j = 0; j + kLanes <= rk; j += kLanes) store(d + j, load(p + j) * (load(d + j) - dot) * sc);
            if (j < rk) storen(d + j, loadn(p + j, rk - j) * (loadn(d + j, rk - j) - dot) * sc, rk - j);
            std::fill(d + rk, d + s.Tk, 0.0f);
          }
          // dq (rows, hs) += dS (rows, rk) @ K (rk, hs)
          if (dq && rk > 0)
            gemm_sequential(false, false, r1 - r0, s.hs, rk, 1.0f, dsr, s.Tk, kb, ks, 1.0f,
                            dq + (b * s.Tq + r0) * qs + h * s.hs, qs);
        }
        // dk, dv per block of keys: rows before q_offset + row < key never see it (their dS and P are 0 there).
        const int64_t kb_len = s.causal ? kRowBlock : s.Tk;
        for (int64_t j0 = 0; j0 < s.Tk; j0 += kb_len) {
          const int64_t j1 = std::min(s.Tk, j0 + kb_len);
          const int64_t i0 = s.causal ? std::clamp<int64_t>(j0 - s.q_offset, 0, s.Tq) : 0;
          if (i0 >= s.Tq) break;
          // dk (keys, hs) += dS[i0:, keys]^T @ Q[i0:];  dv (keys, hs) += P[i0:, keys]^T @ dout[i0:]
          if (dk)
            gemm_sequential(true, false, j1 - j0, s.hs, s.Tq - i0, 1.0f, ds + i0 * s.Tk + j0, s.Tk, qb + i0 * qs, qs,
                            1.0f, dk + (b * s.Tk + j0) * ks + hk * s.hs, ks);
          if (dv)
            gemm_sequential(true, false, j1 - j0, s.hs, s.Tq - i0, 1.0f, pb + i0 * s.Tk + j0, s.Tk, gob + i0 * qs, qs,
                            1.0f, dv + (b * s.Tk + j0) * ks + hk * s.hs, ks);
        }
      }
    }
  });
}

}  // namespace mnemo
