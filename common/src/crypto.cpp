#include "ep/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace ep::crypto {

namespace {

// OpenSSL 3 looks an algorithm up by name (locks, a hash table, a string compare) on
// every EVP_sha256()-style call; fetched once, it is not looked up again. These are
// per-thread contexts reused call after call (ingest hashes every request body and key).
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  return md ? md : EVP_sha256();
}

struct DigestCtx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~DigestCtx() { EVP_MD_CTX_free(ctx); }
};

// HMAC-SHA256 keyed once per thread and key: a new key initialises it, the same key
// re-initialises it from the key already set (no key schedule, no fetch).
struct MacCtx {
  EVP_MAC_CTX* ctx = nullptr;
  std::string key;
  bool keyed = false;
  ~MacCtx() { EVP_MAC_CTX_free(ctx); }
  bool init(std::string_view k) {
    if (!ctx) {
      static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
      if (!mac || !(ctx = EVP_MAC_CTX_new(mac))) return false;
    }
    if (keyed && k == key) return EVP_MAC_init(ctx, nullptr, 0, nullptr) == 1;
    char digest[] = "SHA2-256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    keyed = EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(k.data()), k.size(), params) == 1;
    key.assign(k);
    return keyed;
  }
};

}  // namespace

Digest sha256(std::string_view data) {
  thread_local DigestCtx d;
  Digest out;
  unsigned int len = 0;
  if (!d.ctx || EVP_DigestInit_ex2(d.ctx, sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(d.ctx, data.data(), data.size()) != 1 || EVP_DigestFinal_ex(d.ctx, out.data(), &len) != 1)
    std::abort();  // out of memory inside OpenSSL: cannot go on
  return out;
}

std::string sha256_hex(std::string_view data) { return hex(sha256(data)); }

Digest hmac_sha256(std::string_view key, std::string_view data) {
  thread_local MacCtx m;
  Digest out;
  size_t len = 0;
  if (!m.init(key) || EVP_MAC_update(m.ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
      EVP_MAC_final(m.ctx, out.data(), &len, out.size()) != 1)
    std::abort();
  return out;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex2(static_cast<EVP_MD_CTX*>(ctx_), sha256_md(), nullptr);
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
  // Random bits from a per-thread pool refilled 4 KiB at a time: one RAND_bytes per 256
  // ids instead of one each (RAND_bytes takes locks of its own).
  thread_local unsigned char pool[4096];
  thread_local size_t pool_at = sizeof pool;
  if (pool_at + 16 > sizeof pool) {
    random_bytes(pool, sizeof pool);
    pool_at = 0;
  }
  unsigned char b[16];
  std::memcpy(b, pool + pool_at, sizeof b);
  OPENSSL_cleanse(pool + pool_at, sizeof b);
  pool_at += sizeof b;
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
