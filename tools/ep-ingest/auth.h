#pragma once
// Authentication against a keys file (docs/architecture.md §5) and the per-tenant points/minute quota.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ep/keys.h"
#include "ep/status.h"
#include "ep/time.h"

namespace ep::ingest {

struct AuthResult {
  unsigned http_status = 0;  // 0 = authenticated, else 401 or 403
  std::string detail;
  std::string tenant;
  std::int64_t points_per_minute = 0;  // the key's plan; 0 = not set
  std::int64_t max_series = 0;         // the key's plan; 0 = unlimited
};

// The API key a request presents: X-API-Key, else the Authorization forms agents send —
// "Bearer KEY", Influx's "Token KEY", and "Basic base64(user:KEY)" (any user name).
// Empty when none. scratch holds the decoded basic credentials.
std::string_view presented_key(std::string_view x_api_key, std::string_view authorization,
                               std::string& scratch);

// The keys of one keys file, swapped whole on reload (SIGHUP) so requests never see a
// half-loaded set. Lookups are by prefix, then a constant-time compare of the HMAC.
class KeyStore {
 public:
  explicit KeyStore(std::string pepper) : pepper_(std::move(pepper)) {}
  // (Re)loads the file. On error the previous keys stay in force.
  Status load(const std::string& path);
  void set(const std::vector<keys::KeyEntry>& entries);
  AuthResult authenticate(std::string_view presented) const;
  size_t size() const;
  // With tracking on, authenticate() remembers the prefixes it accepted; take_used()
  // returns and forgets them (for api_keys.last_used_at, written in bulk).
  void track_usage(bool on) { track_ = on; }
  std::vector<std::string> take_used();

 private:
  using Map = std::unordered_map<std::string, keys::KeyEntry>;
  std::string pepper_;
  mutable std::mutex mu_;
  std::shared_ptr<const Map> keys_ = std::make_shared<Map>();
  bool track_ = false;
  mutable std::mutex used_mu_;
  mutable std::unordered_set<std::string> used_;
};

// Token bucket per tenant: capacity = points/minute, refilled continuously. A request
// takes all its points or none.
class Quota {
 public:
  // ppm <= 0 means unlimited. Returns 0 when taken, else the seconds to wait
  // (Retry-After), at least 1.
  std::int64_t take(const std::string& tenant, std::int64_t points, std::int64_t ppm, TimeNs now);
  // Gives points back (the request failed after taking them).
  void refund(const std::string& tenant, std::int64_t points);

 private:
  struct Bucket {
    double tokens = 0;
    TimeNs updated = 0;
    std::int64_t ppm = 0;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace ep::ingest
