#include "ep/keys.h"

#include <atomic>
#include <cstdlib>

#include "ep/crypto.h"
#include "ep/fsutil.h"
#include "ep/json.h"
#include "ep/ndjson.h"

namespace ep::keys {
namespace {
std::atomic<std::uint64_t> g_hash_count{0};

bool is_base62(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return false;
  return true;
}
}  // namespace

std::optional<ParsedKey> parse_key(std::string_view key) {
  if (key.size() != 3 + kPrefixLen + 1 + kSecretLen) return std::nullopt;
  if (key.substr(0, 3) != "ep_" || key[3 + kPrefixLen] != '_') return std::nullopt;
  ParsedKey k{key.substr(3, kPrefixLen), key.substr(4 + kPrefixLen)};
  if (!is_base62(k.prefix) || !is_base62(k.secret)) return std::nullopt;
  return k;
}

std::string generate_key() {
  return "ep_" + crypto::random_base62(kPrefixLen) + "_" + crypto::random_base62(kSecretLen);
}

std::string hash_key(std::string_view pepper, std::string_view key) {
  g_hash_count.fetch_add(1, std::memory_order_relaxed);
  return crypto::hex(crypto::hmac_sha256(pepper, key));
}

bool verify_key(std::string_view pepper, std::string_view key, std::string_view stored_hash) {
  // hex(HMAC-SHA256) never is 64 zeros in practice; same length, so the same compare.
  static const std::string kNoKey(64, '0');
  std::string hash = hash_key(pepper, key);
  bool known = !stored_hash.empty();
  return crypto::equal_ct(hash, known ? stored_hash : std::string_view(kNoKey)) && known;
}

std::uint64_t hash_count() { return g_hash_count.load(std::memory_order_relaxed); }

Result<std::string> pepper_from_env(const std::string& configured) {
  if (const char* s = std::getenv("API_KEY_HASH_SALT"); s && *s) return std::string(s);
  if (!configured.empty()) return configured;
  return Status::usage(
      "API_KEY_HASH_SALT is not set (the pepper for API key hashes; set it in the environment "
      "or as api_key_hash_salt in the config file)");
}

Result<std::vector<KeyEntry>> load_keys_file(const std::string& path) {
  auto text = fs::read_file(path);
  if (!text) return text.status();
  std::vector<KeyEntry> out;
  size_t pos = 0;
  std::int64_t line_no = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    if (nl == std::string::npos) nl = text->size();
    std::string_view line(text->data() + pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    auto at = [&](const Status& s) {
      return Status::usage(path + ":" + std::to_string(line_no) + ": " + s.message());
    };
    rapidjson::Document d;
    if (auto s = parse_json(line, d); !s) return at(s);
    if (!d.IsObject()) return at(Status::data("not a JSON object"));
    KeyEntry e;
    auto prefix = get_string(d, "prefix");
    if (!prefix) return at(prefix.status());
    auto hash = get_string(d, "hash");
    if (!hash) return at(hash.status());
    auto tenant = get_string(d, "tenant");
    if (!tenant) return at(tenant.status());
    e.prefix = *prefix;
    e.hash = *hash;
    e.tenant = *tenant;
    if (auto l = opt_string(d, "label")) e.label = *l;
    if (auto c = opt_string(d, "created_at")) e.created_at = parse_rfc3339(*c).value_or(0);
    if (auto r = opt_string(d, "revoked_at")) {
      auto t = parse_rfc3339(*r);
      if (!t) return at(Status::data("revoked_at: not an RFC 3339 timestamp"));
      e.revoked_at = *t;
    }
    if (auto it = d.FindMember("points_per_minute"); it != d.MemberEnd() && it->value.IsInt64())
      e.points_per_minute = it->value.GetInt64();
    if (auto it = d.FindMember("max_series"); it != d.MemberEnd() && it->value.IsInt64())
      e.max_series = it->value.GetInt64();
    if (auto it = d.FindMember("tenant_disabled"); it != d.MemberEnd() && it->value.IsBool())
      e.tenant_disabled = it->value.GetBool();
    out.push_back(std::move(e));
  }
  return out;
}

Status save_keys_file(const std::string& path, const std::vector<KeyEntry>& entries) {
  std::string text;
  for (const auto& e : entries) {
    JsonWriter w;
    w.start_object();
    w.kv("prefix", e.prefix);
    w.kv("hash", e.hash);
    w.kv("tenant", e.tenant);
    w.kv("label", e.label);
    w.kv_time("created_at", e.created_at);
    w.key("revoked_at");
    if (e.revoked_at) w.time(*e.revoked_at);
    else w.null();
    w.kv("points_per_minute", e.points_per_minute);
    if (e.max_series) w.kv("max_series", e.max_series);
    w.kv("tenant_disabled", e.tenant_disabled);
    w.end_object();
    text += w.view();
    text += '\n';
  }
  return fs::write_file_atomic(path, text, false, 0600);
}

}  // namespace ep::keys
