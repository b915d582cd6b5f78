#pragma once
// The plan's series limit (max_series): how many series (device x metric) a tenant may
// have. A point of a series the tenant already has is always taken; a point of a new
// series only while the tenant has fewer than max_series. With --db the known series
// come from Postgres at start and on SIGHUP; ep-ingest adds the ones it admits. Without
// --db (a keys file) the count starts empty at start, so the limit bounds the series a
// tenant creates through this process. Each ingest node counts on its own.
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace ep::ingest {

// Points of a request dropped for the limit: how many, and the first one named.
struct SeriesRefusal {
  size_t count = 0;
  std::string first;
};

class SeriesLimit {
 public:
  struct Known {
    std::string tenant, device, metric;
  };
  // Adds series a tenant has (those admitted since stay known too, loaded or not).
  void seed(const std::vector<Known>& series);

  // One request's checks under one lock (max <= 0: everything is admitted, nothing counted).
  class Check {
   public:
    bool admit(std::string_view device, std::string_view metric);
    std::int64_t max() const { return max_; }

   private:
    friend class SeriesLimit;
    Check(std::unique_lock<std::mutex> lock, std::unordered_set<std::uint64_t>* known, std::int64_t max)
        : lock_(std::move(lock)), known_(known), max_(max) {}
    std::unique_lock<std::mutex> lock_;
    std::unordered_set<std::uint64_t>* known_;
    std::int64_t max_;
  };
  Check check(const std::string& tenant, std::int64_t max);
  size_t count(const std::string& tenant) const;

  // "metric 'm' of device 'd' would be series 1001 of tenant acme: the plan allows 1000 (max_series)"
  static std::string problem(std::string_view device, std::string_view metric, const std::string& tenant,
                             std::int64_t max);

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::unordered_set<std::uint64_t>> known_;
};

}  // namespace ep::ingest
