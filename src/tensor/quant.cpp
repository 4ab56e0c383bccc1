#include "tensor/quant.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "tensor/kernels.h"

#include "tensor/simd.h"

// Fast paths. The block kernels are written once on simd::Vf (AVX-512: 16 lanes, AVX2 + FMA: 8) and need F16C for
// the fp16 scales; the 8-bit-x kernels use 256-bit integer ops (AVX2, or AVX-512 VNNI's vpdpbusd where present).
#if (MNEMO_AVX512 || MNEMO_AVX2) && defined(__F16C__)
#define MNEMO_QUANT_SIMD 1
#if defined(__AVX2__)
#define MNEMO_QUANT_Q8 1
#endif
#endif

namespace mnemo {

#if MNEMO_QUANT_SIMD
namespace {

// The few instructions that differ between the two vector widths; everything else is written on simd::Vf.
using simd::kLanes;
using simd::Vf;
constexpr int kV = int(32 / kLanes);  // float vectors per block of 32 values

inline __m128i load16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
// One fp16 scale -> fp32 with the F16C instruction (exact, as fp16_to_fp32, but branch-free).
inline float hf(uint16_t h) { return _cvtsh_ss(h); }

#if MNEMO_AVX512
// 16 signed bytes -> 16 / kLanes vectors of floats (exact).
inline void widen_i8(__m128i b, Vf* q) { q[0] = {_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b))}; }
// kLanes half values -> fp32 (exact).
inline Vf load_fp16(const uint16_t* p) {
  return {_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
}
inline Vf load_bf16(const uint16_t* p) {
  const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))};
}
#else
inline void widen_i8(__m128i b, Vf* q) {
  q[0] = {_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b))};
  q[1] = {_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8)))};
}
inline Vf load_fp16(const uint16_t* p) { return {_mm256_cvtph_ps(load16(p))}; }
inline Vf load_bf16(const uint16_t* p) {
  return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load16(p)), 16))};
}
#endif

}  // namespace
#endif

// ============================================================================================== half formats

uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffff;
  if (ax > 0x7f800000) return uint16_t(sign | 0x7e00 | ((ax >> 13) & 0x3ff));  // NaN stays NaN (quiet)
  if (ax >= 0x477ff000) return uint16_t(sign | 0x7c00);  // rounds to >= 65520 -> inf
  if (ax < 0x38800000) {  // below the smallest normal half (2^-14): subnormal or zero
    if (ax < 0x33000000) return uint16_t(sign);  // < 2^-25 rounds to zero (2^-25 exactly ties to even 0)
    uint32_t exp = ax >> 23, man = (ax & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - exp;  // value = man * 2^(exp-150); the half subnormal unit is 2^-24
    uint32_t q = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;
    return uint16_t(sign | q);
  }
  uint32_t r = ax + 0xfff + ((ax >> 13) & 1);  // round the mantissa to 10 bits, nearest even
  return uint16_t(sign | ((r - 0x38000000) >> 13));
}

void fp16_to_fp32_row(float* out, const uint16_t* in, int64_t n) {
  int64_t i = 0;
#if MNEMO_QUANT_SIMD
  for (; i + kLanes <= n; i += kLanes) simd::store(out + i, load_fp16(in + i));
#endif
  for (; i < n; ++i) out[i] = fp16_to_fp32(in[i]);
}

void bf16_to_fp32_row(float* out, const uint16_t* in, int64_t n) {
  int64_t i = 0;
#if MNEMO_QUANT_SIMD
  for (; i + kLanes <= n; i += kLanes) simd::store(out + i, load_bf16(in + i));
#endif
  for (; i < n; ++i) out[i] = bf16_to_fp32(in[i]);
}

void fp32_to_bf16_row(uint16_t* out, const float* in, int64_t n) {
  int64_t i = 0;
#if MNEMO_AVX512
  // fp32_to_bf16 on 16 lanes: round to nearest even in the integer bits, NaN kept quiet (bf16 inference rounds
  // every activation a product reads, so this runs at memory speed rather than one branch per value).
  const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7fff), abs = _mm512_set1_epi32(0x7fffffff);
  const __m512i inf = _mm512_set1_epi32(0x7f800000), quiet = _mm512_set1_epi32(0x40);
  for (; i + 16 <= n; i += 16) {
    const __m512i b = _mm512_castps_si512(_mm512_loadu_ps(in + i));
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), one);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(half, lsb)), 16);
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(b, abs), inf);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(b, 16), quiet));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_cvtepi32_epi16(r));
  }
#endif
  for (; i < n; ++i) out[i] = fp32_to_bf16(in[i]);
}

void fp32_to_fp16_row(uint16_t* out, const float* in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(in[i]);
}

// ============================================================================================== type table

