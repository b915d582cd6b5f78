#pragma once
// Portable, seeded randomness for ep-sim: the same seed gives the same numbers with any
// compiler and standard library. std:: distributions are implementation-defined, and
// libm's sin/log/cos may differ in the last bit between versions, so everything here
// uses only integer arithmetic and IEEE +, -, *, / and floor (exactly rounded).
#include <cmath>
#include <cstdint>

#include "ep/rng.h"

namespace ep::sim {

// The generator and splitmix64 are the common ones (ep/rng.h), shared with the
// Isolation Forest.
using ep::Rng;
using ep::splitmix64;

// Mixes several values into one seed (order matters).
inline std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t s = a ^ (b * 0xD1B54A32D192ED03ull);
  return splitmix64(s);
}

// sin(x) from a Taylor polynomial after exact range reduction: |error| < 1e-9, and the
// same bits everywhere (no libm).
inline double det_sin(double x) {
  constexpr double kPi = 3.14159265358979323846, kTwoPi = 2 * kPi, kHalfPi = kPi / 2;
  x -= std::floor(x / kTwoPi + 0.5) * kTwoPi;  // [-pi, pi]
  if (x > kHalfPi) x = kPi - x;
  else if (x < -kHalfPi) x = -kPi - x;
  const double x2 = x * x;
  return x * (1 + x2 * (-1.0 / 6 + x2 * (1.0 / 120 + x2 * (-1.0 / 5040 + x2 * (1.0 / 362880 +
                x2 * (-1.0 / 39916800 + x2 * (1.0 / 6227020800.0)))))));
}

}  // namespace ep::sim
