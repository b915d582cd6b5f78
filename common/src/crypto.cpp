#include "ep/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <chrono>
#include <cstdlib>
#include <mutex>

namespace ep::crypto {

Digest sha256(std::string_view data) {
  Digest d;
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha256(), nullptr);
  return d;
}

std::string sha256_hex(std::string_view data) { return hex(sha256(data)); }

Digest hmac_sha256(std::string_view key, std::string_view data) {
  Digest d;
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data(), &len);
  return d;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}
Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256::update(std::string_view data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}
Digest Sha256::finish() {
  Digest d;
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), d.data(), &len);
  return d;
}

void random_bytes(unsigned char* out, size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) std::abort();  // no entropy: cannot go on
}

std::string random_base62(size_t n) {
  static constexpr char kAlphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string out;
  out.reserve(n);
  unsigned char buf[64];
  while (out.size() < n) {
    random_bytes(buf, sizeof buf);
    for (unsigned char b : buf) {
      if (b >= 248) continue;  // 248 = 4 * 62: reject to stay uniform
      out.push_back(kAlphabet[b % 62]);
      if (out.size() == n) break;
    }
  }
  return out;
}

std::string hex(const unsigned char* data, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kHex[data[i] >> 4];
    s[2 * i + 1] = kHex[data[i] & 15];
  }
  return s;
}

std::optional<std::string> unhex(std::string_view s) {
  if (s.size() % 2) return std::nullopt;
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(s.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int h = val(s[2 * i]), l = val(s[2 * i + 1]);
    if (h < 0 || l < 0) return std::nullopt;
    out[i] = static_cast<char>(h << 4 | l);
  }
  return out;
}

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> unbase64(std::string_view s) {
  if (s.size() % 4) return std::nullopt;
  std::string out(s.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()),
                          static_cast<int>(s.size()));
  if (n < 0) return std::nullopt;
  size_t pad = 0;
  if (!s.empty() && s.back() == '=') ++pad;
  if (s.size() > 1 && s[s.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

bool equal_ct(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string uuid_v7_at(std::int64_t unix_ms) {
  // Monotonic within the process: if the clock has not moved, bump a 12-bit counter
  // kept in rand_a; if that overflows, borrow the next millisecond.
  static std::mutex mu;
  static std::int64_t last_ms = 0;
  static unsigned counter = 0;
  unsigned char b[16];
  random_bytes(b, sizeof b);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (unix_ms <= last_ms) {
      unix_ms = last_ms;
      if (++counter > 0xfff) {
        ++unix_ms;
        counter = 0;
      }
    } else {
      counter = (b[6] & 0x07) << 8 | b[7];  // random start leaves room to count up
    }
    last_ms = unix_ms;
    b[6] = static_cast<unsigned char>(0x70 | ((counter >> 8) & 0x0f));
    b[7] = static_cast<unsigned char>(counter & 0xff);
  }
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(unix_ms >> (8 * (5 - i)));
  b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3f));
  std::string h = hex(b, 16);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

std::string uuid_v7() {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  return uuid_v7_at(ms);
}

}  // namespace ep::crypto
