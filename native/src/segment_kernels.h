// The inner loops of a segment query, in one flavour per instruction set (scalar, AVX2,
// AVX-512), picked once at run time. Every flavour does the same IEEE operations per
// image in the same order, so all give bit-identical scores.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(_MSC_VER)
#include <intrin.h>
#endif

namespace haarseek {

// An unaligned little-endian read from the mapped file (a big-endian host reads the
// file's byte-order mark reversed and refuses the file before anything else is read).
template <typename T>
inline T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The index of the lowest set bit (m != 0).
#if defined(_MSC_VER)
inline uint32_t Ctz(uint64_t m) {
  unsigned long i;
  _BitScanForward64(&i, m);
  return i;
}
#else
inline uint32_t Ctz(uint64_t m) { return static_cast<uint32_t>(__builtin_ctzll(m)); }
#endif

// The SIMD flavour of the walk.
enum class SegmentKernel { kScalar, kAvx2, kAvx512 };

// The query side of the avgl term.
struct AvglQuery {
  double q0, q1, q2, w0, w1, w2;
};

// imgSeek's avgl term, the first operation of every score (SignatureIndex::Query's expression).
inline double AvglTerm(double y, double i, double q, const AvglQuery& a) {
  return a.w0 * std::fabs(y - a.q0) + a.w1 * std::fabs(i - a.q1) + a.w2 * std::fabs(q - a.q2);
}

struct SegmentKernels {
  // s[k] = AvglTerm(y[k], i[k], q[k]) for k < n.
  void (*init)(double* s, const double* y, const double* i, const double* q, uint32_t n, const AvglQuery& a);
  // For r = 0 .. count-1 in order: s[k] -= w[r] wherever bit k of bitmap r (read from
  // byte byteAt on) is set; n is a multiple of 64 and s 64-byte aligned.
  void (*run)(double* s, uint32_t n, const uint8_t* const* bm, const double* w, uint32_t count, uint32_t byteAt);
  // Bit k set when !(s[k] > worst), k < 64: the images that may enter the top k.
  uint64_t (*candidates)(const double* s, double worst);
  // The bound pass: s[k] += w[r] wherever bit k of bitmap r is set (the caller makes
  // sure no sum exceeds 65535); n is a multiple of 256.
  void (*runBound)(uint16_t* s, uint32_t n, const uint8_t* const* bm, const uint16_t* w, uint32_t count, uint32_t byteAt);
  // The largest of s[0 .. 255].
  uint16_t (*max256)(const uint16_t* s);
  // Bit k of out[k / 64] set when from <= s[k] < to, for k < 256 (to <= 65536).
  void (*atLeast256)(const uint16_t* s, uint32_t from, uint32_t to, uint64_t* out);
};

bool SegmentKernelSupported(SegmentKernel k);
SegmentKernel DetectSegmentKernel();
SegmentKernels SegmentKernelsFor(SegmentKernel k);

}  // namespace haarseek
