#pragma once
// Idempotency-Key: a retried request with the same key (per tenant) and the same body
// within the window gets the original answer and emits nothing twice.
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "ep/time.h"

namespace ep::ingest {

class IdempotencyCache {
 public:
  IdempotencyCache(TimeNs window, size_t max_entries) : window_(window), max_(max_entries) {}

  enum class Outcome {
    kNew,        // first time: the caller proceeds and later calls complete() or abandon()
    kReplay,     // done before with the same body: answer with batch_id/points
    kInFlight,   // the same key is being processed right now (409)
    kMismatch,   // the key was used with a different body (422)
  };
  struct Lookup {
    Outcome outcome = Outcome::kNew;
    std::string batch_id;
    std::int64_t points = 0;
  };
  Lookup begin(const std::string& tenant, const std::string& key, const std::string& body_sha256,
               TimeNs now);
  void complete(const std::string& tenant, const std::string& key, const std::string& batch_id,
                std::int64_t points, TimeNs now);
  // The request failed: the key may be retried.
  void abandon(const std::string& tenant, const std::string& key);
  size_t size() const;
  size_t capacity() const { return max_; }
  TimeNs window() const { return window_; }

  // At start, before serving, the answers recorded in the archive (batch records that
  // carry an idempotency_key), in any order: restore() each (a key keeps its newest
  // answer; beyond twice capacity() the oldest are dropped), then restored(now) orders
  // them by time and keeps those within the window, at most capacity(). Returns the
  // number of entries.
  void restore(std::string_view tenant, std::string_view key, std::string_view sha256,
               std::string_view batch_id, std::int64_t points, TimeNs at);
  size_t restored(TimeNs now);

 private:
  struct Entry {
    std::string sha256, batch_id;
    std::int64_t points = 0;
    TimeNs at = 0;
    bool done = false;
  };
  void expire(TimeNs now);
  void drop_oldest(size_t keep);
  static std::string id(std::string_view tenant, std::string_view key) {
    std::string k;
    k.reserve(tenant.size() + 1 + key.size());
    k.append(tenant).append(1, '\n').append(key);
    return k;
  }

  TimeNs window_;
  size_t max_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::pair<TimeNs, std::string>> order_;  // insertion order, for expiry
};

}  // namespace ep::ingest
