// imgSeek's signature (calcHaar) from 128x128 RGB: the same float64 operations in the
// same order as src/signature/haar.ts, so both engines pick the same 40 coefficients.
#pragma once
#include <cstdint>

namespace haarseek {

constexpr int kSide = 128;
constexpr int kPixels = kSide * kSide;
constexpr int kCoefsPerChannel = 40;
constexpr int kChannels = 3;
constexpr int kSignatureLength = kCoefsPerChannel * kChannels;

// rgb: kPixels * 3 bytes, R,G,B interleaved. coefs: kSignatureLength signed indices
// (Y, I, Q lists, each sorted ascending). avgl: the three DC values.
void SignatureFromRgb(const uint8_t* rgb, int32_t* coefs, double* avgl);

}  // namespace haarseek
