#include "signature.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

namespace haarseek {
namespace {

// One channel plus scratch, per thread, allocated once.
struct Work {
  double a[kPixels];
  double scratch[kPixels];
};

Work& ThreadWork() {
  thread_local std::unique_ptr<Work> work(new Work);
  return *work;
}

// Rows first, then columns; (a+b) and (a-b)*c at each level, c multiplied by the
// literal 0.7071 per level, the first element finally multiplied by c. The column
// pass runs across all columns at once; each element sees exactly the operations
// of the column-by-column formulation.
void Haar2D(double* a, double* scratch) {
  for (int row = 0; row < kPixels; row += kSide) {
    double* r = a + row;
    double c = 1;
    for (int h = kSide; h > 1; h >>= 1) {
      const int half = h >> 1;
      c *= 0.7071;
      // Sums and differences go to scratch first (no in-place aliasing, so the
      // compiler can vectorise), then back into the row.
      const double* __restrict in = r;
      double* __restrict sums = scratch;
      double* __restrict diffs = scratch + half;
      for (int k = 0; k < half; k++) {
        const double x = in[2 * k], y = in[2 * k + 1];
        diffs[k] = (x - y) * c;
        sums[k] = x + y;
      }
      std::memcpy(r, scratch, sizeof(double) * h);
    }
    r[0] *= c;
  }
  double c = 1;
  for (int h = kSide; h > 1; h >>= 1) {
    const int half = h >> 1;
    c *= 0.7071;
    for (int k = 0; k < half; k++) {
      const double* __restrict x = a + (2 * k) * kSide;
      const double* __restrict y = x + kSide;
      double* __restrict sum = scratch + k * kSide;
      double* __restrict diff = scratch + (half + k) * kSide;
      for (int col = 0; col < kSide; col++) {
        const double xv = x[col], yv = y[col];
        diff[col] = (xv - yv) * c;
        sum[col] = xv + yv;
      }
    }
    std::memcpy(a, scratch, sizeof(double) * h * kSide);
  }
  for (int col = 0; col < kSide; col++) a[col] *= c;
}

// (magnitude, index) a is worse than b: smaller magnitude, or equal and higher index.
inline bool Worse(double ma, int ia, double mb, int ib) { return ma < mb || (ma == mb && ia > ib); }

// The kCoefsPerChannel largest magnitudes among indices 1..kPixels-1, ties to the
// lower index, as signed indices sorted ascending.
void LargestCoefficients(const double* coef, int32_t* out) {
  int idx[kCoefsPerChannel];
  double mag[kCoefsPerChannel];
  int size = 0;
  for (int i = 1; i < kPixels; i++) {
    const double m = std::fabs(coef[i]);
    if (size < kCoefsPerChannel) {
      int pos = size++;
      while (pos > 0) {
        const int parent = (pos - 1) >> 1;
        if (!Worse(m, i, mag[parent], idx[parent])) break;
        mag[pos] = mag[parent];
        idx[pos] = idx[parent];
        pos = parent;
      }
      mag[pos] = m;
      idx[pos] = i;
    } else if (Worse(mag[0], idx[0], m, i)) {
      int pos = 0;
      for (;;) {
        const int l = 2 * pos + 1;
        if (l >= size) break;
        int w = l;
        if (l + 1 < size && Worse(mag[l + 1], idx[l + 1], mag[l], idx[l])) w = l + 1;
        if (!Worse(mag[w], idx[w], m, i)) break;
        mag[pos] = mag[w];
        idx[pos] = idx[w];
        pos = w;
      }
      mag[pos] = m;
      idx[pos] = i;
    }
  }
  for (int k = 0; k < kCoefsPerChannel; k++) out[k] = coef[idx[k]] > 0 ? idx[k] : -idx[k];
  std::sort(out, out + kCoefsPerChannel);
}

}  // namespace

void SignatureFromRgb(const uint8_t* rgb, int32_t* coefs, double* avgl) {
  Work& w = ThreadWork();
  for (int channel = 0; channel < kChannels; channel++) {
    double* a = w.a;
    if (channel == 0) {
      for (int p = 0, o = 0; p < kPixels; p++, o += 3) {
        const double r = rgb[o], g = rgb[o + 1], b = rgb[o + 2];
        a[p] = 0.299 * r + 0.587 * g + 0.114 * b;
      }
    } else if (channel == 1) {
      for (int p = 0, o = 0; p < kPixels; p++, o += 3) {
        const double r = rgb[o], g = rgb[o + 1], b = rgb[o + 2];
        a[p] = 0.596 * r - 0.275 * g - 0.321 * b;
      }
    } else {
      for (int p = 0, o = 0; p < kPixels; p++, o += 3) {
        const double r = rgb[o], g = rgb[o + 1], b = rgb[o + 2];
        a[p] = 0.212 * r - 0.523 * g + 0.311 * b;
      }
    }
    Haar2D(a, w.scratch);
    avgl[channel] = a[0] / (256 * 128);
    LargestCoefficients(a, coefs + channel * kCoefsPerChannel);
  }
}

}  // namespace haarseek