namespace {

struct TypeInfo {
  QType t;
  const char* name;
  int64_t block, bytes;
  bool dequant;
};
constexpr TypeInfo kTypes[] = {
    {QType::F32, "F32", 1, 4, true},      {QType::F16, "F16", 1, 2, true},
    {QType::Q4_0, "Q4_0", 32, 18, true},  {QType::Q4_1, "Q4_1", 32, 20, true},
    {QType::Q5_0, "Q5_0", 32, 22, true},  {QType::Q5_1, "Q5_1", 32, 24, true},
    {QType::Q8_0, "Q8_0", 32, 34, true},  {QType::Q8_1, "Q8_1", 32, 36, true},
    {QType::Q2_K, "Q2_K", 256, 84, true}, {QType::Q3_K, "Q3_K", 256, 110, true},
    {QType::Q4_K, "Q4_K", 256, 144, true}, {QType::Q5_K, "Q5_K", 256, 176, true},
    {QType::Q6_K, "Q6_K", 256, 210, true}, {QType::Q8_K, "Q8_K", 256, 292, true},
    {QType::I8, "I8", 1, 1, false},       {QType::I16, "I16", 1, 2, false},
    {QType::I32, "I32", 1, 4, false},     {QType::I64, "I64", 1, 8, false},
    {QType::F64, "F64", 1, 8, false},     {QType::BF16, "BF16", 1, 2, true},
};

const TypeInfo* info(uint32_t t) {
  for (auto& i : kTypes)
    if (uint32_t(i.t) == t) return &i;
  return nullptr;
}

const TypeInfo& must(QType t) {
  const TypeInfo* i = info(uint32_t(t));
  MNEMO_CHECK(i, "unknown quantization type ", uint32_t(t));
  return *i;
}

template <typename B>
const B* blocks(const void* p) {
  return static_cast<const B*>(p);
}

inline float h2f(uint16_t h) { return fp16_to_fp32(h); }

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block (12 packed bytes).
inline void k_scale_min(const uint8_t* s, int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = uint8_t((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
    *m = uint8_t((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

}  // namespace

const char* qtype_name(uint32_t type) {
  const TypeInfo* i = info(type);
  return i ? i->name : nullptr;
}
bool qtype_known(uint32_t type) { return info(type) != nullptr; }
int64_t qtype_block_size(QType t) { return must(t).block; }
int64_t qtype_block_bytes(QType t) { return must(t).bytes; }
bool qtype_dequantizable(QType t) {
  const TypeInfo* i = info(uint32_t(t));
  return i && i->dequant;
}

// ============================================================================================== reference

namespace ref {

// Plain loops over the layouts in quant.h. Every value is (d * q) + m with a separate multiply and add.
void dequantize_row(QType t, const void* in, float* y, int64_t n) {
  MNEMO_CHECK(qtype_dequantizable(t), "cannot dequantize type ", qtype_name(uint32_t(t)));
  MNEMO_CHECK(n % qtype_block_size(t) == 0, "row of ", n, " values is not whole blocks of ", qtype_name(uint32_t(t)));
  switch (t) {
    case QType::F32: std::memcpy(y, in, size_t(n) * 4); return;
    case QType::F16: {
      const uint8_t* p = static_cast<const uint8_t*>(in);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        y[i] = h2f(h);
      }
      return;
    }
    case QType::BF16: {
      const uint8_t* p = static_cast<const uint8_t*>(in);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        y[i] = bf16_to_fp32(h);
      }
      return;
    }
    case QType::Q4_0:
      for (int64_t b = 0; b < n / QK4_0; ++b, y += QK4_0) {
        const BlockQ4_0& x = blocks<BlockQ4_0>(in)[b];
        const float d = h2f(x.d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
          y[j] = d * float((x.qs[j] & 0x0f) - 8);
          y[j + QK4_0 / 2] = d * float((x.qs[j] >> 4) - 8);
        }
      }
      return;
    case QType::Q4_1:
      for (int64_t b = 0; b < n / QK4_1; ++b, y += QK4_1) {
        const BlockQ4_1& x = blocks<BlockQ4_1>(in)[b];
        const float d = h2f(x.d), m = h2f(x.m);
        for (int j = 0; j < QK4_1 / 2; ++j) {
          y[j] = d * float(x.qs[j] & 0x0f) + m;
          y[j + QK4_1 / 2] = d * float(x.qs[j] >> 4) + m;
        }
      }
      return;
    case QType::Q5_0:
      for (int64_t b = 0; b < n / QK5_0; ++b, y += QK5_0) {
        const BlockQ5_0& x = blocks<BlockQ5_0>(in)[b];
        const float d = h2f(x.d);
        uint32_t qh;
        std::memcpy(&qh, x.qh, 4);
        for (int j = 0; j < QK5_0 / 2; ++j) {
          int lo = (x.qs[j] & 0x0f) | int((qh >> j) & 1) << 4;
          int hi = (x.qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
          y[j] = d * float(lo - 16);
          y[j + QK5_0 / 2] = d * float(hi - 16);
        }
      }
      return;
    case QType::Q5_1:
      for (int64_t b = 0; b < n / QK5_1; ++b, y += QK5_1) {
        const BlockQ5_1& x = blocks<BlockQ5_1>(in)[b];
        const float d = h2f(x.d), m = h2f(x.m);
        uint32_t qh;
        std::memcpy(&qh, x.qh, 4);
        for (int j = 0; j < QK5_1 / 2; ++j) {
          int lo = (x.qs[j] & 0x0f) | int((qh >> j) & 1) << 4;
          int hi = (x.qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
          y[j] = d * float(lo) + m;
          y[j + QK5_1 / 2] = d * float(hi) + m;
        }
      }
      return;
    case QType::Q8_0:
      for (int64_t b = 0; b < n / QK8_0; ++b, y += QK8_0) {
        const BlockQ8_0& x = blocks<BlockQ8_0>(in)[b];
        const float d = h2f(x.d);
        for (int j = 0; j < QK8_0; ++j) y[j] = float(x.qs[j]) * d;
      }
      return;
    case QType::Q8_1:
      for (int64_t b = 0; b < n / QK8_1; ++b, y += QK8_1) {
        const BlockQ8_1& x = blocks<BlockQ8_1>(in)[b];
        const float d = h2f(x.d);
        for (int j = 0; j < QK8_1; ++j) y[j] = float(x.qs[j]) * d;
      }
      return;
    case QType::Q2_K:
      // 16 sub-blocks of 16: scale (low nibble) and min (high nibble). Quant i sits in byte
      // qs[(i / 128) * 32 + i % 32] at bit 2 * ((i % 128) / 32).
      for (int64_t b = 0; b < n / QK_K; ++b, y += QK_K) {
        const BlockQ2_K& x = blocks<BlockQ2_K>(in)[b];
        const float d = h2f(x.d), dmin = h2f(x.dmin);
        for (int i = 0; i < QK_K; ++i) {
          const uint8_t sc = x.scales[i / 16];
          const float dl = d * float(sc & 0x0f), ml = dmin * float(sc >> 4);
          const int q = (x.qs[(i / 128) * 32 + i % 32] >> (2 * ((i % 128) / 32))) & 3;
          y[i] = dl * float(q) - ml;
        }
      }
      return;
    case QType::Q3_K:
      // 16 signed 6-bit scales (low 4 bits in bytes 0..7, high 2 bits in bytes 8..11), 2 low quant bits as Q2_K,
      // and a high bit in hmask[i % 32] bit i / 32 whose ABSENCE subtracts 4.
      for (int64_t b = 0; b < n / QK_K; ++b, y += QK_K) {
        const BlockQ3_K& x = blocks<BlockQ3_K>(in)[b];
        const float d = h2f(x.d);
        for (int i = 0; i < QK_K; ++i) {
          const int s = i / 16;
          const int lo = (s < 8 ? x.scales[s] : x.scales[s - 8] >> 4) & 0x0f;
          const int hi = (x.scales[8 + s % 4] >> (2 * (s / 4))) & 3;
          const float dl = d * float((lo | hi << 4) - 32);
          const int ql = (x.qs[(i / 128) * 32 + i % 32] >> (2 * ((i % 128) / 32))) & 3;
          const int h = (x.hmask[i % 32] >> (i / 32)) & 1;
          y[i] = dl * float(ql - (h ? 0 : 4));
        }
      }
      return;
    case QType::Q4_K:
      // 8 sub-blocks of 32 with 6-bit scales and mins; sub-block j's quants are the low (j even) or high (j odd)
      // nibbles of qs[(j / 2) * 32 .. + 32].
      for (int64_t b = 0; b < n / QK_K; ++b, y += QK_K) {
        const BlockQ4_K& x = blocks<BlockQ4_K>(in)[b];
        const float d = h2f(x.d), dmin = h2f(x.dmin);
        for (int j = 0; j < 8; ++j) {
          uint8_t sc, m;
          k_scale_min(x.scales, j, &sc, &m);
          const float dl = d * float(sc), ml = dmin * float(m);
          for (int l = 0; l < 32; ++l) {
            const int q = (x.qs[(j / 2) * 32 + l] >> (4 * (j % 2))) & 0x0f;
            y[j * 32 + l] = dl * float(q) - ml;
          }
        }
      }
      return;
    case QType::Q5_K:
      // As Q4_K, plus a fifth bit: bit j of qh[l] for value l of sub-block j.
      for (int64_t b = 0; b < n / QK_K; ++b, y += QK_K) {
        const BlockQ5_K& x = blocks<BlockQ5_K>(in)[b];
        const float d = h2f(x.d), dmin = h2f(x.dmin);
        for (int j = 0; j < 8; ++j) {
          uint8_t sc, m;
          k_scale_min(x.scales, j, &sc, &m);
          const float dl = d * float(sc), ml = dmin * float(m);
          for (int l = 0; l < 32; ++l) {
            const int q = ((x.qs[(j / 2) * 32 + l] >> (4 * (j % 2))) & 0x0f) | (((x.qh[l] >> j) & 1) << 4);
            y[j * 32 + l] = dl * float(q) - ml;
          }
        }
      }
      return;
    case QType::Q6_K:
      // 16 sub-blocks of 16 with int8 scales. Value i (half h = i / 128, r = i % 128): low 4 bits from
      // ql[h * 64 + r % 64] (low nibble for r < 64, high otherwise), high 2 bits from qh[h * 32 + r % 32] at bit
      // 2 * (r / 32); q - 32.
      for (int64_t b = 0; b < n / QK_K; ++b, y += QK_K) {
        const BlockQ6_K& x = blocks<BlockQ6_K>(in)[b];
        const float d = h2f(x.d);
        for (int i = 0; i < QK_K; ++i) {
          const int h = i / 128, r = i % 128;
          const int lo = (x.ql[h * 64 + r % 64] >> (4 * (r / 64))) & 0x0f;
          const int hi = (x.qh[h * 32 + r % 32] >> (2 * (r / 32))) & 3;
          y[i] = (d * float(x.scales[i / 16])) * float((lo | hi << 4) - 32);
        }
      }
      return;
    case QType::Q8_K:
      for (int64_t b = 0; b < n / QK_K; ++b, y += QK_K) {
        const BlockQ8_K& x = blocks<BlockQ8_K>(in)[b];
        for (int i = 0; i < QK_K; ++i) y[i] = x.d * float(x.qs[i]);
      }
      return;
    default: MNEMO_CHECK(false, "unreachable");
  }
}

void quant_matvec(QType t, float* y, const void* W, const float* x, int64_t rows, int64_t cols) {
  const int64_t rb = row_bytes(t, cols);
  std::vector<float> w(static_cast<size_t>(cols));  // (cols) one dequantized row
  for (int64_t r = 0; r < rows; ++r) {
    ref::dequantize_row(t, static_cast<const uint8_t*>(W) + r * rb, w.data(), cols);
    double acc = 0;  // the reference sums in double: the fast kernel is held to it with a relative tolerance
    for (int64_t c = 0; c < cols; ++c) acc += double(w[size_t(c)]) * double(x[c]);
    y[r] = float(acc);
  }
}

}  // namespace ref

// ============================================================================================== fast kernels

#if MNEMO_QUANT_SIMD
namespace {

// A block's 32 quants as bytes: values 0..15 in lo, 16..31 in hi. 4-bit blocks: low nibbles, then high nibbles.
inline void nibbles(const uint8_t* qs, __m128i* lo, __m128i* hi) {
  const __m128i b = load16(qs), m = _mm_set1_epi8(0x0f);
  *lo = _mm_and_si128(b, m);
  *hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
}
// 16 bytes, byte j = 16 if bit j of `bits` (16 bits) is set, else 0.
inline __m128i bits_to_16(uint32_t bits) {
  const __m128i spread = _mm_shuffle_epi8(_mm_cvtsi32_si128(int(bits)), _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  const __m128i sel = _mm_set1_epi64x(int64_t(0x8040201008040201));  // byte j selects bit j % 8
  return _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(spread, sel), sel), _mm_set1_epi8(16));
}
// Adds 16 to the quants whose fifth bit is set (bit j of qh for value j).
inline void fifth_bits(const uint8_t* qh_bytes, __m128i* lo, __m128i* hi) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  *lo = _mm_or_si128(*lo, bits_to_16(qh & 0xffff));
  *hi = _mm_or_si128(*hi, bits_to_16(qh >> 16));
}
// The 32 bytes (signed, offsets already taken out) as kV float vectors.
inline void widen32(__m128i lo, __m128i hi, Vf* q) {
  widen_i8(lo, q);
  widen_i8(hi, q + kV / 2);
}

// Block decoders: the 32 values of block b before scaling as kV float vectors (`offset` taken out in bytes: 8 for
// Q4_0, 16 for Q5_0), and the block's d and m (m = 0 for symmetric types).
struct DecQ4_0 {
  static constexpr bool kMin = false;
  static void get(const void* p, int64_t b, Vf* q, float* d, float* m) {
    const BlockQ4_0& x = blocks<BlockQ4_0>(p)[b];
    __m128i lo, hi;
    nibbles(x.qs, &lo, &hi);
    const __m128i eight = _mm_set1_epi8(8);
    widen32(_mm_sub_epi8(lo, eight), _mm_sub_epi8(hi, eight), q);
    *d = hf(x.d);
    *m = 0;
  }
};
struct DecQ4_1 {
  static constexpr bool kMin = true;
  static void get(const void* p, int64_t b, Vf* q, float* d, float* m) {
    const BlockQ4_1& x = blocks<BlockQ4_1>(p)[b];
    __m128i lo, hi;
    nibbles(x.qs, &lo, &hi);
    widen32(lo, hi, q);
    *d = hf(x.d);
    *m = hf(x.m);
  }
};
struct DecQ5_0 {
  static constexpr bool kMin = false;
  static void get(const void* p, int64_t b, Vf* q, float* d, float* m) {
    const BlockQ5_0& x = blocks<BlockQ5_0>(p)[b];
    __m128i lo, hi;
    nibbles(x.qs, &lo, &hi);
    fifth_bits(x.qh, &lo, &hi);
    const __m128i sixteen = _mm_set1_epi8(16);
    widen32(_mm_sub_epi8(lo, sixteen), _mm_sub_epi8(hi, sixteen), q);
    *d = hf(x.d);
    *m = 0;
  }
};
struct DecQ5_1 {
  static constexpr bool kMin = true;
  static void get(const void* p, int64_t b, Vf* q, float* d, float* m) {
    const BlockQ5_1& x = blocks<BlockQ5_1>(p)[b];
    __m128i lo, hi;
    nibbles(x.qs, &lo, &hi);
    fifth_bits(x.qh, &lo, &hi);
    widen32(lo, hi, q);
    *d = hf(x.d);
    *m = hf(x.m);
  }
};
template <typename Block>  // Q8_0 and Q8_1: d and 32 int8 (Q8_1's s is not needed to dequantize)
struct DecQ8 {
  static constexpr bool kMin = false;
  static void get(const void* p, int64_t b, Vf* q, float* d, float* m) {
    const Block& x = blocks<Block>(p)[b];
    widen32(load16(x.qs), load16(x.qs + 16), q);
    *d = hf(x.d);
    *m = 0;
  }
};
using DecQ8_0 = DecQ8<BlockQ8_0>;
using DecQ8_1 = DecQ8<BlockQ8_1>;

// Dequantize: d * q (+ m), multiply and add kept separate so the result is bit-exact with the reference.
template <typename Dec>
void dequant_blocks(const void* in, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += 32) {
    Vf q[kV];
    float d, m;
    Dec::get(in, b, q, &d, &m);
    const Vf dv = simd::set1(d), mv = simd::set1(m);
    for (int v = 0; v < kV; ++v) simd::store(y + v * kLanes, Dec::kMin ? dv * q[v] + mv : dv * q[v]);
  }
}

// One row of W (nb blocks) dotted with x: sum_b d_b * (q_b . x_b) + m_b * sum(x_b). Two blocks per step with
// separate accumulators so consecutive FMAs do not wait on each other.
template <typename Dec>
float dot_row(const void* row, const float* x, int64_t nb) {
  Vf acc[2] = {simd::zero(), simd::zero()}, accm[2] = {simd::zero(), simd::zero()};
  auto step = [&](int64_t b, int k) {
    Vf q[kV];
    float d, m;
    Dec::get(row, b, q, &d, &m);
    const float* xb = x + b * 32;  // (32)
    Vf sx = simd::load(xb), qx = q[0] * sx;
    for (int v = 1; v < kV; ++v) {
      const Vf xv = simd::load(xb + v * kLanes);
      qx = simd::fmadd(q[v], xv, qx);
      if (Dec::kMin) sx = sx + xv;
    }
    acc[k] = simd::fmadd(simd::set1(d), qx, acc[k]);
    if (Dec::kMin) accm[k] = simd::fmadd(simd::set1(m), sx, accm[k]);
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    step(b, 0);
    step(b + 1, 1);
  }
  if (b < nb) step(b, 0);
  Vf a = acc[0] + acc[1];
  if (Dec::kMin) a = a + (accm[0] + accm[1]);
  return simd::reduce_add(a);
}

float dot_f32(const float* w, const float* x, int64_t n) {
  Vf a0 = simd::zero(), a1 = simd::zero();
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    a0 = simd::fmadd(simd::load(w + i), simd::load(x + i), a0);
    a1 = simd::fmadd(simd::load(w + i + kLanes), simd::load(x + i + kLanes), a1);
  }
  for (; i + kLanes <= n; i += kLanes) a0 = simd::fmadd(simd::load(w + i), simd::load(x + i), a0);
  if (i < n) a0 = simd::fmadd(simd::loadn(w + i, n - i), simd::loadn(x + i, n - i), a0);
  return simd::reduce_add(a0 + a1);
}

// Half rows: widen kLanes at a time and FMA against x.
template <bool kBf16>
float dot_half(const uint16_t* w, const float* x, int64_t n) {
  auto widen = [](const uint16_t* p) { return kBf16 ? load_bf16(p) : load_fp16(p); };
  Vf a0 = simd::zero(), a1 = simd::zero();
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    a0 = simd::fmadd(widen(w + i), simd::load(x + i), a0);
    a1 = simd::fmadd(widen(w + i + kLanes), simd::load(x + i + kLanes), a1);
  }
  float tail = 0;
  for (; i < n; ++i) tail += (kBf16 ? bf16_to_fp32(w[i]) : fp16_to_fp32(w[i])) * x[i];
  return simd::reduce_add(a0 + a1) + tail;
}

}  // namespace
#endif

