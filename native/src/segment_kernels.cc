#include "segment_kernels.h"

#include <cstring>

#if defined(_MSC_VER)
#include <intrin.h>
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAARSEEK_X86_KERNELS 1
#endif

namespace haarseek {
namespace {

// How far ahead (bytes) the SIMD kernels ask for each bitmap's next bytes.
constexpr uint32_t kPrefetchAhead = 256;

void InitScalar(double* s, const double* y, const double* i, const double* q, uint32_t n, const AvglQuery& a) {
  for (uint32_t k = 0; k < n; k++) s[k] = AvglTerm(y[k], i[k], q[k], a);
}

void RunScalar(double* s, uint32_t n, const uint8_t* const* bm, const double* w, uint32_t count, uint32_t byteAt) {
  // Without SIMD: visit the set bits only (a dense list holds ~5-50% of a chunk).
  for (uint32_t r = 0; r < count; r++) {
    const uint8_t* b = bm[r] + byteAt;
    const double wr = w[r];
    for (uint32_t k = 0; k < n; k += 64) {
      uint64_t m = Load<uint64_t>(b + (k >> 3));
      while (m != 0) {
        s[k + Ctz(m)] -= wr;
        m &= m - 1;
      }
    }
  }
}

uint64_t CandidatesScalar(const double* s, double worst) {
  uint64_t m = 0;
  for (int k = 0; k < 64; k++) m |= uint64_t{!(s[k] > worst)} << k;
  return m;
}


void RunBoundScalar(uint16_t* s, uint32_t n, const uint8_t* const* bm, const uint16_t* w, uint32_t count, uint32_t byteAt) {
  for (uint32_t r = 0; r < count; r++) {
    const uint8_t* b = bm[r] + byteAt;
    const uint16_t wr = w[r];
    for (uint32_t k = 0; k < n; k += 64) {
      uint64_t m = Load<uint64_t>(b + (k >> 3));
      while (m != 0) {
        s[k + Ctz(m)] += wr;
        m &= m - 1;
      }
    }
  }
}

void AtLeast256Scalar(const uint16_t* s, uint32_t from, uint32_t to, uint64_t* out) {
  for (int part = 0; part < 4; part++) {
    uint64_t m = 0;
    for (int k = 0; k < 64; k++) {
      const uint32_t v = s[part * 64 + k];
      m |= uint64_t{v >= from && v < to} << k;
    }
    out[part] = m;
  }
}

uint16_t Max256Scalar(const uint16_t* s) {
  uint16_t m = 0;
  for (int k = 0; k < 256; k++) m = s[k] > m ? s[k] : m;
  return m;
}

#if HAARSEEK_X86_KERNELS
__attribute__((target("avx2"))) void InitAvx2(double* s, const double* y, const double* i, const double* q, uint32_t n,
                                               const AvglQuery& a) {
  const __m256d absMask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
  const __m256d q0 = _mm256_set1_pd(a.q0), q1 = _mm256_set1_pd(a.q1), q2 = _mm256_set1_pd(a.q2);
  const __m256d w0 = _mm256_set1_pd(a.w0), w1 = _mm256_set1_pd(a.w1), w2 = _mm256_set1_pd(a.w2);
  uint32_t k = 0;
  for (; k + 4 <= n; k += 4) {
    __m256d t = _mm256_mul_pd(w0, _mm256_and_pd(absMask, _mm256_sub_pd(_mm256_loadu_pd(y + k), q0)));
    t = _mm256_add_pd(t, _mm256_mul_pd(w1, _mm256_and_pd(absMask, _mm256_sub_pd(_mm256_loadu_pd(i + k), q1))));
    t = _mm256_add_pd(t, _mm256_mul_pd(w2, _mm256_and_pd(absMask, _mm256_sub_pd(_mm256_loadu_pd(q + k), q2))));
    _mm256_store_pd(s + k, t);
  }
  for (; k < n; k++) s[k] = AvglTerm(y[k], i[k], q[k], a);
}

// Lane masks for 4 bits: all ones where the bit is set.
struct NibbleMasks {
  alignas(32) uint64_t lanes[16][4];
  NibbleMasks() {
    for (int m = 0; m < 16; m++)
      for (int l = 0; l < 4; l++) lanes[m][l] = (m >> l) & 1 ? ~uint64_t{0} : 0;
  }
};
const NibbleMasks kNibbles;

__attribute__((target("avx2"))) void RunAvx2(double* s, uint32_t n, const uint8_t* const* bm, const double* w, uint32_t count,
                                              uint32_t byteAt) {
  const double* lanes = reinterpret_cast<const double*>(kNibbles.lanes);
  for (uint32_t k = 0; k < n; k += 32) {
    __m256d x0 = _mm256_load_pd(s + k), x1 = _mm256_load_pd(s + k + 4), x2 = _mm256_load_pd(s + k + 8),
            x3 = _mm256_load_pd(s + k + 12), x4 = _mm256_load_pd(s + k + 16), x5 = _mm256_load_pd(s + k + 20),
            x6 = _mm256_load_pd(s + k + 24), x7 = _mm256_load_pd(s + k + 28);
    const uint32_t at = byteAt + (k >> 3);
    for (uint32_t r = 0; r < count; r++) {
      const uint32_t m = Load<uint32_t>(bm[r] + at);
      if ((at & 63) == 0) _mm_prefetch(reinterpret_cast<const char*>(bm[r] + at + kPrefetchAhead), _MM_HINT_T0);
      const __m256d wv = _mm256_set1_pd(w[r]);
      // x - (w & mask): x - w where the bit is set, x - 0.0 (= x exactly) elsewhere.
      x0 = _mm256_sub_pd(x0, _mm256_and_pd(wv, _mm256_load_pd(lanes + 4 * (m & 15))));
      x1 = _mm256_sub_pd(x1, _mm256_and_pd(wv, _mm256_load_pd(lanes + 4 * ((m >> 4) & 15))));
      x2 = _mm256_sub_pd(x2, _mm256_and_pd(wv, _mm256_load_pd(lanes + 4 * ((m >> 8) & 15))));
      x3 = _mm256_sub_pd(x3, _mm256_and_pd(wv, _mm256_load_pd(lanes + 4 * ((m >> 12) & 15))));
      x4 = _mm256_sub_pd(x4, _mm256_and_pd(wv, _mm256_load_pd(lanes + 4 * ((m >> 16) & 15))));
      x5 = _mm256_sub_pd(x5, _mm256_and_pd(wv, _mm256_load_pd(lanes + 4 * ((m >> 20) & 15))));
      x6 = _mm256_sub_pd(x6, _mm256_and_pd(wv, _mm256_load_pd(lanes + 4 * ((m >> 24) & 15))));
      x7 = _mm256_sub_pd(x7, _mm256_and_pd(wv, _mm256_load_pd(lanes + 4 * (m >> 28))));
    }
    _mm256_store_pd(s + k, x0);
    _mm256_store_pd(s + k + 4, x1);
    _mm256_store_pd(s + k + 8, x2);
    _mm256_store_pd(s + k + 12, x3);
    _mm256_store_pd(s + k + 16, x4);
    _mm256_store_pd(s + k + 20, x5);
    _mm256_store_pd(s + k + 24, x6);
    _mm256_store_pd(s + k + 28, x7);
  }
}

__attribute__((target("avx512f"))) void InitAvx512(double* s, const double* y, const double* i, const double* q, uint32_t n,
                                                    const AvglQuery& a) {
  const __m512d q0 = _mm512_set1_pd(a.q0), q1 = _mm512_set1_pd(a.q1), q2 = _mm512_set1_pd(a.q2);
  const __m512d w0 = _mm512_set1_pd(a.w0), w1 = _mm512_set1_pd(a.w1), w2 = _mm512_set1_pd(a.w2);
  uint32_t k = 0;
  for (; k + 8 <= n; k += 8) {
    __m512d t = _mm512_mul_pd(w0, _mm512_abs_pd(_mm512_sub_pd(_mm512_loadu_pd(y + k), q0)));
    t = _mm512_add_pd(t, _mm512_mul_pd(w1, _mm512_abs_pd(_mm512_sub_pd(_mm512_loadu_pd(i + k), q1))));
    t = _mm512_add_pd(t, _mm512_mul_pd(w2, _mm512_abs_pd(_mm512_sub_pd(_mm512_loadu_pd(q + k), q2))));
    _mm512_store_pd(s + k, t);
  }
  for (; k < n; k++) s[k] = AvglTerm(y[k], i[k], q[k], a);
}

__attribute__((target("avx512f,avx512dq"))) void RunAvx512(double* s, uint32_t n, const uint8_t* const* bm,
                                                              const double* w, uint32_t count, uint32_t byteAt) {
  for (uint32_t k = 0; k < n; k += 64) {
    __m512d x0 = _mm512_load_pd(s + k), x1 = _mm512_load_pd(s + k + 8), x2 = _mm512_load_pd(s + k + 16),
            x3 = _mm512_load_pd(s + k + 24), x4 = _mm512_load_pd(s + k + 32), x5 = _mm512_load_pd(s + k + 40),
            x6 = _mm512_load_pd(s + k + 48), x7 = _mm512_load_pd(s + k + 56);
    const uint32_t at = byteAt + (k >> 3);
    for (uint32_t r = 0; r < count; r++) {
      __mmask8* m = reinterpret_cast<__mmask8*>(const_cast<uint8_t*>(bm[r] + at));
      if ((at & 63) == 0) _mm_prefetch(reinterpret_cast<const char*>(bm[r] + at + kPrefetchAhead), _MM_HINT_T0);
      const __m512d wv = _mm512_set1_pd(w[r]);
      // Masked lanes are left as they are: x - w only where the bit is set.
      x0 = _mm512_mask_sub_pd(x0, _load_mask8(m), x0, wv);
      x1 = _mm512_mask_sub_pd(x1, _load_mask8(m + 1), x1, wv);
      x2 = _mm512_mask_sub_pd(x2, _load_mask8(m + 2), x2, wv);
      x3 = _mm512_mask_sub_pd(x3, _load_mask8(m + 3), x3, wv);
      x4 = _mm512_mask_sub_pd(x4, _load_mask8(m + 4), x4, wv);
      x5 = _mm512_mask_sub_pd(x5, _load_mask8(m + 5), x5, wv);
      x6 = _mm512_mask_sub_pd(x6, _load_mask8(m + 6), x6, wv);
      x7 = _mm512_mask_sub_pd(x7, _load_mask8(m + 7), x7, wv);
    }
    _mm512_store_pd(s + k, x0);
    _mm512_store_pd(s + k + 8, x1);
    _mm512_store_pd(s + k + 16, x2);
    _mm512_store_pd(s + k + 24, x3);
    _mm512_store_pd(s + k + 32, x4);
    _mm512_store_pd(s + k + 40, x5);
    _mm512_store_pd(s + k + 48, x6);
    _mm512_store_pd(s + k + 56, x7);
  }
}

// Bit k set when !(s[k] > worst), for 64 scores: the images that may enter the top k.
__attribute__((target("avx512f"))) uint64_t CandidatesAvx512(const double* s, double worst) {
  const __m512d wv = _mm512_set1_pd(worst);
  uint64_t m = 0;
  for (int v = 0; v < 8; v++) m |= uint64_t{_mm512_cmp_pd_mask(_mm512_load_pd(s + 8 * v), wv, _CMP_NGT_UQ)} << (8 * v);
  return m;
}

__attribute__((target("avx2"))) uint64_t CandidatesAvx2(const double* s, double worst) {
  const __m256d wv = _mm256_set1_pd(worst);
  uint64_t m = 0;
  for (int v = 0; v < 16; v++) {
    m |= uint64_t(_mm256_movemask_pd(_mm256_cmp_pd(_mm256_load_pd(s + 4 * v), wv, _CMP_NGT_UQ))) << (4 * v);
  }
  return m;
}

__attribute__((target("avx512f,avx512bw"))) void RunBoundAvx512(uint16_t* s, uint32_t n, const uint8_t* const* bm,
                                                                 const uint16_t* w, uint32_t count, uint32_t byteAt) {
  for (uint32_t k = 0; k < n; k += 256) {
    __m512i x0 = _mm512_loadu_si512(s + k), x1 = _mm512_loadu_si512(s + k + 32), x2 = _mm512_loadu_si512(s + k + 64),
            x3 = _mm512_loadu_si512(s + k + 96), x4 = _mm512_loadu_si512(s + k + 128), x5 = _mm512_loadu_si512(s + k + 160),
            x6 = _mm512_loadu_si512(s + k + 192), x7 = _mm512_loadu_si512(s + k + 224);
    const uint32_t at = byteAt + (k >> 3);
    for (uint32_t r = 0; r < count; r++) {
      const uint8_t* m = bm[r] + at;
      // Dozens of bitmaps are read side by side, more streams than the hardware follows.
      _mm_prefetch(reinterpret_cast<const char*>(m + kPrefetchAhead), _MM_HINT_T0);
      const uint64_t m0 = Load<uint64_t>(m), m1 = Load<uint64_t>(m + 8), m2 = Load<uint64_t>(m + 16),
                     m3 = Load<uint64_t>(m + 24);
      const __m512i wv = _mm512_set1_epi16(static_cast<short>(w[r]));
      x0 = _mm512_mask_add_epi16(x0, _cvtu32_mask32(static_cast<uint32_t>(m0)), x0, wv);
      x1 = _mm512_mask_add_epi16(x1, _cvtu32_mask32(static_cast<uint32_t>(m0 >> 32)), x1, wv);
      x2 = _mm512_mask_add_epi16(x2, _cvtu32_mask32(static_cast<uint32_t>(m1)), x2, wv);
      x3 = _mm512_mask_add_epi16(x3, _cvtu32_mask32(static_cast<uint32_t>(m1 >> 32)), x3, wv);
      x4 = _mm512_mask_add_epi16(x4, _cvtu32_mask32(static_cast<uint32_t>(m2)), x4, wv);
      x5 = _mm512_mask_add_epi16(x5, _cvtu32_mask32(static_cast<uint32_t>(m2 >> 32)), x5, wv);
      x6 = _mm512_mask_add_epi16(x6, _cvtu32_mask32(static_cast<uint32_t>(m3)), x6, wv);
      x7 = _mm512_mask_add_epi16(x7, _cvtu32_mask32(static_cast<uint32_t>(m3 >> 32)), x7, wv);
    }
    _mm512_storeu_si512(s + k, x0);
    _mm512_storeu_si512(s + k + 32, x1);
    _mm512_storeu_si512(s + k + 64, x2);
    _mm512_storeu_si512(s + k + 96, x3);
    _mm512_storeu_si512(s + k + 128, x4);
    _mm512_storeu_si512(s + k + 160, x5);
    _mm512_storeu_si512(s + k + 192, x6);
    _mm512_storeu_si512(s + k + 224, x7);
  }
}

__attribute__((target("avx512f,avx512bw"))) void AtLeast256Avx512(const uint16_t* s, uint32_t from, uint32_t to, uint64_t* out) {
  const __m512i lo = _mm512_set1_epi16(static_cast<short>(from > 0xffff ? 0xffff : from));
  const __m512i hi = _mm512_set1_epi16(static_cast<short>(to > 0xffff ? 0xffff : to));
  const bool unbounded = to > 0xffff;
  for (int part = 0; part < 4; part++) {
    uint64_t m = 0;
    for (int half = 0; half < 2; half++) {
      const __m512i x = _mm512_loadu_si512(s + part * 64 + half * 32);
      __mmask32 in = _mm512_cmpge_epu16_mask(x, lo);
      if (!unbounded) in &= _mm512_cmplt_epu16_mask(x, hi);
      if (from > 0xffff) in = 0;
      m |= uint64_t{_cvtmask32_u32(in)} << (32 * half);
    }
    out[part] = m;
  }
}

__attribute__((target("avx2"))) uint16_t HorizontalMaxAvx2(__m256i m) {
  __m128i x = _mm_max_epu16(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
  // max = 0xffff - min(0xffff - x), and SSE4.1 has a horizontal unsigned 16-bit minimum.
  x = _mm_minpos_epu16(_mm_xor_si128(x, _mm_set1_epi16(-1)));
  return static_cast<uint16_t>(0xffff - _mm_extract_epi16(x, 0));
}


__attribute__((target("avx2"))) void RunBoundAvx2(uint16_t* s, uint32_t n, const uint8_t* const* bm, const uint16_t* w,
                                                   uint32_t count, uint32_t byteAt) {
  const __m256i bits = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, -32768);
  for (uint32_t k = 0; k < n; k += 128) {
    __m256i x[8];
    for (int v = 0; v < 8; v++) x[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + k + 16 * v));
    const uint32_t at = byteAt + (k >> 3);
    for (uint32_t r = 0; r < count; r++) {
      const uint8_t* m = bm[r] + at;
      _mm_prefetch(reinterpret_cast<const char*>(m + kPrefetchAhead), _MM_HINT_T0);
      const __m256i wv = _mm256_set1_epi16(static_cast<short>(w[r]));
      for (int v = 0; v < 8; v++) {
        const __m256i lanes = _mm256_set1_epi16(static_cast<short>(Load<uint16_t>(m + 2 * v)));
        const __m256i set = _mm256_cmpeq_epi16(_mm256_and_si256(lanes, bits), bits);
        x[v] = _mm256_add_epi16(x[v], _mm256_and_si256(set, wv));
      }
    }
    for (int v = 0; v < 8; v++) _mm256_storeu_si256(reinterpret_cast<__m256i*>(s + k + 16 * v), x[v]);
  }
}

__attribute__((target("avx2"))) void AtLeast256Avx2(const uint16_t* s, uint32_t from, uint32_t to, uint64_t* out) {
  if (from > 0xffff) {
    out[0] = out[1] = out[2] = out[3] = 0;
    return;
  }
  const __m256i lo = _mm256_set1_epi16(static_cast<short>(from));
  const __m256i hi = _mm256_set1_epi16(static_cast<short>(to > 0xffff ? 0xffff : to));
  const bool unbounded = to > 0xffff;
  for (int part = 0; part < 4; part++) {
    uint64_t m = 0;
    for (int q = 0; q < 2; q++) {
      // Two 16-lane compares packed to 32 byte lanes (0 or -1), in order, then one movemask.
      __m256i r[2];
      for (int v = 0; v < 2; v++) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + part * 64 + q * 32 + v * 16));
        __m256i in = _mm256_cmpeq_epi16(_mm256_max_epu16(x, lo), x);  // x >= from
        if (!unbounded) in = _mm256_andnot_si256(_mm256_cmpeq_epi16(_mm256_max_epu16(x, hi), x), in);  // and x < to
        r[v] = in;
      }
      const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi16(r[0], r[1]), 0xd8);
      m |= uint64_t{static_cast<uint32_t>(_mm256_movemask_epi8(packed))} << (32 * q);
    }
    out[part] = m;
  }
}

