#include "segment.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#if defined(_WIN32)
#define HAARSEEK_NO_MMAP 1
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

// Node re-exports zlib's symbols to addons: the same CRC-32 as zlib.crc32 in JavaScript.
#include <zlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAARSEEK_X86_KERNELS 1
#endif

#include "top_k.h"
#include "weights.h"

namespace haarseek {
namespace {

constexpr uint8_t kMagic[8] = {0x89, 'H', 'S', 'E', 'G', '\r', '\n', 0x1a};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kByteOrderMark = 0x01020304;
constexpr uint32_t kBitmapMinPostings = 4096;
constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;
constexpr size_t kAlign = 64;
// Images per block of the walk: 16 KB of scores stay in L1 while every list of the
// query passes over them. A multiple of 64 that divides the chunk size.
constexpr uint32_t kBlock = 2048;
constexpr uint32_t kChunkSlotsAll = 1u << 16;
// A block holding fewer allowed images than this scores them one by one.
constexpr size_t kDirectMax = 8;

// Header field offsets (H in segment-format.ts).
enum : size_t {
  kOffVersion = 8,
  kOffByteOrder = 12,
  kOffHeaderBytes = 16,
  kOffChunkBits = 20,
  kOffLists = 24,
  kOffChunks = 28,
  kOffCount = 32,
  kOffSeq = 40,
  kOffDbId = 48,
  kOffFileBytes = 56,
  kOffIds = 64,
  kOffAvgl = 72,
  kOffPostings = 80,
  kOffPostingsBytes = 88,
  kOffChunkTable = 96,
  kOffDir = 104,
  kOffBitmapMin = 112,
  kOffBodyCrc = 128,
  kOffHeaderCrc = 132,
};

// The file is little-endian; a big-endian host reads the byte-order mark reversed and refuses it.
template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

#if defined(_MSC_VER)
inline uint32_t Ctz(uint64_t m) {
  unsigned long i;
  _BitScanForward64(&i, m);
  return i;
}
inline void Prefetch(const void*) {}
#else
inline uint32_t Ctz(uint64_t m) { return static_cast<uint32_t>(__builtin_ctzll(m)); }
inline void Prefetch(const void* p) { __builtin_prefetch(p, 0, 2); }
#endif

size_t AlignUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

uint32_t Crc32(const uint8_t* p, size_t n, uint32_t crc = 0) {
  uLong c = crc;
  while (n > 0) {
    const size_t step = std::min<size_t>(n, size_t{1} << 30);
    c = crc32(c, p, static_cast<uInt>(step));
    p += step;
    n -= step;
  }
  return static_cast<uint32_t>(c);
}

// ---- block kernels: the same IEEE operations per element whatever the vector width ----

struct AvglQuery {
  double q0, q1, q2, w0, w1, w2;
};

using InitFn = void (*)(double* s, const double* y, const double* i, const double* q, uint32_t n, const AvglQuery& a);
// Subtracts w[r] from s[k] for every bit k set in bitmap r (r = 0..count-1, in order),
// bitmaps read from byte `byteAt`; n is a multiple of 64.
using RunFn = void (*)(double* s, uint32_t n, const uint8_t* const* bm, const double* w, uint32_t count, uint32_t byteAt);

inline double AvglTerm(double y, double i, double q, const AvglQuery& a) {
  return a.w0 * std::fabs(y - a.q0) + a.w1 * std::fabs(i - a.q1) + a.w2 * std::fabs(q - a.q2);
}

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
#endif

bool Supported(SegmentKernel k) {
  switch (k) {
    case SegmentKernel::kScalar:
      return true;
#if HAARSEEK_X86_KERNELS
    case SegmentKernel::kAvx2:
      return __builtin_cpu_supports("avx2");
    case SegmentKernel::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#endif
    default:
      return false;
  }
}

SegmentKernel Detect() {
  if (Supported(SegmentKernel::kAvx512)) return SegmentKernel::kAvx512;
  if (Supported(SegmentKernel::kAvx2)) return SegmentKernel::kAvx2;
  return SegmentKernel::kScalar;
}

SegmentKernel gKernel = Detect();

using CandidatesFn = uint64_t (*)(const double* s, double worst);

struct Kernels {
  InitFn init;
  RunFn run;
  CandidatesFn candidates;
};

Kernels KernelsOf(SegmentKernel k) {
#if HAARSEEK_X86_KERNELS
  if (k == SegmentKernel::kAvx512) return {InitAvx512, RunAvx512, CandidatesAvx512};
  if (k == SegmentKernel::kAvx2) return {InitAvx2, RunAvx2, CandidatesAvx2};
#endif
  (void)k;
  return {InitScalar, RunScalar, CandidatesScalar};
}

// The query's lists resolved in one chunk, in query order, empty ones left out; runs of
// consecutive bitmaps pass over a block together.
struct ChunkOps {
  struct Op {
    bool bitmap;
    uint16_t first;  // index into the arrays or the bitmaps
    uint16_t count;  // bitmaps in the run (1 for an array)
  };
  Op ops[kSignatureLength];
  uint32_t nops = 0;
  const uint16_t* begin[kSignatureLength];
  const uint16_t* cur[kSignatureLength];
  const uint16_t* end[kSignatureLength];
  double aw[kSignatureLength];
  uint32_t narrays = 0;
  const uint8_t* bm[kSignatureLength];
  double bw[kSignatureLength];
  uint32_t nbitmaps = 0;
};

// Subtracts the array lists' and bitmap runs' weights over block [b, b + blen) of the chunk.
inline void WalkBlock(ChunkOps& c, double* s, uint32_t b, uint32_t blen, RunFn run) {
  const uint32_t lim = b + blen;
  const uint32_t n64 = (blen + 63) & ~uint32_t{63};
  for (uint32_t o = 0; o < c.nops; o++) {
    const ChunkOps::Op& op = c.ops[o];
    if (op.bitmap) {
      run(s, n64, c.bm + op.first, c.bw + op.first, op.count, b >> 3);
      // The next block's bytes of these bitmaps: dozens of interleaved streams are more
      // than the hardware prefetchers follow.
      if (lim + kBlock <= kChunkSlotsAll) {
        for (uint32_t r = op.first; r < op.first + op.count; r++) {
          const uint8_t* next = c.bm[r] + (lim >> 3);
          for (uint32_t line = 0; line < kBlock / 8; line += 64) Prefetch(next + line);
        }
      }
      continue;
    }
    const uint16_t* p = c.cur[op.first];
    const uint16_t* e = c.end[op.first];
    const double w = c.aw[op.first];
    for (; p + 4 <= e && p[3] < lim; p += 4) {
      s[p[0] - b] -= w;
      s[p[1] - b] -= w;
      s[p[2] - b] -= w;
      s[p[3] - b] -= w;
    }
    for (; p < e && *p < lim; p++) s[*p - b] -= w;
    c.cur[op.first] = p;
    Prefetch(p + 32);
  }
}

[[noreturn]] void Fail(const std::string& path, const std::string& reason) {
  throw SegmentFormatError("haarseek index segment " + path + ": " + reason + "; rebuild it from the database");
}

}  // namespace

struct Segment::Plan {
  bool fast;
  AvglQuery avgl;
  uint32_t list[kSignatureLength];
  double w[kSignatureLength];
};

SegmentIoError::SegmentIoError(const std::string& path, int errnum)
    : std::runtime_error("haarseek index segment " + path + ": " + std::strerror(errnum)), err(errnum) {}

SegmentKernel Segment::Kernel() { return gKernel; }

const char* Segment::KernelName(SegmentKernel k) {
  switch (k) {
    case SegmentKernel::kAvx512:
      return "avx512";
    case SegmentKernel::kAvx2:
      return "avx2";
    default:
      return "scalar";
  }
}

bool Segment::SetKernel(SegmentKernel k) {
  if (!Supported(k)) return false;
  gKernel = k;
  return true;
}

Segment::Segment(const std::string& path, bool verifyChecksum) {
#if HAARSEEK_NO_MMAP
  (void)verifyChecksum;
  throw std::runtime_error("haarseek index segment " + path + ": mapping segments needs a POSIX system");
#else
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw SegmentIoError(path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw SegmentIoError(path, err);
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < kHeaderBytes) {
    uint8_t head[sizeof kMagic] = {};
    const ssize_t got = ::pread(fd, head, sizeof head, 0);
    ::close(fd);
    if (got == static_cast<ssize_t>(sizeof head) && std::memcmp(head, kMagic, sizeof kMagic) != 0) {
      Fail(path, "not an index segment (wrong magic bytes)");
    }
    Fail(path, "truncated: " + std::to_string(size) + " bytes, shorter than the 4096-byte header");
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED | (verifyChecksum ? MAP_POPULATE : 0), fd, 0);
  const int err = errno;
  ::close(fd);
  if (p == MAP_FAILED) throw SegmentIoError(path, err);
  base_ = static_cast<const uint8_t*>(p);
  fileBytes_ = size;
  try {
    Check(path, verifyChecksum);
  } catch (...) {
    Close();
    throw;
  }
#endif
}

Segment::~Segment() { Close(); }

void Segment::Close() {
#if !HAARSEEK_NO_MMAP
  if (base_ != nullptr) ::munmap(const_cast<uint8_t*>(base_), fileBytes_);
#endif
  base_ = nullptr;
  fileBytes_ = 0;
  count_ = 0;
  chunks_ = 0;
  ids_ = avglY_ = avglI_ = avglQ_ = nullptr;
  postings_ = nullptr;
  chunkTable_ = nullptr;
  dir_ = nullptr;
  std::vector<uint64_t>().swap(masked_);
  removed_ = 0;
}

// The same checks, in the same order and words, as decodeHeader and checkSegmentBody.
void Segment::Check(const std::string& path, bool verifyChecksum) {
  const uint8_t* h = base_;
  if (std::memcmp(h, kMagic, sizeof kMagic) != 0) Fail(path, "not an index segment (wrong magic bytes)");
  if (Load<uint32_t>(h + kOffByteOrder) != kByteOrderMark) Fail(path, "written with another byte order (or damaged header)");
  const uint32_t version = Load<uint32_t>(h + kOffVersion);
  if (version != kVersion) {
    Fail(path, "format version " + std::to_string(version) + ", this build reads version " + std::to_string(kVersion));
  }
  {
    uint8_t zero[4] = {0, 0, 0, 0};
    uint32_t crc = Crc32(h, kOffHeaderCrc);
    crc = Crc32(zero, 4, crc);
    crc = Crc32(h + kOffHeaderCrc + 4, kHeaderBytes - kOffHeaderCrc - 4, crc);
    if (crc != Load<uint32_t>(h + kOffHeaderCrc)) Fail(path, "damaged header (checksum mismatch)");
  }
  if (Load<uint32_t>(h + kOffHeaderBytes) != kHeaderBytes || Load<uint32_t>(h + kOffChunkBits) != kChunkBits ||
      Load<uint32_t>(h + kOffLists) != kLists) {
    Fail(path, "unsupported geometry (header size, chunk size or list count)");
  }
  if (Load<uint32_t>(h + kOffBitmapMin) != kBitmapMinPostings) Fail(path, "unsupported bitmap threshold");
  auto u64 = [&](size_t at) {
    const uint64_t v = Load<uint64_t>(h + at);
    if (v > kMaxSafeInteger) Fail(path, "header field out of range");
    return v;
  };
  const uint32_t chunks = Load<uint32_t>(h + kOffChunks);
  const uint64_t count = u64(kOffCount);
  const uint64_t seq = u64(kOffSeq);
  const double dbId = Load<double>(h + kOffDbId);
  const uint64_t fileBytes = u64(kOffFileBytes);
  const uint64_t idsOffset = u64(kOffIds), avglOffset = u64(kOffAvgl), postingsOffset = u64(kOffPostings);
  const uint64_t postingsBytes = u64(kOffPostingsBytes), chunkTableOffset = u64(kOffChunkTable), dirOffset = u64(kOffDir);
  if (count > 0xffffffffULL) Fail(path, "too many images");
  {
    // segmentLayout, in the order its fields are compared there.
    const uint64_t eChunks = (count + kChunkSlots - 1) / kChunkSlots;
    const uint64_t eIds = kHeaderBytes;
    const uint64_t eAvgl = AlignUp(eIds + count * 8);
    const uint64_t ePostings = AlignUp(eAvgl + count * 8 * kChannels);
    const uint64_t eChunkTable = AlignUp(ePostings + postingsBytes);
    const uint64_t eDir = AlignUp(eChunkTable + (eChunks + 1) * 8);
    const uint64_t eFile = eDir + eChunks * (uint64_t{kLists} + 1) * 4;
    if (eChunks != chunks) Fail(path, "inconsistent header (chunks)");
    if (eIds != idsOffset) Fail(path, "inconsistent header (idsOffset)");
    if (eAvgl != avglOffset) Fail(path, "inconsistent header (avglOffset)");
    if (ePostings != postingsOffset) Fail(path, "inconsistent header (postingsOffset)");
    if (eChunkTable != chunkTableOffset) Fail(path, "inconsistent header (chunkTableOffset)");
    if (eDir != dirOffset) Fail(path, "inconsistent header (dirOffset)");
    if (eFile != fileBytes) Fail(path, "inconsistent header (fileBytes)");
  }
  if (fileBytes_ < fileBytes) {
    Fail(path, "truncated: " + std::to_string(fileBytes_) + " bytes, the header says " + std::to_string(fileBytes));
  }
  if (fileBytes_ > fileBytes) {
    Fail(path, std::to_string(fileBytes_) + " bytes, the header says " + std::to_string(fileBytes) + " (trailing data)");
  }
  if (verifyChecksum && Crc32(h + kHeaderBytes, fileBytes - kHeaderBytes) != Load<uint32_t>(h + kOffBodyCrc)) {
    Fail(path, "damaged (checksum mismatch)");
  }
  const double* ids = reinterpret_cast<const double*>(h + idsOffset);
  for (uint64_t i = 0; i < count; i++) {
    if (!(ids[i] == ids[i]) || (i > 0 && !(ids[i] > ids[i - 1]))) Fail(path, "image ids not strictly ascending");
  }
  if (postingsBytes % kAlign != 0) Fail(path, "postings size not aligned");
  const uint64_t* table = reinterpret_cast<const uint64_t*>(h + chunkTableOffset);
  for (uint32_t c = 0; c <= chunks; c++) {
    const uint64_t off = table[c];
    if (off % kAlign != 0 || off > postingsBytes || (c > 0 && off < table[c - 1])) Fail(path, "bad chunk table");
    if ((c == 0 && off != 0) || (c == chunks && off != postingsBytes)) Fail(path, "bad chunk table");
  }
  const uint32_t* dir = reinterpret_cast<const uint32_t*>(h + dirOffset);
  for (uint32_t c = 0; c < chunks; c++) {
    const uint64_t baseUnits = table[c] / 2;
    const uint64_t size = (table[c + 1] - table[c]) / 2;
    const uint16_t* units = reinterpret_cast<const uint16_t*>(h + postingsOffset + table[c]);
    const uint32_t* d = dir + static_cast<size_t>(c) * (kLists + 1);
    if (d[0] != 0) Fail(path, "bad directory (chunk " + std::to_string(c) + ")");
    for (uint32_t l = 0; l < kLists; l++) {
      const uint32_t s = d[l], e = d[l + 1];
      if (e < s || e > size) Fail(path, "bad directory (chunk " + std::to_string(c) + ", list " + std::to_string(l) + ")");
      const uint32_t span = e - s;
      if (span >= kBitmapUnits) {
        if (span > kBitmapUnits + 3 || (baseUnits + e - kBitmapUnits) % 4 != 0) {
          Fail(path, "bad bitmap (chunk " + std::to_string(c) + ", list " + std::to_string(l) + ")");
        }
      } else {
        for (uint32_t p = s + 1; p < e; p++) {
          if (units[p] <= units[p - 1]) {
            Fail(path, "postings not ascending (chunk " + std::to_string(c) + ", list " + std::to_string(l) + ")");
          }
        }
      }
    }
  }
  count_ = count;
  seq_ = seq;
  dbId_ = dbId;
  chunks_ = chunks;
  ids_ = ids;
  avglY_ = reinterpret_cast<const double*>(h + avglOffset);
  avglI_ = avglY_ + count;
  avglQ_ = avglI_ + count;
  postings_ = h + postingsOffset;
  chunkTable_ = table;
  dir_ = dir;
}

int64_t Segment::SlotOf(double id) const {
  if (base_ == nullptr || std::isnan(id)) return -1;
  const double* end = ids_ + count_;
  const double* at = std::lower_bound(ids_, end, id);
  if (at == end || *at != id) return -1;
  const int64_t slot = at - ids_;
  return IsMasked(static_cast<uint64_t>(slot)) ? -1 : slot;
}

bool Segment::Remove(double id) {
  const int64_t slot = SlotOf(id);
  if (slot < 0) return false;
  if (masked_.empty()) masked_.assign((count_ + 63) / 64, 0);
  masked_[static_cast<uint64_t>(slot) >> 6] |= uint64_t{1} << (slot & 63);
  removed_++;
  return true;
}

bool Segment::Avgl(double id, double* out) const {
  const int64_t slot = SlotOf(id);
  if (slot < 0) return false;
  out[0] = avglY_[slot];
  out[1] = avglI_[slot];
  out[2] = avglQ_[slot];
  return true;
}

std::vector<double> Segment::Ids() const {
  std::vector<double> out;
  out.reserve(Live());
  for (uint64_t s = 0; s < count_; s++)
    if (!IsMasked(s)) out.push_back(ids_[s]);
  return out;
}

double Segment::ScoreOne(uint64_t slot, const Plan& plan) const {
  double score = AvglTerm(avglY_[slot], avglI_[slot], avglQ_[slot], plan.avgl);
  if (plan.fast) return score;
  const uint64_t chunk = slot >> kChunkBits;
  const uint16_t local = static_cast<uint16_t>(slot & (kChunkSlots - 1));
  const uint32_t* d = dir_ + chunk * (kLists + 1);
  const uint16_t* units = reinterpret_cast<const uint16_t*>(postings_ + chunkTable_[chunk]);
  for (int j = 0; j < kSignatureLength; j++) {
    const uint32_t s = d[plan.list[j]], e = d[plan.list[j] + 1];
    if (e - s >= kBitmapUnits) {
      const uint8_t* bm = reinterpret_cast<const uint8_t*>(units + e - kBitmapUnits);
      if ((bm[local >> 3] >> (local & 7)) & 1) score -= plan.w[j];
    } else if (e > s && std::binary_search(units + s, units + e, local)) {
      score -= plan.w[j];
    }
  }
  return score;
}

std::vector<Ranked> Segment::Query(const QueryArgs& q) const {
  if (q.limit == 0 || Live() == 0) return {};
  Plan plan;
  plan.fast = q.fast;
  const bool sketch = q.sketch;
  plan.avgl = {q.avgl[0], q.avgl[1], q.avgl[2], Weight(sketch, 0, 0), Weight(sketch, 0, 1), Weight(sketch, 0, 2)};
  if (!q.fast) {
    for (int k = 0; k < kSignatureLength; k++) {
      const int32_t c = q.coefs[k];
      if (c == 0 || c >= kPixels || c <= -kPixels) throw std::invalid_argument("signature coefficient out of range (must be +-1..16383)");
    }
    for (int c = 0; c < kChannels; c++) {
      for (int k = 0; k < kCoefsPerChannel; k++) {
        const int32_t coef = q.coefs[c * kCoefsPerChannel + k];
        plan.list[c * kCoefsPerChannel + k] = ListOf(c, coef);
        plan.w[c * kCoefsPerChannel + k] = Weight(sketch, BinOf(coef < 0 ? -coef : coef), c);
      }
    }
  }
  const Kernels kernels = KernelsOf(gKernel);
  ChunkOps ops;
  // Resolves the query's lists in a chunk.
  auto resolve = [&](uint32_t chunk) {
    ops.nops = ops.narrays = ops.nbitmaps = 0;
    if (plan.fast) return;
    const uint32_t* d = dir_ + static_cast<size_t>(chunk) * (kLists + 1);
    const uint16_t* units = reinterpret_cast<const uint16_t*>(postings_ + chunkTable_[chunk]);
    for (int j = 0; j < kSignatureLength; j++) {
      const uint32_t s = d[plan.list[j]], e = d[plan.list[j] + 1];
      if (e == s) continue;
      if (e - s >= kBitmapUnits) {
        const uint16_t b = static_cast<uint16_t>(ops.nbitmaps++);
        ops.bm[b] = reinterpret_cast<const uint8_t*>(units + e - kBitmapUnits);
        ops.bw[b] = plan.w[j];
        if (ops.nops > 0 && ops.ops[ops.nops - 1].bitmap) {
          ops.ops[ops.nops - 1].count++;
        } else {
          ops.ops[ops.nops++] = {true, b, 1};
        }
      } else {
        const uint16_t a = static_cast<uint16_t>(ops.narrays++);
        ops.begin[a] = ops.cur[a] = units + s;
        ops.end[a] = units + e;
        ops.aw[a] = plan.w[j];
        ops.ops[ops.nops++] = {false, a, 1};
      }
    }
  };
  alignas(64) double s[kBlock];
  // Scores block [b, b + blen) of a chunk into s (zero past blen, up to the next multiple of 64).
  auto scoreBlock = [&](uint64_t first, uint32_t b, uint32_t blen) {
    kernels.init(s, avglY_ + first + b, avglI_ + first + b, avglQ_ + first + b, blen, plan.avgl);
    const uint32_t n64 = (blen + 63) & ~uint32_t{63};
    std::fill(s + blen, s + n64, 0.0);
    if (!plan.fast) WalkBlock(ops, s, b, blen, kernels.run);
  };

  if (q.filtered) {
    std::vector<uint64_t> chosen;
    chosen.reserve(std::min(q.allowedCount, Live()));
    for (size_t i = 0; i < q.allowedCount; i++) {
      const int64_t slot = SlotOf(q.allowed[i] + 0.0);
      if (slot >= 0) chosen.push_back(static_cast<uint64_t>(slot));
    }
    std::sort(chosen.begin(), chosen.end());
    chosen.erase(std::unique(chosen.begin(), chosen.end()), chosen.end());
    if (chosen.empty()) return {};
    TopK top(std::min(q.limit, chosen.size()));
    int64_t resolved = -1;
    for (size_t i = 0; i < chosen.size();) {
      const uint64_t block = chosen[i] / kBlock;
      size_t j = i;
      while (j < chosen.size() && chosen[j] / kBlock == block) j++;
      if (j - i < kDirectMax) {
        for (size_t k = i; k < j; k++) {
          const double score = ScoreOne(chosen[k], plan);
          if (top.WouldAccept(score, ids_[chosen[k]])) top.Push(score, ids_[chosen[k]]);
        }
      } else {
        const uint32_t chunk = static_cast<uint32_t>((block * kBlock) >> kChunkBits);
        if (resolved != chunk) {
          resolve(chunk);
          resolved = chunk;
        }
        const uint64_t first = uint64_t{chunk} << kChunkBits;
        const uint32_t b = static_cast<uint32_t>(block * kBlock - first);
        const uint32_t blen = static_cast<uint32_t>(std::min<uint64_t>(kBlock, count_ - first - b));
        for (uint32_t a = 0; a < ops.narrays; a++) ops.cur[a] = std::lower_bound(ops.begin[a], ops.end[a], b);
        scoreBlock(first, b, blen);
        for (size_t k = i; k < j; k++) {
          const double score = s[chosen[k] - first - b];
          if (top.WouldAccept(score, ids_[chosen[k]])) top.Push(score, ids_[chosen[k]]);
        }
      }
      i = j;
    }
    return top.Sorted();
  }

  TopK top(std::min(q.limit, Live()));
  double worst = HUGE_VAL;
  const bool anyMasked = removed_ != 0;
  for (uint32_t chunk = 0; chunk < chunks_; chunk++) {
    const uint64_t first = uint64_t{chunk} << kChunkBits;
    const uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(kChunkSlots, count_ - first));
    resolve(chunk);
    for (uint32_t b = 0; b < len; b += kBlock) {
      const uint32_t blen = std::min(kBlock, len - b);
      scoreBlock(first, b, blen);
      // Most images lose to the worst kept score: one vector compare per 64 finds the others.
      const uint64_t base = first + b;
      for (uint32_t i = 0; i < blen; i += 64) {
        uint64_t m = kernels.candidates(s + i, worst);
        if (blen - i < 64) m &= (uint64_t{1} << (blen - i)) - 1;
        while (m != 0) {
          const uint32_t k = Ctz(m);
          m &= m - 1;
          const double score = s[i + k];
          if (score > worst) continue;  // worst fell since the mask was taken
          const uint64_t slot = base + i + k;
          if (anyMasked && IsMasked(slot)) continue;
          const double id = ids_[slot];
          if (!top.WouldAccept(score, id)) continue;
          top.Push(score, id);
          worst = top.Full() ? top.WorstScore() : HUGE_VAL;
        }
      }
    }
  }
  return top.Sorted();
}

}  // namespace haarseek
