#pragma once
// Portable, seeded randomness: the same seed gives the same numbers with any compiler,
// standard library and platform with IEEE doubles. std:: distributions are
// implementation-defined, so nothing here uses them; only integer arithmetic and exactly
// rounded IEEE operations. Used by the Isolation Forest (ep-train) and ep-sim, whose
// outputs are reproducible per seed.
#include <bit>
#include <cstdint>

namespace ep {

// SplitMix64 (Steele, Lea, Flood 2014): advances `state` and returns a mixed value.
// Seeds Rng and derives seeds from other values.
inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// xoshiro256** 1.0 (Blackman, Vigna 2018), its four words seeded by splitmix64(seed).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& w : s_) w = splitmix64(seed);
  }

  std::uint64_t next() {
    const std::uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = std::rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) from the top 53 bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  // Uniform integer in [0, n), n > 0, without modulo bias (the top partial bucket is
  // rejected, so every residue is equally likely).
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    std::uint64_t v;
    do v = next();
    while (v >= limit);
    return v % n;
  }

  // Uniform integer in [lo, hi] by one multiply-shift of 32 random bits: cheap, with a
  // bias below 2^-32 (hi - lo < 2^32). below() is the unbiased choice.
  std::int64_t between(std::int64_t lo, std::int64_t hi) {
    std::uint64_t span = static_cast<std::uint64_t>(hi - lo) + 1;
    return lo + static_cast<std::int64_t>(((next() >> 32) * span) >> 32);
  }

  // Approximately standard normal: Irwin-Hall sum of 12 uniforms minus 6 (mean 0,
  // variance 1, tails cut at +-6 sigma; libm-free, so the same bits everywhere).
  double normal() {
    double s = 0;
    for (int i = 0; i < 12; ++i) s += uniform();
    return s - 6.0;
  }

 private:
  std::uint64_t s_[4];
};

}  // namespace ep
