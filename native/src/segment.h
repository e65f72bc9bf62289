// An index segment file (layout: src/index/segment-format.ts) mapped read-only: the
// pages are the page cache's, shared by every process that maps the same file. A query
// walks it chunk by chunk (65,536 images), each chunk in blocks small enough for L1,
// with each score computed by exactly the float64 operations of SignatureIndex::Query
// in the same order, so results are bit-identical. Not thread-safe by itself.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "index.h"
#include "segment_kernels.h"

namespace haarseek {

// A file that is not a usable segment (foreign, other version, truncated, damaged).
class SegmentFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The file cannot be opened or mapped; err is the errno value.
class SegmentIoError : public std::runtime_error {
 public:
  SegmentIoError(const std::string& path, int errnum);
  int err;
};

// How a top-k query over the whole segment is computed; every strategy returns the same
// results. kAuto: bounded for large segments and small limits, else exact.
enum class SegmentStrategy { kAuto, kExact, kBounded };

// How whole-segment top-k queries went in this process (benchmarks, tests).
struct SegmentQueryCounts {
  uint64_t bounded = 0, exact = 0;
  // Bounded queries that gave way to the exact walk, by reason.
  uint64_t fewGroups = 0, noMatches = 0, tooManyCandidates = 0, notFull = 0, weakBound = 0;
  // Over the bounded queries that completed: candidates found and scored exactly.
  uint64_t candidates = 0, scored = 0;
};

class Segment {
 public:
  static constexpr uint32_t kChunkBits = 16;
  static constexpr uint32_t kChunkSlots = 1u << kChunkBits;
  static constexpr uint32_t kLists = kChannels * 2 * kPixels;
  static constexpr uint32_t kBitmapUnits = kChunkSlots / 16;
  static constexpr uint32_t kHeaderBytes = 4096;

  // Maps and checks the file. Throws SegmentFormatError, or std::runtime_error when
  // the file cannot be opened or mapped (the message names the path and errno text).
  Segment(const std::string& path, bool verifyChecksum);
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  // Unmaps; the segment is empty afterwards.
  void Close();
  bool Mapped() const { return base_ != nullptr; }

  uint64_t Count() const { return count_; }
  uint64_t Seq() const { return seq_; }
  double DbId() const { return dbId_; }
  size_t FileBytes() const { return fileBytes_; }
  size_t MappedBytes() const { return base_ ? fileBytes_ : 0; }
  size_t Live() const { return count_ - removed_; }
  size_t Removed() const { return removed_; }
  // Hides an image in this process (the file is not written).
  bool Remove(double id);
  bool Has(double id) const { return SlotOf(id) >= 0; }
  bool Avgl(double id, double* out) const;
  // The live ids, ascending.
  std::vector<double> Ids() const;
  // Best first (score, then id ascending), at most q.limit.
  std::vector<Ranked> Query(const QueryArgs& q) const;
  // Memory of this process's own (the removal mask, query scratch), not the mapping.
  size_t PrivateBytes() const;

  static SegmentKernel Kernel();
  static const char* KernelName(SegmentKernel k);
  // For tests and benchmarks: false when this CPU cannot run the kernel.
  static bool SetKernel(SegmentKernel k);
  static SegmentStrategy Strategy();
  static SegmentQueryCounts Counts();
  // Tests: how many images the bounded query scores first, and how many candidates it
  // holds at once (0 restores the defaults).
  static void SetBoundLimits(size_t firstCandidates, size_t maxCandidates);
  // For tests and benchmarks.
  static void SetStrategy(SegmentStrategy s);

  // The query's lists in one chunk: a bitmap, or a uint16 array [arr, end).
  struct ChunkLists {
    const uint8_t* bm[kSignatureLength];
    const uint16_t* arr[kSignatureLength];
    const uint16_t* end[kSignatureLength];
  };

 private:
  struct Plan;
  void Check(const std::string& path, bool verifyChecksum);
  // Slot of a live image, or -1.
  int64_t SlotOf(double id) const;
  bool IsMasked(uint64_t slot) const { return removed_ != 0 && ((masked_[slot >> 6] >> (slot & 63)) & 1) != 0; }
  void Resolve(uint32_t chunk, const Plan& plan, ChunkLists* out) const;
  // One image's exact score, the operations of the block walk in the same order.
  double ScoreOne(uint64_t slot, const Plan& plan, const ChunkLists& lists) const;
  std::vector<Ranked> QueryExact(size_t limit, const Plan& plan) const;
  std::vector<Ranked> QueryFiltered(const QueryArgs& q, const Plan& plan) const;
  bool QueryBounded(size_t limit, const Plan& plan, std::vector<Ranked>* out) const;

  const uint8_t* base_ = nullptr;
  size_t fileBytes_ = 0;
  uint64_t count_ = 0;
  uint64_t seq_ = 0;
  double dbId_ = 0;
  uint32_t chunks_ = 0;
  const double* ids_ = nullptr;
  const double* avglY_ = nullptr;
  const double* avglI_ = nullptr;
  const double* avglQ_ = nullptr;
  const uint8_t* postings_ = nullptr;
  const uint8_t* avgl8_ = nullptr;
  double avgl8Min_[kChannels] = {0, 0, 0};
  double avgl8Step_[kChannels] = {1, 1, 1};
  // False when some avgl is not finite: the 8-bit copy bounds nothing then.
  bool boundable_ = false;
  const uint64_t* chunkTable_ = nullptr;
  const uint32_t* dir_ = nullptr;
  std::vector<uint64_t> masked_;
  size_t removed_ = 0;
  // Scratch of the bounded query, kept between queries.
  mutable std::vector<uint16_t> bound_;
  mutable std::vector<uint16_t> groupMax_;
  mutable std::vector<ChunkLists> chunkLists_;
};

}  // namespace haarseek