void dequantize_row(QType t, const void* in, float* out, int64_t n) {
#if MNEMO_QUANT_SIMD
  if (!reference_kernels()) {
    MNEMO_CHECK(n % qtype_block_size(t) == 0, "row of ", n, " values is not whole blocks of ", qtype_name(uint32_t(t)));
    const int64_t nb = n / 32;
    switch (t) {
      case QType::F16:
        if (reinterpret_cast<uintptr_t>(in) % 2 == 0) return fp16_to_fp32_row(out, static_cast<const uint16_t*>(in), n);
        break;
      case QType::BF16:
        if (reinterpret_cast<uintptr_t>(in) % 2 == 0) return bf16_to_fp32_row(out, static_cast<const uint16_t*>(in), n);
        break;
      case QType::Q4_0: return dequant_blocks<DecQ4_0>(in, out, nb);
      case QType::Q4_1: return dequant_blocks<DecQ4_1>(in, out, nb);
      case QType::Q5_0: return dequant_blocks<DecQ5_0>(in, out, nb);
      case QType::Q5_1: return dequant_blocks<DecQ5_1>(in, out, nb);
      case QType::Q8_0: return dequant_blocks<DecQ8_0>(in, out, nb);
      case QType::Q8_1: return dequant_blocks<DecQ8_1>(in, out, nb);
      default: break;  // F32 and the K types: the plain loops (memcpy / already cheap next to reading the file)
    }
  }
#endif
  ref::dequantize_row(t, in, out, n);
}

