#include "segment.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

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

#include "segment_kernels.h"
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
constexpr uint32_t kChunkSlots = 1u << 16;
// Images per block of the exact walk: 16 KB of scores stay in L1 while every list of
// the query passes over them. A multiple of 64 that divides the chunk size.
constexpr uint32_t kBlock = 2048;
// Images per block of the bound pass (16 KB of uint16 bounds); a multiple of 256.
constexpr uint32_t kBoundBlock = 8192;
// The bound pass counts weights in units of 1/kBoundScale, each rounded up.
constexpr double kBoundScale = 512;
// Bounds are kept per group of this many images, to pick the first candidates.
constexpr uint32_t kGroup = 256;
// The bounded query is used from this many live images on, for limits up to
// kBoundMaxLimit, and gives way to the exact walk past kMaxCandidates candidates.
constexpr size_t kBoundMinLive = 32768;
constexpr size_t kBoundMaxLimit = 1024;
constexpr size_t kMaxCandidates = 16384;
// The first images scored exactly (largest sums first), to set the worst kept score.
constexpr size_t kFirstCandidates = 2048;
// Both limits, lowered by tests to drive every path of the bounded query.
size_t gMaxCandidates = kMaxCandidates;
size_t gFirstCandidates = kFirstCandidates;
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
  kOffAvgl8 = 136,
  kOffAvgl8Min = 144,
  kOffAvgl8Step = 168,
  kOffFlags = 192,
};
constexpr uint32_t kFlagNonFiniteAvgl = 1;

#if defined(_MSC_VER)
inline void Prefetch(const void*) {}
#else
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

SegmentKernel gKernel = DetectSegmentKernel();
SegmentQueryCounts gCounts;
SegmentStrategy gStrategy = SegmentStrategy::kAuto;

// The query's lists walked over one chunk, in query order, empty ones left out; runs of
// consecutive bitmaps pass over a block together (a run is one kernel call).
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
  uint16_t awu[kSignatureLength];
  uint32_t narrays = 0;
  const uint8_t* bm[kSignatureLength];
  double bw[kSignatureLength];
  uint16_t bwu[kSignatureLength];
  uint32_t nbitmaps = 0;
};

