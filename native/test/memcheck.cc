// Exercises the native hot path (signatures, add / replace / remove / compaction /
// query / clear / batch load and trim, empty indexes) for scripts/check-native-memory.sh to run under valgrind.
#include <cstdio>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "../src/index.h"
#include "../src/signature.h"

using namespace haarseek;

int main() {
  std::mt19937_64 rng(7);
  std::vector<std::vector<int32_t>> coefs;
  std::vector<std::vector<double>> avgls;
  std::vector<uint8_t> rgb(kPixels * 3);
  for (int i = 0; i < 64; i++) {
    for (auto& b : rgb) b = static_cast<uint8_t>(i % 4 == 0 ? rng() : (i * 37 + (&b - rgb.data()) / 300) & 0xff);
    std::vector<int32_t> c(kSignatureLength);
    std::vector<double> a(kChannels);
    SignatureFromRgb(rgb.data(), c.data(), a.data());
    coefs.push_back(c);
    avgls.push_back(a);
  }
  double checksum = 0;
  {
    // Empty indexes hold nothing until their first add, and go back to nothing when
    // cleared or emptied by removals.
    std::vector<SignatureIndex> empties(50);
    QueryArgs any{coefs[0].data(), avgls[0].data(), 10, false, false, false, nullptr, 0};
    for (SignatureIndex& e : empties) {
      checksum += static_cast<double>(e.Query(any, e.SharedScores()).size() + e.Ids().size() + e.MemoryBytes() % 7);
      e.Trim();
      e.Remove(1);
      e.AddBatch(0, nullptr, nullptr, nullptr);
    }
    empties[0].Add(1, coefs[0].data(), avgls[0].data());
    empties[0].Add(1, coefs[1].data(), avgls[1].data());
    checksum += static_cast<double>(empties[0].Query(any, empties[0].SharedScores()).size());
    empties[0].Remove(1);
    empties[1].Add(2, coefs[2].data(), avgls[2].data());
    empties[2].Add(3, coefs[3].data(), avgls[3].data());
    empties[2].Clear();
    empties[2].Add(3, coefs[3].data(), avgls[3].data());
  }
  {
    SignatureIndex index;
    std::vector<double> scores;
    for (int step = 0; step < 40000; step++) {
      const double id = 1 + static_cast<double>(rng() % 5000);
      const size_t s = rng() % coefs.size();
      if (rng() % 100 < 55) {
        index.Add(id, coefs[s].data(), avgls[s].data());
      } else {
        index.Remove(id);
      }
      if (step % 997 == 0) {
        std::vector<double> allowed;
        for (int k = 0; k < 50; k++) allowed.push_back(1 + static_cast<double>(rng() % 5000));
        for (int mode = 0; mode < 4; mode++) {
          QueryArgs q{coefs[s].data(), avgls[s].data(), mode == 3 ? index.Size() + 5 : 10, mode == 1, mode == 2,
                      mode == 3, allowed.data(), allowed.size()};
          for (const Ranked& r : index.Query(q, index.SharedScores())) checksum += r.score + r.id;
        }
        checksum += static_cast<double>(index.Ids().size() + index.MemoryBytes() % 7);
      }
    }
    double out[3];
    if (index.Avgl(1, out)) checksum += out[0];
    index.Clear();
    for (int i = 0; i < 3000; i++) index.Add(9007199254740992.0 - i, coefs[i % coefs.size()].data(), avgls[i % coefs.size()].data());
    QueryArgs q{coefs[0].data(), avgls[0].data(), 20, false, false, false, nullptr, 0};
    for (const Ranked& r : index.Query(q, index.SharedScores())) checksum += r.score;
    // A full load: batches of stored (int16) signatures, ids repeating, then Trim, then
    // more single adds and removes on the trimmed lists.
    index.Clear();
    const size_t batch = 500;
    std::vector<double> ids(batch), flatAvgl(batch * kChannels);
    std::vector<int16_t> packed(batch * kSignatureLength);
    for (int round = 0; round < 4; round++) {
      for (size_t i = 0; i < batch; i++) {
        const size_t s = rng() % coefs.size();
        ids[i] = 1 + static_cast<double>(rng() % 1500);
        for (int c = 0; c < kChannels; c++) flatAvgl[i * kChannels + c] = avgls[s][c];
        for (int k = 0; k < kSignatureLength; k++) packed[i * kSignatureLength + k] = static_cast<int16_t>(coefs[s][k]);
      }
      index.AddBatch(batch, ids.data(), flatAvgl.data(), packed.data());
    }
    index.Trim();
    for (int i = 0; i < 2000; i++) {
      const double id = 1 + static_cast<double>(rng() % 1500);
      if (i % 3 == 0) index.Remove(id);
      else index.Add(id, coefs[i % coefs.size()].data(), avgls[i % coefs.size()].data());
    }
    for (const Ranked& r : index.Query(q, index.SharedScores())) checksum += r.score;
    packed[7] = 0;
    try {
      index.AddBatch(batch, ids.data(), flatAvgl.data(), packed.data());
      return 2;
    } catch (const std::invalid_argument&) {
    }
    std::vector<int32_t> bad(kSignatureLength, 16384);
    try {
      index.Add(1, bad.data(), avgls[0].data());
      return 2;
    } catch (const std::invalid_argument&) {
    }
  }
  std::printf("memcheck workload done (checksum %.6f)\n", checksum);
  return 0;
}
