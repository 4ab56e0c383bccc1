#pragma once
// The thin SIMD layer under the fast kernels (../shared/STYLE.md #9): one vector type `Vf` of `kLanes` floats with
// the handful of operations the kernels need. With AVX-512 a vector is a __m512 and the ragged end of a row is a
// masked partial vector (loadn/storen touch only the first n lanes, so no element past the row is read or written);
// without AVX-512 the same code compiles to the scalar fallback with kLanes = 1. Intrinsics stay in this header and
// the kernel .cpp files; nothing above the tensor layer includes it.
#include <cmath>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#define MNEMO_AVX512 1
// GCC 12 reports its own _mm512_undefined_ps() placeholders (inside max/min/scalef/roundscale) as uninitialised
// once inlined; the warning fires at the kernel's inlining site, so it is silenced for the files using this layer.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#endif

namespace mnemo::simd {

#if MNEMO_AVX512

constexpr int64_t kLanes = 16;
struct Vf {
  __m512 v;
};

inline __mmask16 tail_mask(int64_t n) { return __mmask16((1u << n) - 1u); }  // n in [0, 16]
inline Vf set1(float x) { return {_mm512_set1_ps(x)}; }
inline Vf zero() { return {_mm512_setzero_ps()}; }
inline Vf load(const float* p) { return {_mm512_loadu_ps(p)}; }
inline void store(float* p, Vf a) { _mm512_storeu_ps(p, a.v); }
// The first n (< 16) lanes of p; the others are `fill`.
inline Vf loadn(const float* p, int64_t n, float fill = 0.0f) {
  return {_mm512_mask_loadu_ps(_mm512_set1_ps(fill), tail_mask(n), p)};
}
inline void storen(float* p, Vf a, int64_t n) { _mm512_mask_storeu_ps(p, tail_mask(n), a.v); }
inline Vf operator+(Vf a, Vf b) { return {_mm512_add_ps(a.v, b.v)}; }
inline Vf operator-(Vf a, Vf b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline Vf operator*(Vf a, Vf b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline Vf operator/(Vf a, Vf b) { return {_mm512_div_ps(a.v, b.v)}; }
inline Vf fmadd(Vf a, Vf b, Vf c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }  // a*b + c
inline Vf max(Vf a, Vf b) { return {_mm512_max_ps(a.v, b.v)}; }
inline Vf min(Vf a, Vf b) { return {_mm512_min_ps(a.v, b.v)}; }
inline Vf sqrt(Vf a) { return {_mm512_sqrt_ps(a.v)}; }
inline Vf abs(Vf a) { return {_mm512_abs_ps(a.v)}; }
// Copy the sign of s onto the magnitude of a.
inline Vf copysign(Vf a, Vf s) {
  const __m512i sign = _mm512_set1_epi32(int(0x80000000u));
  return {_mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(a.v), _mm512_castps_si512(s.v), sign,
                                                        0xD8))};  // sign bit from s, the rest from a
}
inline float reduce_add(Vf a) { return _mm512_reduce_add_ps(a.v); }
inline float reduce_max(Vf a) { return _mm512_reduce_max_ps(a.v); }

// e^x to about 2 ulp: x = n ln2 + r, |r| <= ln2/2, e^r by its degree-7 Taylor polynomial (truncation error
// r^8/8! < 6e-9), times 2^n by scalef. x is clamped so -inf gives 0 and large x gives +inf without NaN.
inline Vf exp(Vf x) {
  __m512 xc = _mm512_min_ps(_mm512_max_ps(x.v, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.8f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.4426950408889634f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), xc);  // ln2 split hi + lo for exact r
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return {_mm512_scalef_ps(p, n)};
}

#else  // scalar fallback: one lane

constexpr int64_t kLanes = 1;
struct Vf {
  float v;
};
inline Vf set1(float x) { return {x}; }
inline Vf zero() { return {0.0f}; }
inline Vf load(const float* p) { return {*p}; }
inline void store(float* p, Vf a) { *p = a.v; }
inline Vf loadn(const float* p, int64_t n, float fill = 0.0f) { return {n > 0 ? *p : fill}; }
inline void storen(float* p, Vf a, int64_t n) {
  if (n > 0) *p = a.v;
}
inline Vf operator+(Vf a, Vf b) { return {a.v + b.v}; }
inline Vf operator-(Vf a, Vf b) { return {a.v - b.v}; }
inline Vf operator*(Vf a, Vf b) { return {a.v * b.v}; }
inline Vf operator/(Vf a, Vf b) { return {a.v / b.v}; }
inline Vf fmadd(Vf a, Vf b, Vf c) { return {std::fma(a.v, b.v, c.v)}; }
inline Vf max(Vf a, Vf b) { return {a.v > b.v ? a.v : b.v}; }
inline Vf min(Vf a, Vf b) { return {a.v < b.v ? a.v : b.v}; }
inline Vf sqrt(Vf a) { return {std::sqrt(a.v)}; }
inline Vf abs(Vf a) { return {std::fabs(a.v)}; }
inline Vf copysign(Vf a, Vf s) { return {std::copysign(a.v, s.v)}; }
inline float reduce_add(Vf a) { return a.v; }
inline float reduce_max(Vf a) { return a.v; }
inline Vf exp(Vf x) { return {std::exp(x.v)}; }

#endif

inline Vf& operator+=(Vf& a, Vf b) { return a = a + b; }

// erf by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7): erf|x| = 1 - poly(t) e^{-x^2}, t = 1/(1 + p|x|).
inline Vf erf(Vf x) {
  Vf a = abs(x);
  Vf t = set1(1.0f) / fmadd(set1(0.3275911f), a, set1(1.0f));
  Vf p = set1(1.061405429f);
  p = fmadd(p, t, set1(-1.453152027f));
  p = fmadd(p, t, set1(1.421413741f));
  p = fmadd(p, t, set1(-0.284496736f));
  p = fmadd(p, t, set1(0.254829592f));
  p = p * t;
  Vf y = set1(1.0f) - p * exp(set1(0.0f) - a * a);
  return copysign(y, x);
}

}  // namespace mnemo::simd