void dequantize_rows(QType t, const void* in, float* out, int64_t rows, int64_t cols) {
  const int64_t rb = row_bytes(t, cols);
  parallel_for(
      rows,
      [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) dequantize_row(t, static_cast<const uint8_t*>(in) + r * rb, out + r * cols, cols);
      },
      std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)));
}

void quant_matvec(QType t, float* y, const void* W, const float* x, int64_t rows, int64_t cols) {
  MNEMO_CHECK(qtype_dequantizable(t), "quant_matvec: type ", qtype_name(uint32_t(t)), " has no matvec");
  MNEMO_CHECK(cols % qtype_block_size(t) == 0, "quant_matvec: ", cols, " columns are not whole blocks of ",
              qtype_name(uint32_t(t)));
  if (reference_kernels()) return ref::quant_matvec(t, y, W, x, rows, cols);
#if MNEMO_QUANT_SIMD
  if (t == QType::F32) return matvec(y, static_cast<const float*>(W), x, nullptr, rows, cols);
  const int64_t rb = row_bytes(t, cols), nb = cols / 32;
  const uint8_t* base = static_cast<const uint8_t*>(W);
  // Grain: about 32 KiB of weights per worker before the work is split.
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(rb, 1));
  auto run = [&](auto row_dot) {
    parallel_for(
        rows, [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) y[r] = row_dot(base + r * rb);
        },
        grain);
  };
  switch (t) {
    case QType::F16:
      if (reinterpret_cast<uintptr_t>(W) % 2 == 0 && rb % 2 == 0)
        return run([&](const uint8_t* w) { return dot_half<false>(reinterpret_cast<const uint16_t*>(w), x, cols); });
      break;
    case QType::BF16:
      if (reinterpret_cast<uintptr_t>(W) % 2 == 0 && rb % 2 == 0)
        return run([&](const uint8_t* w) { return dot_half<true>(reinterpret_cast<const uint16_t*>(w), x, cols); });
      break;
    case QType::Q4_0: return run([&](const uint8_t* w) { return dot_row<DecQ4_0>(w, x, nb); });
    case QType::Q4_1: return run([&](const uint8_t* w) { return dot_row<DecQ4_1>(w, x, nb); });
    case QType::Q5_0: return run([&](const uint8_t* w) { return dot_row<DecQ5_0>(w, x, nb); });
    case QType::Q5_1: return run([&](const uint8_t* w) { return dot_row<DecQ5_1>(w, x, nb); });
    case QType::Q8_0: return run([&](const uint8_t* w) { return dot_row<DecQ8_0>(w, x, nb); });
    case QType::Q8_1: return run([&](const uint8_t* w) { return dot_row<DecQ8_1>(w, x, nb); });
    default: break;
  }
  // Everything else: dequantize a row into a per-worker buffer, then an fp32 dot.
  parallel_for(
      rows,
      [&](int64_t r0, int64_t r1) {
        std::vector<float> w(static_cast<size_t>(cols));  // (cols) one dequantized row, allocated once per worker per call
        for (int64_t r = r0; r < r1; ++r) {
          dequantize_row(t, base + r * rb, w.data(), cols);
          y[r] = dot_f32(w.data(), x, cols);
        }
      },
      grain);
