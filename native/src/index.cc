#include "index.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "top_k.h"
#include "weights.h"

namespace haarseek {
namespace {

// Tombstoned slots tolerated before compaction: a quarter of the live ones, at least this.
constexpr size_t kMinDeadBeforeCompact = 1024;
constexpr size_t kInitialSlots = 1024;
// Growing lists by realloc leaves freed blocks inside the heap; after this much growth
// their free pages are handed back to the system (saves about 25 MB of RSS per
// million images; a trim of a 500 MB heap takes about 2 ms).
constexpr size_t kTrimAfterBytes = size_t{256} << 20;

void ReleaseFreedHeapPages() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

template <typename T>
T* Reallocate(T* p, size_t count) {
  void* q = std::realloc(p, count * sizeof(T));
  if (q == nullptr && count != 0) throw std::bad_alloc();
  return static_cast<T*>(q);
}

}  // namespace

// ---- IdTable ----

uint64_t IdTable::Hash(double id) {
  id += 0.0;  // -0 -> +0
  uint64_t b;
  std::memcpy(&b, &id, sizeof b);
  b ^= b >> 33;
  b *= 0xff51afd7ed558ccdULL;
  b ^= b >> 33;
  b *= 0xc4ceb9fe1a85ec53ULL;
  b ^= b >> 33;
  return b;
}

void IdTable::Reset(size_t expected) {
  if (expected == 0) {
    std::vector<uint32_t>().swap(buckets_);
    mask_ = 0;
    count_ = 0;
    return;
  }
  size_t cap = 16;
  while (cap < expected * 2) cap <<= 1;
  std::vector<uint32_t>(cap, 0).swap(buckets_);
  mask_ = cap - 1;
  count_ = 0;
}

int64_t IdTable::Find(double id, const double* slotIds) const {
  if (buckets_.empty()) return -1;
  for (size_t i = Hash(id) & mask_;; i = (i + 1) & mask_) {
    const uint32_t b = buckets_[i];
    if (b == 0) return -1;
    if (slotIds[b - 1] == id) return b - 1;
  }
}

void IdTable::Insert(double id, uint32_t slot, const double* slotIds) {
  if ((count_ + 1) * 2 > buckets_.size()) Grow(slotIds);
  size_t i = Hash(id) & mask_;
  while (buckets_[i] != 0) i = (i + 1) & mask_;
  buckets_[i] = slot + 1;
  count_++;
}

void IdTable::Grow(const double* slotIds) {
  std::vector<uint32_t> old;
  old.swap(buckets_);
  const size_t cap = old.empty() ? 16 : old.size() * 2;
  buckets_.assign(cap, 0);
  mask_ = cap - 1;
  for (uint32_t b : old) {
    if (b == 0) continue;
    size_t i = Hash(slotIds[b - 1]) & mask_;
    while (buckets_[i] != 0) i = (i + 1) & mask_;
    buckets_[i] = b;
  }
}

void IdTable::Erase(double id, const double* slotIds) {
  if (buckets_.empty()) return;
  size_t i = Hash(id) & mask_;
  for (;; i = (i + 1) & mask_) {
    const uint32_t b = buckets_[i];
    if (b == 0) return;
    if (slotIds[b - 1] == id) break;
  }
  // Backward-shift deletion keeps every probe chain unbroken without tombstones.
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask_;
    const uint32_t b = buckets_[j];
    if (b == 0) break;
    const size_t home = Hash(slotIds[b - 1]) & mask_;
    const bool movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
    if (movable) {
      buckets_[i] = b;
      i = j;
    }
  }
  buckets_[i] = 0;
  count_--;
}

// ---- SignatureIndex ----

SignatureIndex::~SignatureIndex() {
  const bool held = Holds();
  FreeLists();
  std::free(slotIds_);
  std::free(slotAvgl_);
  std::free(slotAlive_);
  if (held) ReleaseFreedHeapPages();
}

void SignatureIndex::FreeLists() {
  for (List& l : lists_) std::free(l.data);
  std::vector<List>().swap(lists_);
  postingBytes_ = 0;
}

void SignatureIndex::CheckCoefs(const int32_t* coefs) {
  for (int k = 0; k < kSignatureLength; k++) {
    const int32_t c = coefs[k];
    if (c == 0 || c >= kPixels || c <= -kPixels) {
      throw std::invalid_argument("signature coefficient out of range (must be +-1..16383)");
    }
  }
}

void SignatureIndex::Append(List& list, uint32_t slot) {
  if (list.len == list.cap) {
    // While bulk loading, doubling (Trim gives the slack back at the end); otherwise
    // doubling while small, then +1/16: little slack on the long lists that hold most
    // postings. realloc of a large block is usually an in-place remap.
    const uint32_t cap = bulk_ || list.cap < 1024 ? std::max<uint32_t>(4, list.cap * 2) : list.cap + list.cap / 16;
    list.data = Reallocate(list.data, cap);
    postingBytes_ += static_cast<size_t>(cap - list.cap) * sizeof(uint32_t);
    list.cap = cap;
    grownSinceTrim_ += static_cast<size_t>(cap) * sizeof(uint32_t);
    if (grownSinceTrim_ > kTrimAfterBytes) {
      ReleaseFreedHeapPages();
      grownSinceTrim_ = 0;
    }
  }
  list.data[list.len++] = slot;
}

