#include "tensor/quant.h"

#include <immintrin.h>

#include <cmath>

#include "base/error.h"

namespace mnemo {

uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffff;
  if (ax > 0x7f800000) return uint16_t(sign | 0x7e00 | ((ax >> 13) & 0x3ff));  // NaN stays NaN (quiet)
  if (ax >= 0x477ff000) return uint16_t(sign | 0x7c00);  // rounds to >= 65520 -> inf
  if (ax < 0x38800000) {  // below the smallest normal half (2^-14): subnormal or zero
    if (ax < 0x33000000) return uint16_t(sign);  // < 2^-25 rounds to zero (2^-25 exactly ties to even 0)
    uint32_t exp = ax >> 23, man = (ax & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - exp;  // value = man * 2^(exp-150); half subnormal unit is 2^-24
    uint32_t q = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;
    return uint16_t(sign | q);
  }
  uint32_t r = ax + 0xfff + ((ax >> 13) & 1);  // round mantissa to 10 bits, nearest even
  return uint16_t(sign | ((r - 0x38000000) >> 13));
}

void fp16_to_fp32_row(float* out, const uint16_t* in, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i))));
  for (; i < n; ++i) out[i] = fp16_to_fp32(in[i]);
}

void bf16_to_fp32_row(float* out, const uint16_t* in, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i)));
    _mm512_storeu_ps(out + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
  for (; i < n; ++i) out[i] = bf16_to_fp32(in[i]);
}

void fp32_to_bf16_row(uint16_t* out, const float* in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_bf16(in[i]);
}

void fp32_to_fp16_row(uint16_t* out, const float* in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(in[i]);
}

}  // namespace mnemo