#else
  ref::quant_matvec(t, y, W, x, rows, cols);
#endif
}

// ============================================================================================== quantization

bool qtype_quantizable(QType t) {
  switch (t) {
    case QType::F32: case QType::F16: case QType::BF16: case QType::Q4_0: case QType::Q4_1:
    case QType::Q5_0: case QType::Q5_1: case QType::Q8_0: return true;
    default: return false;
  }
}

namespace {

// The value of largest magnitude (with its sign), and the min and max, of one block.
void block_stats(const float* x, int n, float* absmax_signed, float* mn, float* mx) {
  float amax = 0, sv = 0, lo = x[0], hi = x[0];
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), sv = x[i];
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  *absmax_signed = sv;
  *mn = lo;
  *mx = hi;
}

// Symmetric 4/5-bit: d = (value of largest magnitude) / -(2^(bits-1)) so that value maps to the end of the range.
template <int kMaxQ, int kOffset>
void quant_sym(const float* x, float d, uint8_t* q) {
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int j = 0; j < 32; ++j) q[j] = uint8_t(std::min(kMaxQ, int(x[j] * id + (kOffset + 0.5f))));
}
template <int kMaxQ>
void quant_asym(const float* x, float d, float mn, uint8_t* q) {
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int j = 0; j < 32; ++j) q[j] = uint8_t(std::min(kMaxQ, int((x[j] - mn) * id + 0.5f)));
}
void pack_nibbles(const uint8_t* q, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = uint8_t((q[j] & 0x0f) | (q[j + 16] & 0x0f) << 4);
}
void pack_fifth(const uint8_t* q, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < 32; ++j) qh |= uint32_t((q[j] >> 4) & 1) << j;
  std::memcpy(qh_bytes, &qh, 4);
}