void SignatureIndex::GrowSlots() {
  const size_t cap = slotCapacity_ == 0 ? kInitialSlots : slotCapacity_ * 2;
  if (cap > 0xffffffffULL) throw std::length_error("index full (2^32 slots)");
  slotIds_ = Reallocate(slotIds_, cap);
  slotAvgl_ = Reallocate(slotAvgl_, cap * kChannels);
  slotAlive_ = Reallocate(slotAlive_, cap);
  slotCapacity_ = cap;
}

void SignatureIndex::Add(double id, const int32_t* coefs, const double* avgl) {
  if (std::isnan(id)) throw std::invalid_argument("image id is NaN");
  CheckCoefs(coefs);
  Insert(id, coefs, avgl);
}

void SignatureIndex::Insert(double id, const int32_t* coefs, const double* avgl) {
  id += 0.0;
  if (table_.Find(id, slotIds_) >= 0) Drop(id);
  if (lists_.empty()) std::vector<List>(kLists, List{nullptr, 0, 0}).swap(lists_);
  if (slots_ == slotCapacity_) GrowSlots();
  const uint32_t slot = static_cast<uint32_t>(slots_++);
  slotIds_[slot] = id;
  slotAlive_[slot] = 1;
  for (int c = 0; c < kChannels; c++) slotAvgl_[slot * kChannels + c] = avgl[c];
  table_.Insert(id, slot, slotIds_);
  live_++;
  for (int c = 0; c < kChannels; c++) {
    for (int k = 0; k < kCoefsPerChannel; k++) Append(lists_[ListOf(c, coefs[c * kCoefsPerChannel + k])], slot);
  }
}

void SignatureIndex::AddBatch(size_t count, const double* ids, const double* avgl, const int16_t* coefs) {
  int32_t wide[kSignatureLength];
  for (size_t i = 0; i < count; i++) {
    if (std::isnan(ids[i])) throw std::invalid_argument("image id is NaN");
    std::copy(coefs + i * kSignatureLength, coefs + (i + 1) * kSignatureLength, wide);
    CheckCoefs(wide);
  }
  bulk_ = true;
  try {
    for (size_t i = 0; i < count; i++) {
      std::copy(coefs + i * kSignatureLength, coefs + (i + 1) * kSignatureLength, wide);
      Insert(ids[i], wide, avgl + i * kChannels);
    }
  } catch (...) {
    bulk_ = false;
    throw;
  }
  bulk_ = false;
}

void SignatureIndex::Trim() {
  for (List& list : lists_) {
    if (list.cap == list.len) continue;
    if (list.len == 0) {
      std::free(list.data);
      list.data = nullptr;
    } else {
      // Shrinking is done in place (no copy): the tail goes back to the allocator.
      list.data = Reallocate(list.data, list.len);
    }
    postingBytes_ -= static_cast<size_t>(list.cap - list.len) * sizeof(uint32_t);
    list.cap = list.len;
  }
  ReleaseFreedHeapPages();
  grownSinceTrim_ = 0;
}

bool SignatureIndex::Remove(double id) {
  if (!Drop(id)) return false;
  if (live_ == 0) Clear();
  return true;
}

bool SignatureIndex::Drop(double id) {
  const int64_t slot = table_.Find(id + 0.0, slotIds_);
  if (slot < 0) return false;
  table_.Erase(id + 0.0, slotIds_);
  slotAlive_[slot] = 0;
  live_--;
  dead_++;
  if (dead_ > std::max(kMinDeadBeforeCompact, live_ >> 2)) Compact();
  return true;
}

bool SignatureIndex::Has(double id) const { return table_.Find(id + 0.0, slotIds_) >= 0; }

bool SignatureIndex::Avgl(double id, double* out) const {
  const int64_t slot = table_.Find(id + 0.0, slotIds_);
  if (slot < 0) return false;
  for (int c = 0; c < kChannels; c++) out[c] = slotAvgl_[slot * kChannels + c];
  return true;
}

std::vector<double> SignatureIndex::Ids() const {
  std::vector<double> ids;
  ids.reserve(live_);
  for (size_t s = 0; s < slots_; s++)
    if (slotAlive_[s]) ids.push_back(slotIds_[s]);
  std::sort(ids.begin(), ids.end());
  return ids;
}

void SignatureIndex::Clear() {
  const bool held = Holds();
  FreeLists();
  std::free(slotIds_);
  std::free(slotAvgl_);
  std::free(slotAlive_);
  slotIds_ = nullptr;
  slotAvgl_ = nullptr;
  slotAlive_ = nullptr;
  slotCapacity_ = slots_ = live_ = dead_ = 0;
  table_.Reset(0);
  std::vector<double>().swap(scores_);
  if (held) ReleaseFreedHeapPages();
  grownSinceTrim_ = 0;
}

