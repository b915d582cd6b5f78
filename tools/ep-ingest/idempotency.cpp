#include "idempotency.h"

#include <algorithm>

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

size_t IdempotencyCache::restore(std::vector<Recorded>& recorded, TimeNs now) {
  // Oldest first, so that order_ stays sorted by time and a later answer for the same
  // key replaces an earlier one.
  std::sort(recorded.begin(), recorded.end(), [](const Recorded& a, const Recorded& b) { return a.at < b.at; });
  std::lock_guard lock(mu_);
  size_t first = recorded.size() > max_ ? recorded.size() - max_ : 0;
  for (size_t i = first; i < recorded.size(); ++i) {
    Recorded& r = recorded[i];
    if (r.at < now - window_) continue;
    std::string k = id(r.tenant, r.key);
    auto [it, fresh] = entries_.try_emplace(k);
    if (!fresh && !(it->second.done && it->second.at <= r.at)) continue;
    it->second = Entry{std::move(r.sha256), std::move(r.batch_id), r.points, r.at, true};
    order_.emplace_back(r.at, std::move(k));
  }
  expire(now);
  return entries_.size();
}

size_t IdempotencyCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace ep::ingest
