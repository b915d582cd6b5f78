#pragma once
// Counters and histograms for GET /metrics (Prometheus text exposition format 0.0.4).
// Lock-free: every field is an atomic updated on the request path.
#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "ep/archive.h"
#include "ep/http_server.h"
#include "ep/time.h"

namespace ep::ingest {

class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  void observe(TimeNs d);
  // Appends the _bucket, _sum and _count lines for `name`.
  void render(std::string& out, std::string_view name, std::string_view help) const;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::int64_t> sum_ns_{0};
};

enum class Reason {
  kInvalidJson, kInvalidPayload, kTooLarge, kUnauthorized, kForbidden, kUnsupportedMediaType,
  kQuota, kIdempotencyConflict, kArchive, kUnsupportedEncoding, kCount
};
const char* reason_name(Reason r);

class Metrics {
 public:
  void request(unsigned status, TimeNs duration);
  void reject(Reason r) { rejects_[static_cast<size_t>(r)]++; }
  void accepted(std::int64_t points) {
    batches_++;
    points_ += static_cast<std::uint64_t>(points);
  }
  void replayed() { replays_++; }
  void commit(size_t group, TimeNs duration) {
    commits_++;
    committed_batches_ += group;
    commit_latency_.observe(duration);
  }
  // archive: the archive's figures, null without one.
  std::string render(const http::ServerStats& server, const ArchiveStats* archive, TimeNs now) const;

 private:
  std::array<std::atomic<std::uint64_t>, 600> by_status_{};
  std::array<std::atomic<std::uint64_t>, static_cast<size_t>(Reason::kCount)> rejects_{};
  std::atomic<std::uint64_t> batches_{0}, points_{0}, replays_{0}, commits_{0}, committed_batches_{0};
  Histogram latency_, commit_latency_;
};

}  // namespace ep::ingest
