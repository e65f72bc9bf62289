// imgSeek's scoring constants and the list numbering shared by both native indexes.
#pragma once
#include <algorithm>
#include <cstdint>

#include "signature.h"

namespace haarseek {

// imgSeek's weight tables [bin][Y, I, Q], float32 values widened to double.
constexpr float kPhoto[6][3] = {{5.00f, 19.21f, 34.37f}, {0.83f, 1.26f, 0.36f}, {1.01f, 0.44f, 0.45f},
                                {0.52f, 0.53f, 0.14f},   {0.47f, 0.28f, 0.18f}, {0.30f, 0.14f, 0.27f}};
constexpr float kSketch[6][3] = {{4.04f, 15.14f, 22.62f}, {0.78f, 0.92f, 0.40f}, {0.46f, 0.53f, 0.63f},
                                 {0.42f, 0.26f, 0.25f},   {0.41f, 0.14f, 0.15f}, {0.32f, 0.07f, 0.38f}};

inline double Weight(bool sketch, int bin, int channel) {
  return static_cast<double>(sketch ? kSketch[bin][channel] : kPhoto[bin][channel]);
}

inline int BinOf(int index) {
  const int row = index / kSide, col = index % kSide;
  return std::min(std::max(row, col), 5);
}

inline uint32_t ListOf(int channel, int32_t coef) {
  return coef > 0 ? static_cast<uint32_t>(channel * 2 * kPixels + coef)
                  : static_cast<uint32_t>((channel * 2 + 1) * kPixels - coef);
}

}  // namespace haarseek