// Drops tombstoned slots: renumbers live slots densely (keeping their order, so every
// list stays sorted by slot) and rewrites every list.
void SignatureIndex::Compact() {
  std::vector<uint32_t> remap(slots_);
  constexpr uint32_t kGone = 0xffffffffu;
  size_t next = 0;
  for (size_t s = 0; s < slots_; s++) {
    if (!slotAlive_[s]) {
      remap[s] = kGone;
      continue;
    }
    remap[s] = static_cast<uint32_t>(next);
    slotIds_[next] = slotIds_[s];
    for (int c = 0; c < kChannels; c++) slotAvgl_[next * kChannels + c] = slotAvgl_[s * kChannels + c];
    slotAlive_[next] = 1;
    next++;
  }
  for (List& l : lists_) {
    uint32_t kept = 0;
    for (uint32_t p = 0; p < l.len; p++) {
      const uint32_t moved = remap[l.data[p]];
      if (moved != kGone) l.data[kept++] = moved;
    }
    l.len = kept;
    if (kept == 0) {
      std::free(l.data);
      postingBytes_ -= static_cast<size_t>(l.cap) * sizeof(uint32_t);
      l = List{nullptr, 0, 0};
    } else if (l.cap > kept + kept / 4 + 16) {
      l.data = Reallocate(l.data, kept);
      postingBytes_ -= static_cast<size_t>(l.cap - kept) * sizeof(uint32_t);
      l.cap = kept;
    }
  }
  slots_ = next;
  dead_ = 0;
  table_.Reset(live_);
  for (size_t s = 0; s < slots_; s++) table_.Insert(slotIds_[s], static_cast<uint32_t>(s), slotIds_);
  ReleaseFreedHeapPages();
  grownSinceTrim_ = 0;
}

double* SignatureIndex::SharedScores() {
  if (scores_.size() < slotCapacity_) {
    std::vector<double>().swap(scores_);
    scores_.resize(slotCapacity_);
  }
  return scores_.data();
}

std::vector<Ranked> SignatureIndex::Query(const QueryArgs& q, double* scores) const {
  if (q.limit == 0 || live_ == 0) return {};
  if (!q.fast) CheckCoefs(q.coefs);
  const size_t n = slots_;
  const bool sketch = q.sketch;
  const double q0 = q.avgl[0], q1 = q.avgl[1], q2 = q.avgl[2];
  const double w0 = Weight(sketch, 0, 0), w1 = Weight(sketch, 0, 1), w2 = Weight(sketch, 0, 2);
  const double* avgl = slotAvgl_;
  for (size_t s = 0; s < n; s++, avgl += 3) {
    scores[s] = w0 * std::fabs(avgl[0] - q0) + w1 * std::fabs(avgl[1] - q1) + w2 * std::fabs(avgl[2] - q2);
  }
  if (!q.fast) {
    for (int c = 0; c < kChannels; c++) {
      for (int k = 0; k < kCoefsPerChannel; k++) {
        const int32_t coef = q.coefs[c * kCoefsPerChannel + k];
        const List& list = lists_[ListOf(c, coef)];
        const double w = Weight(sketch, BinOf(coef < 0 ? -coef : coef), c);
        const uint32_t* p = list.data;
        const uint32_t* end = p + list.len;
        for (; p + 4 <= end; p += 4) {
          scores[p[0]] -= w;
          scores[p[1]] -= w;
          scores[p[2]] -= w;
          scores[p[3]] -= w;
        }
        for (; p < end; p++) scores[*p] -= w;
      }
    }
  }
  const double* ids = slotIds_;
  const uint8_t* alive = slotAlive_;
  if (q.filtered) {
    std::vector<uint32_t> chosen;
    chosen.reserve(std::min(q.allowedCount, live_));
    for (size_t i = 0; i < q.allowedCount; i++) {
      const int64_t slot = table_.Find(q.allowed[i] + 0.0, slotIds_);
      if (slot >= 0) chosen.push_back(static_cast<uint32_t>(slot));
    }
    std::sort(chosen.begin(), chosen.end());
    chosen.erase(std::unique(chosen.begin(), chosen.end()), chosen.end());
    TopK top(std::min(q.limit, chosen.size()));
    if (chosen.empty()) return {};
    for (uint32_t s : chosen)
      if (top.WouldAccept(scores[s], ids[s])) top.Push(scores[s], ids[s]);
    return top.Sorted();
  }
  TopK top(std::min(q.limit, live_));
  size_t s = 0;
  for (; s < n && !top.Full(); s++)
    if (alive[s]) top.Push(scores[s], ids[s]);
  double worst = top.Full() ? top.WorstScore() : 0;
  for (; s < n; s++) {
    const double score = scores[s];
    if (score > worst || !alive[s] || !top.WouldAccept(score, ids[s])) continue;
    top.Push(score, ids[s]);
    worst = top.WorstScore();
  }
  return top.Sorted();
}

size_t SignatureIndex::MemoryBytes() const {
  return sizeof(SignatureIndex) + lists_.capacity() * sizeof(List) + postingBytes_ +
         slotCapacity_ * (sizeof(double) * (1 + kChannels) + 1) + scores_.capacity() * sizeof(double) + table_.Bytes();
}

}  // namespace haarseek