// Q4_0, Q4_1, Q5_0, Q5_1: nb blocks of 32 values at kBits bits, symmetric (scale only) or asymmetric (scale and
// minimum); the 5-bit types keep each value's fifth bit in qh.
template <typename Block, int kBits, bool kAsym>
void quantize_blocks(const float* in, Block* out, int64_t nb) {
  constexpr int kMaxQ = (1 << kBits) - 1, kHalf = 1 << (kBits - 1);
  uint8_t q[32];
  float sv, mn, mx;
  for (int64_t b = 0; b < nb; ++b) {
    Block& y = out[b];
    block_stats(in + b * 32, 32, &sv, &mn, &mx);
    if constexpr (kAsym) {
      const float d = (mx - mn) / kMaxQ;
      quant_asym<kMaxQ>(in + b * 32, d, mn, q);
      y.d = fp32_to_fp16(d);
      y.m = fp32_to_fp16(mn);
    } else {
      const float d = sv / -kHalf;
      quant_sym<kMaxQ, kHalf>(in + b * 32, d, q);
      y.d = fp32_to_fp16(d);
    }
    if constexpr (kBits == 5) pack_fifth(q, y.qh);
    pack_nibbles(q, y.qs);
  }
}

}  // namespace

void quantize_row(QType t, const float* in, void* out, int64_t n) {
  MNEMO_CHECK(qtype_quantizable(t), "cannot quantize to ", qtype_name(uint32_t(t)));
  MNEMO_CHECK(n % qtype_block_size(t) == 0, "row of ", n, " values is not whole blocks of ", qtype_name(uint32_t(t)));
  switch (t) {
    case QType::F32: std::memcpy(out, in, size_t(n) * 4); return;
    case QType::F16: fp32_to_fp16_row(static_cast<uint16_t*>(out), in, n); return;
    case QType::BF16: fp32_to_bf16_row(static_cast<uint16_t*>(out), in, n); return;
    case QType::Q4_0: return quantize_blocks<BlockQ4_0, 4, false>(in, static_cast<BlockQ4_0*>(out), n / 32);
    case QType::Q4_1: return quantize_blocks<BlockQ4_1, 4, true>(in, static_cast<BlockQ4_1*>(out), n / 32);
    case QType::Q5_0: return quantize_blocks<BlockQ5_0, 5, false>(in, static_cast<BlockQ5_0*>(out), n / 32);
    case QType::Q5_1: return quantize_blocks<BlockQ5_1, 5, true>(in, static_cast<BlockQ5_1*>(out), n / 32);
    case QType::Q8_0:
      for (int64_t b = 0; b < n / 32; ++b) {
        BlockQ8_0& y = static_cast<BlockQ8_0*>(out)[b];
        float sv, mn, mx;
        block_stats(in + b * 32, 32, &sv, &mn, &mx);
        const float d = std::fabs(sv) / 127, id = d != 0 ? 1.0f / d : 0.0f;
        for (int j = 0; j < 32; ++j) y.qs[j] = int8_t(std::round(in[b * 32 + j] * id));
        y.d = fp32_to_fp16(d);
      }
      return;
    default: MNEMO_CHECK(false, "unreachable");
  }
}