// Subtracts the array lists' and bitmap runs' weights over block [b, b + blen) of the chunk.
inline void WalkBlock(ChunkOps& c, double* s, uint32_t b, uint32_t blen, const SegmentKernels& k) {
  const uint32_t lim = b + blen;
  const uint32_t n64 = (blen + 63) & ~uint32_t{63};
  for (uint32_t o = 0; o < c.nops; o++) {
    const ChunkOps::Op& op = c.ops[o];
    if (op.bitmap) {
      k.run(s, n64, c.bm + op.first, c.bw + op.first, op.count, b >> 3);
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
  uint16_t units[kSignatureLength];  // ceil(w * kBoundScale)
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
  if (!SegmentKernelSupported(k)) return false;
  gKernel = k;
  return true;
}

size_t Segment::PrivateBytes() const {
  return masked_.capacity() * sizeof(uint64_t) + bound_.capacity() * sizeof(uint16_t) +
         groupMax_.capacity() * sizeof(uint16_t) + chunkLists_.capacity() * sizeof(ChunkLists);
}

SegmentQueryCounts Segment::Counts() { return gCounts; }

void Segment::SetBoundLimits(size_t firstCandidates, size_t maxCandidates) {
  gFirstCandidates = firstCandidates == 0 ? kFirstCandidates : firstCandidates;
  gMaxCandidates = maxCandidates < 2 ? kMaxCandidates : maxCandidates;
}

SegmentStrategy Segment::Strategy() { return gStrategy; }

void Segment::SetStrategy(SegmentStrategy s) { gStrategy = s; }

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
  const uint64_t avgl8Offset = u64(kOffAvgl8);
  if (count > 0xffffffffULL) Fail(path, "too many images");
  {
    // segmentLayout, in the order its fields are compared there.
    const uint64_t eChunks = (count + kChunkSlots - 1) / kChunkSlots;
    const uint64_t eIds = kHeaderBytes;
    const uint64_t eAvgl = AlignUp(eIds + count * 8);
    const uint64_t eAvgl8 = AlignUp(eAvgl + count * 8 * kChannels);
    const uint64_t ePostings = AlignUp(eAvgl8 + count * 4);
    const uint64_t eChunkTable = AlignUp(ePostings + postingsBytes);
    const uint64_t eDir = AlignUp(eChunkTable + (eChunks + 1) * 8);
    const uint64_t eFile = eDir + eChunks * (uint64_t{kLists} + 1) * 4;
    if (eChunks != chunks) Fail(path, "inconsistent header (chunks)");
    if (eIds != idsOffset) Fail(path, "inconsistent header (idsOffset)");
    if (eAvgl != avglOffset) Fail(path, "inconsistent header (avglOffset)");
    if (eAvgl8 != avgl8Offset) Fail(path, "inconsistent header (avgl8Offset)");
    if (ePostings != postingsOffset) Fail(path, "inconsistent header (postingsOffset)");
    if (eChunkTable != chunkTableOffset) Fail(path, "inconsistent header (chunkTableOffset)");
    if (eDir != dirOffset) Fail(path, "inconsistent header (dirOffset)");
    if (eFile != fileBytes) Fail(path, "inconsistent header (fileBytes)");
  }
  for (int ch = 0; ch < kChannels; ch++) {
    const double min = Load<double>(h + kOffAvgl8Min + 8 * ch), step = Load<double>(h + kOffAvgl8Step + 8 * ch);
    if (!std::isfinite(min) || !(step > 0) || !std::isfinite(step)) Fail(path, "bad avgl quantization");
    avgl8Min_[ch] = min;
    avgl8Step_[ch] = step;
  }
  const uint32_t flags = Load<uint32_t>(h + kOffFlags);
  if ((flags & ~kFlagNonFiniteAvgl) != 0) Fail(path, "unknown flags");
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
    const uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(kChunkSlots, count - uint64_t{c} * kChunkSlots));
    if (d[0] != 0) Fail(path, "bad directory (chunk " + std::to_string(c) + ")");
    for (uint32_t l = 0; l < kLists; l++) {
      const uint32_t s = d[l], e = d[l + 1];
      if (e < s || e > size) Fail(path, "bad directory (chunk " + std::to_string(c) + ", list " + std::to_string(l) + ")");
      const uint32_t span = e - s;
      if (span >= kBitmapUnits) {
        if (span > kBitmapUnits + 3 || (baseUnits + e - kBitmapUnits) % 4 != 0) {
          Fail(path, "bad bitmap (chunk " + std::to_string(c) + ", list " + std::to_string(l) + ")");
        }
        const uint8_t* bits = reinterpret_cast<const uint8_t*>(units + e - kBitmapUnits);
        for (uint32_t k = len; k < kChunkSlots; k++) {
          if ((bits[k >> 3] >> (k & 7)) & 1) {
            Fail(path, "postings beyond the image count (chunk " + std::to_string(c) + ", list " + std::to_string(l) + ")");
          }
        }
      } else if (span > 0) {
        for (uint32_t p = s + 1; p < e; p++) {
          if (units[p] <= units[p - 1]) {
            Fail(path, "postings not ascending (chunk " + std::to_string(c) + ", list " + std::to_string(l) + ")");
          }
        }
        if (units[e - 1] >= len) {
          Fail(path, "postings beyond the image count (chunk " + std::to_string(c) + ", list " + std::to_string(l) + ")");
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
  avgl8_ = h + avgl8Offset;
  boundable_ = (flags & kFlagNonFiniteAvgl) == 0;
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

void Segment::Resolve(uint32_t chunk, const Plan& plan, ChunkLists* out) const {
  const uint32_t* d = dir_ + static_cast<size_t>(chunk) * (kLists + 1);
  const uint16_t* units = reinterpret_cast<const uint16_t*>(postings_ + chunkTable_[chunk]);
  for (int j = 0; j < kSignatureLength; j++) {
    const uint32_t s = d[plan.list[j]], e = d[plan.list[j] + 1];
    if (e - s >= kBitmapUnits) {
      out->bm[j] = reinterpret_cast<const uint8_t*>(units + e - kBitmapUnits);
      out->arr[j] = out->end[j] = nullptr;
    } else {
      out->bm[j] = nullptr;
      out->arr[j] = units + s;
      out->end[j] = units + e;
    }
  }
}

namespace {

// The walk of a chunk's lists, empty arrays left out, consecutive bitmaps in runs.
void BuildOps(const Segment::ChunkLists& l, const double* w, const uint16_t* units, ChunkOps* ops) {
  ops->nops = ops->narrays = ops->nbitmaps = 0;
  for (int j = 0; j < kSignatureLength; j++) {
    if (l.bm[j] != nullptr) {
      const uint16_t b = static_cast<uint16_t>(ops->nbitmaps++);
      ops->bm[b] = l.bm[j];
      ops->bw[b] = w[j];
      ops->bwu[b] = units[j];
      if (ops->nops > 0 && ops->ops[ops->nops - 1].bitmap) {
        ops->ops[ops->nops - 1].count++;
      } else {
        ops->ops[ops->nops++] = {true, b, 1};
      }
    } else if (l.arr[j] != l.end[j]) {
      const uint16_t a = static_cast<uint16_t>(ops->narrays++);
      ops->begin[a] = ops->cur[a] = l.arr[j];
      ops->end[a] = l.end[j];
      ops->aw[a] = w[j];
      ops->awu[a] = units[j];
      ops->ops[ops->nops++] = {false, a, 1};
    }
  }
}

}  // namespace

double Segment::ScoreOne(uint64_t slot, const Plan& plan, const ChunkLists& l) const {
  double score = AvglTerm(avglY_[slot], avglI_[slot], avglQ_[slot], plan.avgl);
  if (plan.fast) return score;
  const uint16_t local = static_cast<uint16_t>(slot & (kChunkSlots - 1));
  for (int j = 0; j < kSignatureLength; j++) {
    if (l.bm[j] != nullptr) {
      if ((l.bm[j][local >> 3] >> (local & 7)) & 1) score -= plan.w[j];
    } else if (l.arr[j] != l.end[j] && std::binary_search(l.arr[j], l.end[j], local)) {
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
        const int j = c * kCoefsPerChannel + k;
        const int32_t coef = q.coefs[j];
        plan.list[j] = ListOf(c, coef);
        plan.w[j] = Weight(sketch, BinOf(coef < 0 ? -coef : coef), c);
        plan.units[j] = static_cast<uint16_t>(std::ceil(plan.w[j] * kBoundScale));
      }
    }
  }
  if (q.filtered) return QueryFiltered(q, plan);
  const size_t limit = std::min(q.limit, Live());
  uint32_t totalUnits = 0;
  if (!q.fast)
    for (int j = 0; j < kSignatureLength; j++) totalUnits += plan.units[j];
  // The bound pass sums weight units in uint16 lanes: every image's sum must fit.
  const bool bounded = boundable_ && totalUnits <= 0xffff && !q.fast && (gStrategy == SegmentStrategy::kBounded ||
                       (gStrategy == SegmentStrategy::kAuto && Live() >= kBoundMinLive && limit <= kBoundMaxLimit));
  if (bounded) {
    std::vector<Ranked> out;
    if (QueryBounded(limit, plan, &out)) return out;
  }
  gCounts.exact++;
  return QueryExact(limit, plan);
}

// Every image scored: per chunk, per block of kBlock images, the avgl term and then the
// lists in query order, and the block's scores offered to the top k.
std::vector<Ranked> Segment::QueryExact(size_t limit, const Plan& plan) const {
  const SegmentKernels k = SegmentKernelsFor(gKernel);
  ChunkLists lists;
  ChunkOps ops;
  alignas(64) double s[kBlock];
  TopK top(limit);
  double worst = HUGE_VAL;
  const bool anyMasked = removed_ != 0;
  for (uint32_t chunk = 0; chunk < chunks_; chunk++) {
    const uint64_t first = uint64_t{chunk} << kChunkBits;
    const uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(kChunkSlots, count_ - first));
    if (!plan.fast) {
      Resolve(chunk, plan, &lists);
      BuildOps(lists, plan.w, plan.units, &ops);
    }
    for (uint32_t b = 0; b < len; b += kBlock) {
      const uint32_t blen = std::min(kBlock, len - b);
      k.init(s, avglY_ + first + b, avglI_ + first + b, avglQ_ + first + b, blen, plan.avgl);
      std::fill(s + blen, s + ((blen + 63) & ~uint32_t{63}), 0.0);
      if (!plan.fast) WalkBlock(ops, s, b, blen, k);
      // Most images lose to the worst kept score: one vector compare per 64 finds the others.
      const uint64_t base = first + b;
      for (uint32_t i = 0; i < blen; i += 64) {
        uint64_t m = k.candidates(s + i, worst);
        if (blen - i < 64) m &= (uint64_t{1} << (blen - i)) - 1;
        while (m != 0) {
          const uint32_t at = i + Ctz(m);
          m &= m - 1;
          const double score = s[at];
          if (score > worst) continue;  // worst fell since the mask was taken
          const uint64_t slot = base + at;
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

// Keyword-restricted queries: only the allowed images are scored, one by one where they
// are few in a block, else with the block walk.
std::vector<Ranked> Segment::QueryFiltered(const QueryArgs& q, const Plan& plan) const {
  std::vector<uint64_t> chosen;
  chosen.reserve(std::min(q.allowedCount, Live()));
  for (size_t i = 0; i < q.allowedCount; i++) {
    const int64_t slot = SlotOf(q.allowed[i] + 0.0);
    if (slot >= 0) chosen.push_back(static_cast<uint64_t>(slot));
  }
  std::sort(chosen.begin(), chosen.end());
  chosen.erase(std::unique(chosen.begin(), chosen.end()), chosen.end());
  if (chosen.empty()) return {};
  const SegmentKernels k = SegmentKernelsFor(gKernel);
  TopK top(std::min(q.limit, chosen.size()));
  ChunkLists lists;
  ChunkOps ops;
  alignas(64) double s[kBlock];
  int64_t resolved = -1;
  for (size_t i = 0; i < chosen.size();) {
    const uint64_t block = chosen[i] / kBlock;
    size_t j = i;
    while (j < chosen.size() && chosen[j] / kBlock == block) j++;
    const uint32_t chunk = static_cast<uint32_t>((block * kBlock) >> kChunkBits);
    if (!plan.fast && resolved != chunk) {
      Resolve(chunk, plan, &lists);
      BuildOps(lists, plan.w, plan.units, &ops);
      resolved = chunk;
    }
    if (j - i < kDirectMax) {
      for (size_t c = i; c < j; c++) {
        const double score = ScoreOne(chosen[c], plan, lists);
        if (top.WouldAccept(score, ids_[chosen[c]])) top.Push(score, ids_[chosen[c]]);
      }
    } else {
      const uint64_t first = uint64_t{chunk} << kChunkBits;
      const uint32_t b = static_cast<uint32_t>(block * kBlock - first);
      const uint32_t blen = static_cast<uint32_t>(std::min<uint64_t>(kBlock, count_ - first - b));
      k.init(s, avglY_ + first + b, avglI_ + first + b, avglQ_ + first + b, blen, plan.avgl);
      std::fill(s + blen, s + ((blen + 63) & ~uint32_t{63}), 0.0);
      if (!plan.fast) {
        for (uint32_t a = 0; a < ops.narrays; a++) ops.cur[a] = std::lower_bound(ops.begin[a], ops.end[a], b);
        WalkBlock(ops, s, b, blen, k);
      }
      for (size_t c = i; c < j; c++) {
        const double score = s[chosen[c] - first - b];
        if (top.WouldAccept(score, ids_[chosen[c]])) top.Push(score, ids_[chosen[c]]);
      }
    }
    i = j;
  }
  return top.Sorted();
}

// The bounded query. A first pass adds up, per image, the matching lists' weights in
// fixed point rounded up (uint16 lanes: a quarter of the exact walk's vector work, and
// no avgl read): Wq/512 >= W, the exact sum of the weights an image's score loses. As
// every score is its avgl term A minus W, rounded by at most a few ulps, and the 8-bit
// avgl copy gives a lower bound of A, bound(A) - Wq/512 - margin is a lower bound of
// the exact score. Candidates are then scored exactly
// (ScoreOne: the exact walk's operations, in its order) in order of that bound, until
// the bound passes the k-th best exact score: no image left out could have entered, so
// the result is the exact walk's, bit for bit. Returns false (the caller walks exactly)
// when the bound does not separate the images well enough.
bool Segment::QueryBounded(size_t limit, const Plan& plan, std::vector<Ranked>* out) const {
  const SegmentKernels k = SegmentKernelsFor(gKernel);
  const size_t padded = static_cast<size_t>(chunks_) << kChunkBits;
  if (bound_.size() < padded) {
    std::vector<uint16_t>().swap(bound_);
    bound_.resize(padded);
  }
  uint16_t* w = bound_.data();
  const size_t groups = (count_ + kGroup - 1) / kGroup;
  groupMax_.resize(groups);
  chunkLists_.resize(chunks_);
  const uint8_t* bm[kSignatureLength];
  uint16_t bu[kSignatureLength];
  for (uint32_t chunk = 0; chunk < chunks_; chunk++) {
    const uint64_t first = uint64_t{chunk} << kChunkBits;
    const uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(kChunkSlots, count_ - first));
    ChunkLists& l = chunkLists_[chunk];
    Resolve(chunk, plan, &l);
    uint32_t nb = 0;
    for (int j = 0; j < kSignatureLength; j++) {
      if (l.bm[j] == nullptr) continue;
      bm[nb] = l.bm[j];
      bu[nb++] = plan.units[j];
    }
    uint16_t* s = w + first;
    // The sum does not depend on the order of its terms: all bitmaps in one pass per
    // block (registers hold 256 images' sums), then each array list in one sweep of the
    // chunk's 128 KB of sums.
    for (uint32_t b = 0; b < len; b += kBoundBlock) {
      const uint32_t n = (std::min(kBoundBlock, len - b) + 255) & ~uint32_t{255};
      std::fill(s + b, s + b + n, uint16_t{0});
      if (nb == 0) continue;
      k.runBound(s + b, n, bm, bu, nb, b >> 3);
    }
    // Array lists are short streams the hardware prefetcher barely ramps up on: ask
    // for the next list's first lines while walking one, and 512 bytes ahead inside it.
    int next = 0;
    auto prefetchNext = [&](int after) {
      for (next = after + 1; next < kSignatureLength && l.bm[next] != nullptr; next++) {
      }
      if (next < kSignatureLength)
        for (const uint16_t* q = l.arr[next]; q < l.end[next] && q < l.arr[next] + 256; q += 32) Prefetch(q);
    };
    prefetchNext(-1);
    for (int j = next; j < kSignatureLength; j = next) {
      prefetchNext(j);
      const uint16_t u = plan.units[j];
      const uint16_t* p = l.arr[j];
      const uint16_t* e = l.end[j];
      for (; p + 32 <= e; p += 32) {
        Prefetch(p + 256);
        for (int i = 0; i < 32; i++) s[p[i]] += u;
      }
      for (; p + 4 <= e; p += 4) {
        s[p[0]] += u;
        s[p[1]] += u;
        s[p[2]] += u;
        s[p[3]] += u;
      }
      for (; p < e; p++) s[*p] += u;
    }
    for (uint32_t g = 0; g < len; g += kGroup) groupMax_[(first + g) / kGroup] = k.max256(s + g);
  }
  // The first threshold: the limit-th largest group maximum; at least `limit` images reach it.
  if (groups < limit) return ++gCounts.fewGroups, false;
  std::vector<uint16_t> maxima(groupMax_.begin(), groupMax_.end());
  std::nth_element(maxima.begin(), maxima.begin() + (limit - 1), maxima.end(), std::greater<uint16_t>());
  const uint16_t first = maxima[limit - 1];
  if (first == 0) return ++gCounts.noMatches, false;

  // A lower bound of each image's avgl term from its 8-bit copy: per channel, the
  // distance from the query to the quantization cell (half a step either side of the
  // dequantized value, widened for rounding), times the weight; a table per channel.
  double cell[kChannels][256];
  const double qv[kChannels] = {plan.avgl.q0, plan.avgl.q1, plan.avgl.q2};
  const double wv[kChannels] = {plan.avgl.w0, plan.avgl.w1, plan.avgl.w2};
  for (int ch = 0; ch < kChannels; ch++) {
    const double half = avgl8Step_[ch] * 0.5 * (1 + 1e-6) + 1e-12 * (std::fabs(avgl8Min_[ch]) + 256 * avgl8Step_[ch]);
    for (int v = 0; v < 256; v++) cell[ch][v] = wv[ch] * std::max(0.0, std::fabs(avgl8Min_[ch] + v * avgl8Step_[ch] - qv[ch]) - half);
  }

  TopK top(limit);
  double worst = HUGE_VAL;
  std::vector<std::pair<double, uint64_t>> candidates;
  size_t candidatesSeen = 0, scored = 0;
  uint64_t hits[kGroup / 64];
  auto lowerBound = [&](uint64_t slot) {
    const uint8_t* a8 = avgl8_ + slot * 4;
    const double a = cell[0][a8[0]] + cell[1][a8[1]] + cell[2][a8[2]];
    return a - w[slot] / kBoundScale - 1e-9 * (1 + a + 256);
  };
  // Scores candidates exactly in order of their lower bound until it passes the worst
  // kept score; each scored image's sum is zeroed so that no later pass takes it again.
  auto scoreCandidates = [&]() {
    candidatesSeen += candidates.size();
    std::sort(candidates.begin(), candidates.end());
    for (const auto& [lb, slot] : candidates) {
      if (lb > worst) break;
      const double s = ScoreOne(slot, plan, chunkLists_[slot >> kChunkBits]);
      w[slot] = 0;
      scored++;
      const double id = ids_[slot];
      if (!top.WouldAccept(s, id)) continue;
      top.Push(s, id);
      worst = top.Full() ? top.WorstScore() : HUGE_VAL;
    }
  };
  // Calls f(slot) for each live image with from <= Wq < to.
  auto each = [&](uint32_t from, uint32_t to, auto&& f) {
    for (size_t g = 0; g < groups; g++) {
      if (groupMax_[g] < from) continue;
      k.atLeast256(w + g * kGroup, from, to, hits);
      const uint64_t base = g * kGroup;
      for (uint32_t part = 0; part < kGroup / 64; part++) {
        for (uint64_t m = hits[part]; m != 0; m &= m - 1) {
          const uint64_t slot = base + part * 64 + Ctz(m);
          if (slot < count_ && !IsMasked(slot)) f(slot);
        }
      }
    }
  };
  // First candidates: the images with the largest sums (at most kFirstCandidates of them),
  // enough to fill the top k with good exact scores.
  {
    std::vector<std::pair<uint16_t, uint64_t>> largest;
    each(first, 0x10000, [&](uint64_t slot) { largest.emplace_back(w[slot], slot); });
    const size_t keep = std::max(gFirstCandidates, 2 * limit);
    if (largest.size() > keep) {
      std::nth_element(largest.begin(), largest.begin() + keep, largest.end(), std::greater<>());
      largest.resize(keep);
    }
    candidates.clear();
    for (const auto& [sum, slot] : largest) candidates.emplace_back(lowerBound(slot), slot);
  }
  scoreCandidates();
  if (!top.Full()) return ++gCounts.notFull, false;
  // Every image not scored has a lower bound of at least -Wq/512 - margin (an avgl term
  // of 0): one with Wq < need cannot enter. Those with Wq >= need are candidates when
  // their bound with the 8-bit avgl term does not exceed the worst kept score. When
  // there are too many, the best of them are scored first (the worst kept score falls)
  // and the others looked at again.
  for (int round = 0;; round++) {
    const double x = (-worst - 1e-6) * kBoundScale;
    if (!(x >= 1)) return ++gCounts.weakBound, false;
    const uint32_t need = x >= 65536 ? 65536u : static_cast<uint32_t>(std::floor(x));
    candidates.clear();
    double cutoff = worst;
    bool truncated = false;
    each(need, 0x10000, [&](uint64_t slot) {
      const double lb = lowerBound(slot);
      if (lb > cutoff || (truncated && lb == cutoff)) return;
      candidates.emplace_back(lb, slot);
      if (candidates.size() < gMaxCandidates) return;
      // Keep the better half; from now on only bounds below the worst kept one.
      std::nth_element(candidates.begin(), candidates.begin() + gMaxCandidates / 2, candidates.end());
      candidates.resize(gMaxCandidates / 2);
      cutoff = std::max_element(candidates.begin(), candidates.end())->first;
      truncated = true;
    });
    scoreCandidates();
    if (!truncated) break;
    if (round == 2) return ++gCounts.tooManyCandidates, false;
  }
  *out = top.Sorted();
  gCounts.bounded++;
  gCounts.candidates += candidatesSeen;
  gCounts.scored += scored;
  return true;
}

}  // namespace haarseek
