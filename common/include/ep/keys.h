#pragma once
// API keys (docs/architecture.md §5): "ep_<8-char prefix>_<32-char secret>", base62 from OpenSSL's
// CSPRNG. Only the prefix and HMAC-SHA256(pepper, key) are ever stored.
//
// Keys file (DB-less use), one JSON object per line, rewritten atomically:
//   {"prefix":"AbCd1234","hash":"<hex hmac>","tenant":"acme","label":"",
//    "created_at":"…","revoked_at":null,"plan":{"points_per_minute":60000}}
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ep/status.h"
#include "ep/time.h"

namespace ep::keys {

inline constexpr size_t kPrefixLen = 8;
inline constexpr size_t kSecretLen = 32;

struct ParsedKey {
  std::string_view prefix;
  std::string_view secret;
};

// Splits a presented key; nullopt if it does not have the shape above.
std::optional<ParsedKey> parse_key(std::string_view key);
// A new random key.
std::string generate_key();
// hex(HMAC-SHA256(pepper, key)).
std::string hash_key(std::string_view pepper, std::string_view key);
// Constant-time check of a presented key against the hash stored for its prefix. An
// empty stored_hash means the prefix is unknown: the key is still hashed and compared
// (against a hash no key has), so an unknown prefix costs what a wrong secret costs and
// the answer time does not tell whether a prefix exists.
bool verify_key(std::string_view pepper, std::string_view key, std::string_view stored_hash);
// How many times hash_key has run in this process (tests check that every path of a
// key check does the same work).
std::uint64_t hash_count();

// The pepper: $API_KEY_HASH_SALT, else `configured` (from config), else an error.
Result<std::string> pepper_from_env(const std::string& configured = {});

struct KeyEntry {
  std::string prefix, hash, tenant, label;
  TimeNs created_at = 0;
  std::optional<TimeNs> revoked_at;
  std::int64_t points_per_minute = 0;  // 0 = unlimited
  std::int64_t max_series = 0;         // series (device x metric) of the tenant; 0 = unlimited
  bool tenant_disabled = false;
};

// Loads a keys file; errors name the file and line.
Result<std::vector<KeyEntry>> load_keys_file(const std::string& path);
// Atomic rewrite: temp file, fsync, rename, fsync dir. Mode 0600.
Status save_keys_file(const std::string& path, const std::vector<KeyEntry>& entries);

}  // namespace ep::keys
