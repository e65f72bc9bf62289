// The bounded top-k selection shared by the in-memory index and the segment reader:
// best first by (score, then id ascending).
#pragma once
#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "index.h"

namespace haarseek {

// a ranks before b: lower score, then lower id.
inline bool Before(double sa, double ia, double sb, double ib) { return sa < sb || (sa == sb && ia < ib); }

// Keeps the k best entries in a max-heap whose root is the worst kept one.
class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { heap_.reserve(k); }
  bool Full() const { return heap_.size() == k_; }
  double WorstScore() const { return heap_[0].score; }
  bool WouldAccept(double score, double id) const {
    return heap_.size() < k_ || Before(score, id, heap_[0].score, heap_[0].id);
  }
  // Only after WouldAccept.
  void Push(double score, double id) {
    Ranked* h = heap_.data();
    if (heap_.size() < k_) {
      heap_.push_back({id, score});
      h = heap_.data();
      size_t pos = heap_.size() - 1;
      while (pos > 0) {
        const size_t parent = (pos - 1) >> 1;
        if (!Before(h[parent].score, h[parent].id, score, id)) break;
        h[pos] = h[parent];
        pos = parent;
      }
      h[pos] = {id, score};
      return;
    }
    const size_t size = heap_.size();
    size_t pos = 0;
    for (;;) {
      const size_t l = 2 * pos + 1;
      if (l >= size) break;
      size_t m = l;
      if (l + 1 < size && Before(h[l].score, h[l].id, h[l + 1].score, h[l + 1].id)) m = l + 1;
      if (!Before(score, id, h[m].score, h[m].id)) break;
      h[pos] = h[m];
      pos = m;
    }
    h[pos] = {id, score};
  }
  std::vector<Ranked> Sorted() {
    std::sort(heap_.begin(), heap_.end(),
              [](const Ranked& a, const Ranked& b) { return Before(a.score, a.id, b.score, b.id); });
    return std::move(heap_);
  }

 private:
  size_t k_;
  std::vector<Ranked> heap_;
};

}  // namespace haarseek