__attribute__((target("avx2"))) uint16_t Max256Avx2(const uint16_t* s) {
  __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s));
  for (int v = 1; v < 16; v++) m = _mm256_max_epu16(m, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 16 * v)));
  return HorizontalMaxAvx2(m);
}
#endif

}  // namespace

bool SegmentKernelSupported(SegmentKernel k) {
  switch (k) {
    case SegmentKernel::kScalar:
      return true;
#if HAARSEEK_X86_KERNELS
    case SegmentKernel::kAvx2:
      return __builtin_cpu_supports("avx2");
    case SegmentKernel::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx2");
#endif
    default:
      return false;
  }
}

SegmentKernel DetectSegmentKernel() {
  if (SegmentKernelSupported(SegmentKernel::kAvx512)) return SegmentKernel::kAvx512;
  if (SegmentKernelSupported(SegmentKernel::kAvx2)) return SegmentKernel::kAvx2;
  return SegmentKernel::kScalar;
}

SegmentKernels SegmentKernelsFor(SegmentKernel k) {
#if HAARSEEK_X86_KERNELS
  if (k == SegmentKernel::kAvx512) return {InitAvx512, RunAvx512, CandidatesAvx512, RunBoundAvx512, Max256Avx2, AtLeast256Avx512};
  if (k == SegmentKernel::kAvx2) return {InitAvx2, RunAvx2, CandidatesAvx2, RunBoundAvx2, Max256Avx2, AtLeast256Avx2};
#endif
  (void)k;
  return {InitScalar, RunScalar, CandidatesScalar, RunBoundScalar, Max256Scalar, AtLeast256Scalar};
}

}  // namespace haarseek
