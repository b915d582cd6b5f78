#pragma once
// Portable, seeded randomness for ep-sim: the same seed gives the same numbers with any
// compiler and standard library. std:: distributions are implementation-defined, and
// libm's sin/log/cos may differ in the last bit between versions, so everything here
// uses only integer arithmetic and IEEE +, -, *, / and floor (exactly rounded).
#include <cmath>
#include <cstdint>

namespace ep::sim {

// SplitMix64 (Steele, Lea, Flood 2014): seeds and hashes.
inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Mixes several values into one seed (order matters).
inline std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t s = a ^ (b * 0xD1B54A32D192ED03ull);
  return splitmix64(s);
}

// xoshiro256** 1.0 (Blackman, Vigna 2018).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& w : s_) w = splitmix64(seed);
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [lo, hi] (hi - lo < 2^32; the bias of the multiply-shift is < 2^-32).
  std::int64_t between(std::int64_t lo, std::int64_t hi) {
    std::uint64_t span = static_cast<std::uint64_t>(hi - lo) + 1;
    return lo + static_cast<std::int64_t>(((next() >> 32) * span) >> 32);
  }
  // Approximately standard normal: Irwin–Hall sum of 12 uniforms minus 6 (mean 0,
  // variance 1, tails cut at ±6σ — plenty for sensor noise, and libm-free).
  double normal() {
    double s = 0;
    for (int i = 0; i < 12; ++i) s += uniform();
    return s - 6.0;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

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
