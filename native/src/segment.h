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

// The SIMD flavour of the block walk; all give identical results.
enum class SegmentKernel { kScalar, kAvx2, kAvx512 };

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
  // Memory of this process's own (the removal mask), not the mapping.
  size_t PrivateBytes() const { return masked_.capacity() * sizeof(uint64_t); }

  static SegmentKernel Kernel();
  static const char* KernelName(SegmentKernel k);
  // For tests and benchmarks: false when this CPU cannot run the kernel.
  static bool SetKernel(SegmentKernel k);

 private:
  struct Plan;
  void Check(const std::string& path, bool verifyChecksum);
  // Slot of a live image, or -1.
  int64_t SlotOf(double id) const;
  bool IsMasked(uint64_t slot) const { return removed_ != 0 && ((masked_[slot >> 6] >> (slot & 63)) & 1) != 0; }
  double ScoreOne(uint64_t slot, const Plan& plan) const;

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
  const uint64_t* chunkTable_ = nullptr;
  const uint32_t* dir_ = nullptr;
  std::vector<uint64_t> masked_;
  size_t removed_ = 0;
};

}  // namespace haarseek