// ============================================================================================== Q8-x matvec

namespace {
// Sizes out for n values (n a multiple of 32); storage is reused across calls.
void q8_resize(int64_t n, Q8Vector* out) {
  MNEMO_CHECK(n % 32 == 0, "quantize_q8_vector: ", n, " values are not whole blocks of 32");
  out->n = n;
  out->q.resize(size_t(n));
  out->d.resize(size_t(n / 32));
  out->s.resize(size_t(n / 32));
  out->isum.resize(size_t(n / 32));
}
}  // namespace

namespace ref {

void quantize_q8_vector(const float* x, int64_t n, Q8Vector* out) {
  q8_resize(n, out);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (int j = 0; j < 32; ++j) {
      const int q = int(std::nearbyint(xb[j] * id));  // |q| <= 127
      out->q[size_t(b * 32 + j)] = int8_t(q);
      sum += q;
    }
    out->d[size_t(b)] = d;
    out->isum[size_t(b)] = sum;
    out->s[size_t(b)] = d * float(sum);
  }
}

}  // namespace ref

void quantize_q8_vector(const float* x, int64_t n, Q8Vector* out) {
#if MNEMO_QUANT_Q8
  if (!reference_kernels()) {
    // The reference's arithmetic in 8 lanes (max|x|, one fp32 multiply by 1/d, round to nearest even under the
    // default rounding mode as nearbyint): bit-identical to it.
    q8_resize(n, out);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n / 32; ++b) {
      const float* xb = x + b * 32;
      __m256 v[4];
      for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(xb + 8 * k);
      const __m256 amax8 = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                                         _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
      const float d = simd::reduce_max8(amax8) / 127;
      const __m256 id = _mm256_set1_ps(d != 0 ? 1.0f / d : 0.0f);
      __m256i q[4];
      for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], id));
      // Pack 32 int32 to int8; the in-lane packs leave dwords in the order 0 2 4 6 1 3 5 7 (of 4 values each).
      const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out->q.data() + b * 32),
                          _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
      const __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
      const int32_t sum = _mm_cvtsi128_si32(_mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1)));
      out->d[size_t(b)] = d;
      out->isum[size_t(b)] = sum;
      out->s[size_t(b)] = d * float(sum);
    }
    return;
  }
#endif
  ref::quantize_q8_vector(x, n, out);
}

bool quant_matvec_q8_supported(QType t) { return t == QType::Q4_0 || t == QType::Q4_1 || t == QType::Q8_0; }

namespace ref {

void quant_matvec_q8(QType t, float* y, const void* W, const Q8Vector& x, int64_t rows) {
  MNEMO_CHECK(quant_matvec_q8_supported(t), "quant_matvec_q8: no integer kernel for ", qtype_name(uint32_t(t)));
  const int64_t nb = x.n / 32, rb = row_bytes(t, x.n);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = static_cast<const uint8_t*>(W) + r * rb;
    float acc = 0;
    for (int64_t b = 0; b < nb; ++b) {
      const int8_t* xq = x.q.data() + b * 32;
      int32_t idot = 0;
      float dw = 0, mw = 0;
      if (t == QType::Q8_0) {
        const BlockQ8_0& w = blocks<BlockQ8_0>(row)[b];
        for (int j = 0; j < 32; ++j) idot += int32_t(w.qs[j]) * xq[j];
        dw = h2f(w.d);
      } else if (t == QType::Q4_0) {
        const BlockQ4_0& w = blocks<BlockQ4_0>(row)[b];
        for (int j = 0; j < 16; ++j) idot += ((w.qs[j] & 0x0f) - 8) * xq[j] + ((w.qs[j] >> 4) - 8) * xq[j + 16];
        dw = h2f(w.d);
      } else {
        const BlockQ4_1& w = blocks<BlockQ4_1>(row)[b];
        for (int j = 0; j < 16; ++j) idot += (w.qs[j] & 0x0f) * xq[j] + (w.qs[j] >> 4) * xq[j + 16];
        dw = h2f(w.d);
        mw = h2f(w.m);
      }
      acc += dw * x.d[size_t(b)] * float(idot) + mw * x.s[size_t(b)];
    }
    y[r] = acc;
  }
}

}  // namespace ref

