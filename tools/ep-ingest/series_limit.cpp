#include "series_limit.h"

#include <functional>

namespace ep::ingest {
namespace {

// A series by a 64-bit hash of device and metric (a collision would let one new series
// pass as known: about 1 in 10^10 at a million series).
std::uint64_t series_hash(std::string_view device, std::string_view metric) {
  std::uint64_t h = std::hash<std::string_view>{}(device);
  return h ^ (std::hash<std::string_view>{}(metric) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

}  // namespace

void SeriesLimit::seed(const std::vector<Known>& series) {
  std::lock_guard lock(mu_);
  for (const auto& s : series) known_[s.tenant].insert(series_hash(s.device, s.metric));
}

SeriesLimit::Check SeriesLimit::check(const std::string& tenant, std::int64_t max) {
  if (max <= 0) return Check({}, nullptr, 0);
  std::unique_lock lock(mu_);
  auto* known = &known_[tenant];
  return Check(std::move(lock), known, max);
}

bool SeriesLimit::Check::admit(std::string_view device, std::string_view metric) {
  if (!known_) return true;
  std::uint64_t h = series_hash(device, metric);
  if (known_->contains(h)) return true;
  if (static_cast<std::int64_t>(known_->size()) >= max_) return false;
  known_->insert(h);
  return true;
}

size_t SeriesLimit::count(const std::string& tenant) const {
  std::lock_guard lock(mu_);
  auto it = known_.find(tenant);
  return it == known_.end() ? 0 : it->second.size();
}

std::string SeriesLimit::problem(std::string_view device, std::string_view metric, const std::string& tenant,
                                 std::int64_t max) {
  return "metric '" + std::string(metric) + "' of device '" + std::string(device) + "' would be a new series: tenant " +
         tenant + " has the " + std::to_string(max) + " series its plan allows (max_series)";
}

}  // namespace ep::ingest
