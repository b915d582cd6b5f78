#pragma once
// Cryptography through OpenSSL only: hashes, HMAC, CSPRNG, encodings, constant-time compare.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ep::crypto {

using Digest = std::array<unsigned char, 32>;

Digest sha256(std::string_view data);
std::string sha256_hex(std::string_view data);
Digest hmac_sha256(std::string_view key, std::string_view data);

// Incremental SHA-256 for large streams (archive verify).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  Digest finish();

 private:
  void* ctx_;
};

// Cryptographically secure random bytes (OpenSSL RAND_bytes); aborts on failure.
void random_bytes(unsigned char* out, size_t n);
// n characters from [0-9A-Za-z], uniformly (rejection sampling).
std::string random_base62(size_t n);

std::string hex(const unsigned char* data, size_t n);
inline std::string hex(const Digest& d) { return hex(d.data(), d.size()); }
std::optional<std::string> unhex(std::string_view s);
std::string base64(std::string_view data);
inline std::string base64(const Digest& d) {
  return base64(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}
std::optional<std::string> unbase64(std::string_view s);

// Constant-time equality (CRYPTO_memcmp); different lengths compare unequal.
bool equal_ct(std::string_view a, std::string_view b);

// UUIDv7 (RFC 9562): 48-bit Unix ms timestamp, then random bits; monotonic within a
// process (a counter in rand_a when two share a millisecond).
std::string uuid_v7();
std::string uuid_v7_at(std::int64_t unix_ms);

}  // namespace ep::crypto
