#include "auth.h"

#include <cctype>
#include <cmath>
#include <optional>

#include "ep/crypto.h"
#include "ep/records.h"

namespace ep::ingest {

Status KeyStore::load(const std::string& path) {
  auto entries = keys::load_keys_file(path);
  if (!entries) return entries.status();
  set(*entries);
  return Status::ok();
}

void KeyStore::set(const std::vector<keys::KeyEntry>& entries) {
  auto m = std::make_shared<Map>();
  for (const auto& e : entries) (*m)[e.prefix] = e;
  std::lock_guard lock(mu_);
  keys_ = std::move(m);
}

size_t KeyStore::size() const {
  std::lock_guard lock(mu_);
  return keys_->size();
}

namespace {

// "Scheme credentials" with a case-insensitive scheme; the credentials, or nullopt.
std::optional<std::string_view> credentials(std::string_view header, std::string_view scheme) {
  if (header.size() <= scheme.size() || header[scheme.size()] != ' ') return std::nullopt;
  for (size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) return std::nullopt;
  std::string_view c = header.substr(scheme.size() + 1);
  while (!c.empty() && c.front() == ' ') c.remove_prefix(1);
  while (!c.empty() && c.back() == ' ') c.remove_suffix(1);
  return c;
}

}  // namespace

std::string_view presented_key(std::string_view x_api_key, std::string_view authorization,
                               std::string& scratch) {
  if (!x_api_key.empty() || authorization.empty()) return x_api_key;
  if (auto c = credentials(authorization, "bearer")) return *c;
  if (auto c = credentials(authorization, "token")) return *c;
  if (auto c = credentials(authorization, "basic")) {
    auto decoded = crypto::unbase64(*c);
    if (!decoded) return {};
    scratch = std::move(*decoded);
    size_t colon = scratch.find(':');
    return colon == std::string::npos ? std::string_view{} : std::string_view(scratch).substr(colon + 1);
  }
  return {};
}

AuthResult KeyStore::authenticate(std::string_view presented) const {
  AuthResult r;
  if (presented.empty()) {
    r.http_status = 401;
    r.detail = "X-API-Key: required";
    return r;
  }
  auto parsed = keys::parse_key(presented);
  if (!parsed) {
    r.http_status = 401;
    r.detail = "X-API-Key: malformed key";
    return r;
  }
  std::shared_ptr<const Map> keys;
  {
    std::lock_guard lock(mu_);
    keys = keys_;
  }
  auto it = keys->find(std::string(parsed->prefix));
  bool known = it != keys->end();
  // Unknown prefix and wrong secret read the same to the client and cost the same: the
  // key is hashed and compared either way (an empty hash stands for "unknown").
  bool match = keys::verify_key(pepper_, presented, known ? std::string_view(it->second.hash) : "");
  if (!known || !match) {
    r.http_status = 401;
    r.detail = "X-API-Key: unknown key";
    return r;
  }
  const keys::KeyEntry& e = it->second;
  if (e.revoked_at) {
    r.http_status = 403;
    r.detail = "X-API-Key: key revoked";
    return r;
  }
  if (!valid_tenant(e.tenant)) {
    r.http_status = 403;
    r.detail = std::string("tenant: ") + kInvalidTenant + ": \"" + e.tenant + "\"";
    return r;
  }
  if (e.tenant_disabled) {
    r.http_status = 403;
    r.detail = "tenant " + e.tenant + " is disabled";
    return r;
  }
  r.tenant = e.tenant;
  r.points_per_minute = e.points_per_minute;
  r.max_series = e.max_series;
  if (track_) {
    std::lock_guard lock(used_mu_);
    used_.insert(e.prefix);
  }
  return r;
}

std::vector<std::string> KeyStore::take_used() {
  std::lock_guard lock(used_mu_);
  std::vector<std::string> out(used_.begin(), used_.end());
  used_.clear();
  return out;
}

std::int64_t Quota::take(const std::string& tenant, std::int64_t points, std::int64_t ppm,
                         TimeNs now) {
  if (ppm <= 0) return 0;
  std::lock_guard lock(mu_);
  auto [it, fresh] = buckets_.try_emplace(tenant);
  Bucket& b = it->second;
  double rate = static_cast<double>(ppm) / (60.0 * kNsPerSec);  // tokens per ns
  if (fresh || b.ppm != ppm) {
    // New tenant, or its plan changed on reload: start (or cap) at the full allowance.
    b.tokens = fresh ? static_cast<double>(ppm) : std::min(b.tokens, static_cast<double>(ppm));
    b.ppm = ppm;
    b.updated = now;
  }
  if (now > b.updated) {
    b.tokens = std::min(static_cast<double>(ppm), b.tokens + rate * static_cast<double>(now - b.updated));
    b.updated = now;
  }
  if (b.tokens >= static_cast<double>(points)) {
    b.tokens -= static_cast<double>(points);
    return 0;
  }
  if (points > ppm) return 60;  // never fits in one minute; the client must split it
  double wait_ns = (static_cast<double>(points) - b.tokens) / rate;
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait_ns / kNsPerSec)));
}

void Quota::refund(const std::string& tenant, std::int64_t points) {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(tenant);
  if (it == buckets_.end()) return;
  it->second.tokens = std::min(static_cast<double>(it->second.ppm),
                               it->second.tokens + static_cast<double>(points));
}

}  // namespace ep::ingest
