#include "idempotency.h"

#include <algorithm>
#include <vector>

namespace ep::ingest {

void IdempotencyCache::expire(TimeNs now) {
  // Every entry has a slot in order_ stamped with its time; a slot whose entry has moved
  // on (completed later, abandoned) is stale and just dropped. In-flight entries are
  // never dropped here: complete() gives them a fresh slot.
  while (!order_.empty() && (order_.front().first < now - window_ || order_.size() > max_)) {
    auto& [t, k] = order_.front();
    auto it = entries_.find(k);
    if (it != entries_.end() && it->second.done && it->second.at == t) entries_.erase(it);
    order_.pop_front();
  }
}

IdempotencyCache::Lookup IdempotencyCache::begin(const std::string& tenant, const std::string& key,
                                                 const std::string& body_sha256, TimeNs now) {
  std::lock_guard lock(mu_);
  expire(now);
  std::string k = id(tenant, key);
  auto it = entries_.find(k);
  if (it != entries_.end() && it->second.done && it->second.at < now - window_) {
    entries_.erase(it);
    it = entries_.end();
  }
  if (it == entries_.end()) {
    entries_.emplace(k, Entry{body_sha256, {}, 0, now, false});
    order_.emplace_back(now, std::move(k));
    return {};
  }
  const Entry& e = it->second;
  if (e.sha256 != body_sha256) return {Outcome::kMismatch, {}, 0};
  if (!e.done) return {Outcome::kInFlight, {}, 0};
  return {Outcome::kReplay, e.batch_id, e.points};
}

void IdempotencyCache::complete(const std::string& tenant, const std::string& key,
                                const std::string& batch_id, std::int64_t points, TimeNs now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id(tenant, key));
  if (it == entries_.end()) return;
  it->second.batch_id = batch_id;
  it->second.points = points;
  it->second.done = true;
  it->second.at = now;
  order_.emplace_back(now, it->first);
  expire(now);
}

void IdempotencyCache::abandon(const std::string& tenant, const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id(tenant, key));
  if (it != entries_.end() && !it->second.done) entries_.erase(it);
}

void IdempotencyCache::restore(std::string_view tenant, std::string_view key, std::string_view sha256,
                               std::string_view batch_id, std::int64_t points, TimeNs at) {
  std::lock_guard lock(mu_);
  if (entries_.empty()) entries_.reserve(std::min<size_t>(max_, size_t{1} << 22));
  auto [it, fresh] = entries_.try_emplace(id(tenant, key));
  if (!fresh && it->second.at > at) return;
  it->second = Entry{std::string(sha256), std::string(batch_id), points, at, true};
  if (entries_.size() > 2 * std::max<size_t>(max_, 1)) drop_oldest(max_);
}

// Under mu_, while restoring (order_ is empty): keeps the newest `keep` entries.
void IdempotencyCache::drop_oldest(size_t keep) {
  if (entries_.size() <= keep) return;
  std::vector<TimeNs> times;
  times.reserve(entries_.size());
  for (const auto& [k, e] : entries_) times.push_back(e.at);
  auto cut = times.begin() + static_cast<std::ptrdiff_t>(times.size() - keep);
  std::nth_element(times.begin(), cut, times.end());
  TimeNs oldest_kept = *cut;
  size_t excess = entries_.size() - keep;
  // Older than the cut first, then (ties) at the cut, until `keep` remain.
  for (bool ties : {false, true})
    for (auto it = entries_.begin(); it != entries_.end() && excess > 0;) {
      bool drop = ties ? it->second.at == oldest_kept : it->second.at < oldest_kept;
      it = drop ? (--excess, entries_.erase(it)) : std::next(it);
    }
}

size_t IdempotencyCache::restored(TimeNs now) {
  std::lock_guard lock(mu_);
  // Every entry gets its slot in order_, oldest first; expire() then applies the window
  // and the capacity as it does while serving.
  std::vector<std::pair<TimeNs, const std::string*>> slots;
  slots.reserve(entries_.size());
  for (const auto& [k, e] : entries_) slots.emplace_back(e.at, &k);
  std::sort(slots.begin(), slots.end(),
            [](const auto& a, const auto& b) { return a.first != b.first ? a.first < b.first : *a.second < *b.second; });
  for (const auto& [at, k] : slots) order_.emplace_back(at, *k);
  expire(now);
  return entries_.size();
}

size_t IdempotencyCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace ep::ingest
