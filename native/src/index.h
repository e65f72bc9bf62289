// The inverted index of one database space, in native memory: the same scoring as
// src/index/ts-index.ts (same float64 operations in the same order), so both engines
// rank identically. Not thread-safe by itself: the addon serialises access.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "signature.h"

namespace haarseek {

struct QueryArgs {
  const int32_t* coefs;  // kSignatureLength signed indices
  const double* avgl;    // 3 DC values
  size_t limit;
  bool sketch;
  bool fast;
  bool filtered;          // only ids in allowed may appear
  const double* allowed;
  size_t allowedCount;
};

struct Ranked {
  double id;
  double score;
};

// Open-addressing (linear probing) map from image id to slot. Buckets hold slot + 1;
// keys are read from the slot-id array, so a bucket costs 4 bytes.
class IdTable {
 public:
  // Sized for expected ids; Reset(0) frees the buckets (the first Insert allocates).
  void Reset(size_t expected);
  // Slot of id, or -1.
  int64_t Find(double id, const double* slotIds) const;
  void Insert(double id, uint32_t slot, const double* slotIds);
  void Erase(double id, const double* slotIds);
  size_t Bytes() const { return buckets_.capacity() * sizeof(uint32_t); }

 private:
  static uint64_t Hash(double id);
  void Grow(const double* slotIds);
  std::vector<uint32_t> buckets_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

// An index with no images holds no arrays (a database space costs sizeof(SignatureIndex)
// until its first image): the kLists list headers, 1.5 MiB, come with the first add and
// go with Clear() or the removal of the last image.
class SignatureIndex {
 public:
  static constexpr uint32_t kLists = kChannels * 2 * kPixels;

  SignatureIndex() = default;
  ~SignatureIndex();
  SignatureIndex(const SignatureIndex&) = delete;
  SignatureIndex& operator=(const SignatureIndex&) = delete;

  // Throws std::invalid_argument for a coefficient outside +-1..16383 or a NaN id.
  void Add(double id, const int32_t* coefs, const double* avgl);
  // Add for each of count images (coefs as stored: int16); checks all of them first,
  // so a bad signature adds none.
  void AddBatch(size_t count, const double* ids, const double* avgl, const int16_t* coefs);
  // Gives back the posting-list slack that AddBatch's faster growth leaves.
  void Trim();
  // Removing the last image frees everything, as Clear() does.
  bool Remove(double id);
  bool Has(double id) const;
  bool Avgl(double id, double* out) const;
  size_t Size() const { return live_; }
  // The live ids, ascending.
  std::vector<double> Ids() const;
  void Clear();
  // Best first (score, then id ascending), at most limit. scores must hold
  // ScoreCapacity() doubles; it is the only buffer proportional to the index size.
  std::vector<Ranked> Query(const QueryArgs& q, double* scores) const;
  size_t ScoreCapacity() const { return slotCapacity_; }
  // Scratch score buffer for callers on the owning thread.
  double* SharedScores();
  size_t MemoryBytes() const;

 private:
  struct List {
    uint32_t* data;
    uint32_t len;
    uint32_t cap;
  };
  static void CheckCoefs(const int32_t* coefs);
  // Add without the argument checks (the caller made them).
  void Insert(double id, const int32_t* coefs, const double* avgl);
  // Remove, keeping the arrays even when it empties the index (Insert replacing an id).
  bool Drop(double id);
  bool Holds() const { return !lists_.empty() || slotCapacity_ != 0; }
  void Append(List& list, uint32_t slot);
  void GrowSlots();
  void Compact();
  void FreeLists();

  std::vector<List> lists_;
  double* slotIds_ = nullptr;
  double* slotAvgl_ = nullptr;
  uint8_t* slotAlive_ = nullptr;
  size_t slotCapacity_ = 0;
  size_t slots_ = 0;
  size_t live_ = 0;
  size_t dead_ = 0;
  size_t postingBytes_ = 0;
  size_t grownSinceTrim_ = 0;
  bool bulk_ = false;
  IdTable table_;
  std::vector<double> scores_;
};

}  // namespace haarseek
