// ep-admin key issue|revoke|list, against Postgres (api_keys) or a keys file.
// Only the 8-character prefix and HMAC-SHA256(pepper, key) are ever stored; the key
// itself is printed once, alone, on stdout.
#include <sys/stat.h>

#include <algorithm>

#include "admin.h"
#include "db.h"
#include "ep/keys.h"
#include "ep/pg.h"
#include "ep/records.h"

namespace ep::admin {

namespace {

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Result<std::vector<keys::KeyEntry>> load_or_empty(const std::string& path) {
  if (!file_exists(path)) return std::vector<keys::KeyEntry>{};
  return keys::load_keys_file(path);
}

std::optional<std::string> ts_or_null(std::optional<TimeNs> t) {
  if (!t) return std::nullopt;
  return format_rfc3339(*t);
}

Status normalise_prefix(std::string& prefix) {
  // Accept the whole key or "ep_<prefix>" as well as the bare prefix.
  if (auto k = keys::parse_key(prefix)) prefix = std::string(k->prefix);
  else if (prefix.rfind("ep_", 0) == 0) prefix = prefix.substr(3);
  if (prefix.size() != keys::kPrefixLen)
    return Status::usage("key revoke: '" + prefix + "' is not a key prefix (8 characters, as shown by 'ep-admin key list')");
  return Status::ok();
}

}  // namespace

Status key_issue(const Options& o, Output& out) {
  if (o.tenant.empty()) return Status::usage("key issue: --tenant is required");
  if (!valid_tenant(o.tenant))
    return Status::usage("key issue: --tenant '" + o.tenant + "': " + kInvalidTenant);
  auto pepper = keys::pepper_from_env(o.pepper_configured);
  if (!pepper) return pepper.status().with_context("key issue");
  std::string key = keys::generate_key();
  auto parsed = keys::parse_key(key);
  std::string prefix(parsed->prefix);
  std::string hash = keys::hash_key(*pepper, key);

  if (!o.keys_file.empty()) {
    auto entries = load_or_empty(o.keys_file);
    if (!entries) return entries.status().with_context("key issue");
    keys::KeyEntry e;
    e.prefix = prefix;
    e.hash = hash;
    e.tenant = o.tenant;
    e.label = o.label;
    e.created_at = now_ns();
    e.points_per_minute = o.points_per_minute.value_or(0);
    e.max_series = o.max_series.value_or(0);
    entries->push_back(e);
    EP_RETURN_IF_ERROR(keys::save_keys_file(o.keys_file, *entries).with_context("key issue"));
  } else {
    auto conn = open_db(o, true);
    if (!conn) return conn.status();
    auto id = tenant_id(*conn, o.tenant);
    if (!id) return id.status().with_context("key issue");
    auto dis = conn->exec("SELECT disabled FROM tenants WHERE tenant_id = $1", {*id});
    if (!dis) return dis.status();
    if (dis->get_bool(0, 0))
      return Status::conflict("key issue: tenant '" + o.tenant + "' is disabled (enable it with 'ep-admin tenant enable')");
    EP_RETURN_IF_ERROR(conn->run("INSERT INTO api_keys (tenant_id, prefix, hash, label) VALUES ($1, $2, $3, $4)",
                                 {*id, prefix, hash, o.label}));
  }
  out.out += key + "\n";
  out.notes.push_back("key issue: prefix " + prefix + " for tenant '" + o.tenant + "'" +
                      (o.keys_file.empty() ? "" : " in " + o.keys_file) +
                      "; the key is shown only now");
  return Status::ok();
}

Status key_revoke(const Options& o, Output& out) {
  std::string prefix = o.prefix;
  EP_RETURN_IF_ERROR(normalise_prefix(prefix));
  if (!o.keys_file.empty()) {
    if (!file_exists(o.keys_file)) return Status::not_found("key revoke: " + o.keys_file + ": no such keys file");
    auto entries = keys::load_keys_file(o.keys_file);
    if (!entries) return entries.status().with_context("key revoke");
    auto it = std::find_if(entries->begin(), entries->end(),
                           [&](const keys::KeyEntry& e) { return e.prefix == prefix; });
    if (it == entries->end()) return Status::not_found("key revoke: no key with prefix " + prefix + " in " + o.keys_file);
    if (it->revoked_at)
      return Status::conflict("key revoke: key " + prefix + " was already revoked at " + format_rfc3339(*it->revoked_at));
    it->revoked_at = now_ns();
    EP_RETURN_IF_ERROR(keys::save_keys_file(o.keys_file, *entries).with_context("key revoke"));
    out.notes.push_back("key revoke: " + prefix + " (tenant '" + it->tenant + "') revoked");
    return Status::ok();
  }
  auto conn = open_db(o, true);
  if (!conn) return conn.status();
  auto r = conn->exec(
      "SELECT t.slug, k.revoked_at FROM api_keys k JOIN tenants t USING (tenant_id) WHERE k.prefix = $1",
      {prefix});
  if (!r) return r.status();
  if (r->empty()) return Status::not_found("key revoke: no key with prefix " + prefix);
  if (!r->is_null(0, 1))
    return Status::conflict("key revoke: key " + prefix + " was already revoked at " + format_rfc3339(r->get_ts(0, 1)));
  auto u = conn->exec("UPDATE api_keys SET revoked_at = now() WHERE prefix = $1 AND revoked_at IS NULL RETURNING 1", {prefix});
  if (!u) return u.status();
  if (u->empty()) return Status::conflict("key revoke: key " + prefix + " was revoked concurrently");
  out.notes.push_back("key revoke: " + prefix + " (tenant '" + r->str(0, 0) + "') revoked");
  return Status::ok();
}

Status key_list(const Options& o, Output& out) {
  Table t({"prefix", "tenant", "label", "created_at", "last_used_at", "revoked_at"});
  if (!o.keys_file.empty()) {
    if (!file_exists(o.keys_file)) return Status::not_found("key list: " + o.keys_file + ": no such keys file");
    auto entries = keys::load_keys_file(o.keys_file);
    if (!entries) return entries.status().with_context("key list");
    for (const auto& e : *entries) {
      if (!o.tenant.empty() && e.tenant != o.tenant) continue;
      t.add({e.prefix, e.tenant, e.label, format_rfc3339(e.created_at), std::nullopt, ts_or_null(e.revoked_at)});
    }
  } else {
    auto conn = open_db(o, true);
    if (!conn) return conn.status();
    std::optional<std::string> tid;
    if (!o.tenant.empty()) {
      auto id = tenant_id(*conn, o.tenant);
      if (!id) return id.status().with_context("key list");
      tid = *id;
    }
    auto r = conn->exec(
        "SELECT k.prefix, t.slug, k.label, k.created_at, k.last_used_at, k.revoked_at"
        " FROM api_keys k JOIN tenants t USING (tenant_id)"
        " WHERE $1::uuid IS NULL OR k.tenant_id = $1 ORDER BY t.slug, k.created_at, k.prefix",
        {tid});
    if (!r) return r.status();
    for (int i = 0; i < r->size(); ++i)
      t.add({r->str(i, 0), r->str(i, 1), r->str(i, 2), format_rfc3339(r->get_ts(i, 3)),
             ts_or_null(r->opt_ts(i, 4)), ts_or_null(r->opt_ts(i, 5))});
  }
  out.out += t.render(o.json);
  return Status::ok();
}

}  // namespace ep::admin