#if MNEMO_QUANT_Q8
namespace {

// 8 int32 partial sums of w . x over 32 byte pairs (w unsigned, x signed), plus c in lane 0. AVX-512 VNNI does it
// in one vpdpbusd; AVX2 multiplies and adds pairs to int16 (vpmaddubsw, which saturates: callers keep w <= 128 so
// a pair stays within 2 * 128 * 127 < 2^15) and then pairs of those to int32 (vpmaddwd by 1). Both exact.
inline __m256i idot(__m256i w, __m256i x, int32_t c) {
  const __m256i c8 = _mm256_zextsi128_si256(_mm_cvtsi32_si128(c));
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpbusd_epi32(c8, w, x);
#else
  return _mm256_add_epi32(c8, _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)));
#endif
}

// One row dotted with the quantized x: per block an exact integer dot, then scaled by dW * dx in fp32. The
// weights must be unsigned bytes: Q4_0's q - 8 is taken as q and 8 * sum(x) subtracted in integers; Q8_0's signed
// q as |q| against x with q's sign (|q| <= 128).
template <QType T>
float dot_row_q8(const uint8_t* row, const Q8Vector& x, int64_t nb) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float macc0 = 0, macc1 = 0;
  const __m128i low4 = _mm_set1_epi8(0x0f);
  auto step = [&](int64_t b, __m256& acc, float& macc) {
    __m256i w, xi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q.data() + b * 32));
    float dw;
    int32_t corr = 0;
    if constexpr (T == QType::Q8_0) {
      const BlockQ8_0& blk = blocks<BlockQ8_0>(row)[b];
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs));
      w = _mm256_abs_epi8(q);
      xi = _mm256_sign_epi8(xi, q);
      dw = hf(blk.d);
    } else {
      const uint8_t* qs;
      if constexpr (T == QType::Q4_0) {
        const BlockQ4_0& blk = blocks<BlockQ4_0>(row)[b];
        qs = blk.qs;
        dw = hf(blk.d);
        corr = -8 * x.isum[size_t(b)];
      } else {
        const BlockQ4_1& blk = blocks<BlockQ4_1>(row)[b];
        qs = blk.qs;
        dw = hf(blk.d);
        macc += hf(blk.m) * x.s[size_t(b)];
      }
      const __m128i v = load16(qs);
      w = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), low4), _mm_and_si128(v, low4));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dw * x.d[size_t(b)]), _mm256_cvtepi32_ps(idot(w, xi, corr)), acc);
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    step(b, acc0, macc0);
    step(b + 1, acc1, macc1);
  }
  if (b < nb) step(b, acc0, macc0);
  return simd::reduce_add8(_mm256_add_ps(acc0, acc1)) + (macc0 + macc1);
}

}  // namespace
#endif

void quant_matvec_q8(QType t, float* y, const void* W, const Q8Vector& x, int64_t rows) {
  MNEMO_CHECK(quant_matvec_q8_supported(t), "quant_matvec_q8: no integer kernel for ", qtype_name(uint32_t(t)));
  if (reference_kernels()) return ref::quant_matvec_q8(t, y, W, x, rows);
#if MNEMO_QUANT_Q8
  const int64_t nb = x.n / 32, rb = row_bytes(t, x.n);
  const uint8_t* base = static_cast<const uint8_t*>(W);
  auto run = [&](auto row_dot) {
    parallel_for(
        rows, [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) y[r] = row_dot(base + r * rb);
        },
        std::max<int64_t>(1, 32768 / std::max<int64_t>(rb, 1)));
  };
  switch (t) {
    case QType::Q4_0: return run([&](const uint8_t* w) { return dot_row_q8<QType::Q4_0>(w, x, nb); });
    case QType::Q4_1: return run([&](const uint8_t* w) { return dot_row_q8<QType::Q4_1>(w, x, nb); });
    default: return run([&](const uint8_t* w) { return dot_row_q8<QType::Q8_0>(w, x, nb); });
  }
#else
  ref::quant_matvec_q8(t, y, W, x, rows);
#endif
}

// ============================================================================================== decode product

namespace {
std::atomic<bool> use_int8_decode{false};
}

void set_int8_decode(bool on) { use_int8_decode.store(on); }
bool int8_decode() { return use_int8_decode.load(); }

void decode_matvec(QType t, float* y, const void* W, const float* x, int64_t rows, int64_t cols) {
  if (!int8_decode() || !quant_matvec_q8_supported(t)) return quant_matvec(t, y, W, x, rows, cols);
  thread_local Q8Vector xq;  // (cols) this thread's quantized x; storage reused call to call
  quantize_q8_vector(x, cols, &xq);
  quant_matvec_q8(t, y, W, xq, rows);
}

}  // namespace mnemo
