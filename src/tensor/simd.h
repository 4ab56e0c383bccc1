#pragma once
// The thin SIMD layer under the fast kernels (../shared/STYLE.md #9): one vector type `Vf` of `kLanes` floats with
// the handful of operations the kernels need. Three builds of the same kernels:
//  - AVX-512: a __m512, kLanes = 16, the ragged end of a row a masked partial vector;
//  - AVX2 + FMA (the portable baseline, MNEMO_NATIVE=OFF): a __m256, kLanes = 8, tails by vmaskmov;
//  - otherwise the scalar fallback, kLanes = 1.
// loadn/storen touch only the first n lanes, so no element past the row is read or written. Kernels must not
// assume a lane count: split work in multiples of kLanes (or of 16, a multiple of every kLanes). Intrinsics stay in
// this header and the kernel .cpp files; nothing above the tensor layer includes it.
#include <cmath>
#include <cstdint>
#include <initializer_list>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#if defined(__AVX512F__)
#define MNEMO_AVX512 1
// GCC 12 reports its own _mm512_undefined_ps() placeholders (inside max/min/scalef/roundscale) as uninitialised
// once inlined; the warning fires at the kernel's inlining site, so it is silenced for the files using this layer.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#elif defined(__AVX2__) && defined(__FMA__)
#define MNEMO_AVX2 1
#endif

namespace mnemo::simd {

#if defined(__AVX2__)
// Horizontal sum / max of 8 floats (also for 256-bit kernels in AVX-512 builds, e.g. the 8-bit integer dots).
inline float reduce_add8(__m256 a) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}
inline float reduce_max8(__m256 a) {
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}
#endif

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

// Round to the nearest integer (ties to even), and p * 2^n for integral n in [-150, 128] (one rounding).
inline Vf round_even(Vf a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
inline Vf scale_pow2(Vf p, Vf n) { return {_mm512_scalef_ps(p.v, n.v)}; }

#elif MNEMO_AVX2

constexpr int64_t kLanes = 8;
struct Vf {
  __m256 v;
};

// Lanes i < n (n in [0, 8]) have their sign bit set: the mask vmaskmov and blendv read.
inline __m256i tail_mask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline Vf set1(float x) { return {_mm256_set1_ps(x)}; }
inline Vf zero() { return {_mm256_setzero_ps()}; }
inline Vf load(const float* p) { return {_mm256_loadu_ps(p)}; }
inline void store(float* p, Vf a) { _mm256_storeu_ps(p, a.v); }
// The first n (< 8) lanes of p; the others are `fill`. Masked-off lanes are not read (no fault past the row).
inline Vf loadn(const float* p, int64_t n, float fill = 0.0f) {
  const __m256i m = tail_mask(n);
  return {_mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m))};
}
inline void storen(float* p, Vf a, int64_t n) { _mm256_maskstore_ps(p, tail_mask(n), a.v); }
inline Vf operator+(Vf a, Vf b) { return {_mm256_add_ps(a.v, b.v)}; }
inline Vf operator-(Vf a, Vf b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline Vf operator*(Vf a, Vf b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline Vf operator/(Vf a, Vf b) { return {_mm256_div_ps(a.v, b.v)}; }
inline Vf fmadd(Vf a, Vf b, Vf c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }  // a*b + c
inline Vf max(Vf a, Vf b) { return {_mm256_max_ps(a.v, b.v)}; }
inline Vf min(Vf a, Vf b) { return {_mm256_min_ps(a.v, b.v)}; }
inline Vf sqrt(Vf a) { return {_mm256_sqrt_ps(a.v)}; }
inline Vf abs(Vf a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
// Copy the sign of s onto the magnitude of a.
inline Vf copysign(Vf a, Vf s) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  return {_mm256_or_ps(_mm256_andnot_ps(sign, a.v), _mm256_and_ps(sign, s.v))};
}
inline float reduce_add(Vf a) { return reduce_add8(a.v); }
inline float reduce_max(Vf a) { return reduce_max8(a.v); }

inline Vf round_even(Vf a) { return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
// 2^n as two exact factors 2^(n/2) * 2^(n - n/2): n reaches -150 and 128, outside one float exponent, while each
// half stays a normal float; only the second product rounds, as scalef does.
inline Vf scale_pow2(Vf p, Vf n) {
  const __m256i ni = _mm256_cvtps_epi32(n.v), n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  auto pow2 = [](__m256i e) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23)); };
  return {_mm256_mul_ps(_mm256_mul_ps(p.v, pow2(n1)), pow2(n2))};
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

#if MNEMO_AVX512 || MNEMO_AVX2
// e^x to about 2 ulp: x = n ln2 + r, |r| <= ln2/2, e^r by its degree-7 Taylor polynomial (truncation error
// r^8/8! < 6e-9), times 2^n. x is clamped so -inf gives 0 and large x gives +inf without NaN. The same bits for
// both vector widths.
inline Vf exp(Vf x) {
  const Vf xc = min(max(x, set1(-104.0f)), set1(88.8f));
  const Vf n = round_even(xc * set1(1.4426950408889634f));
  Vf r = fmadd(n, set1(-0.693145751953125f), xc);  // ln2 split hi + lo for exact r
  r = fmadd(n, set1(-1.428606765330187e-06f), r);
  Vf p = set1(1.0f / 5040.0f);
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = fmadd(p, r, set1(c));
  return scale_pow2(p, n);
}
#endif

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
