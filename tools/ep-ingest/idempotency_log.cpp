#include "idempotency_log.h"

#include <rapidjson/document.h>

#include <string.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "ep/json.h"
#include "ep/log.h"

namespace ep::ingest {
namespace {

constexpr std::string_view kKeyField = "idempotency_key";
constexpr std::uint64_t kProblemsLogged = 10;

// The string value in [b, e) of line, unescaped; nullopt when it is not a string.
std::optional<std::string> string_value(std::string_view line, size_t b, size_t e) {
  std::string_view v = line.substr(b, e - b);
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::nullopt;
  if (v.find('\\') == std::string_view::npos) return std::string(v.substr(1, v.size() - 2));
  rapidjson::Document d;  // escapes: let the parser decode them
  if (d.Parse(v.data(), v.size()).HasParseError() || !d.IsString()) return std::nullopt;
  return std::string(d.GetString(), d.GetStringLength());
}

// The number of elements of the array in [b, e) of line; -1 when it is not an array.
std::int64_t array_size(std::string_view line, size_t b, size_t e) {
  std::string_view v = line.substr(0, e);
  size_t i = b;
  auto ws = [&] {
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n')) ++i;
  };
  if (i >= v.size() || v[i++] != '[') return -1;
  ws();
  if (i < v.size() && v[i] == ']') return 0;
  for (std::int64_t n = 1;; ++n) {
    if (!skip_json_value(v, i)) return -1;
    ws();
    if (i >= v.size()) return -1;
    if (v[i] == ']') return n;
    if (v[i++] != ',') return -1;
    ws();
  }
}

}  // namespace

bool read_keyed_batch(std::string_view line, KeyedBatch& out) {
  // Most records have no key: without the quoted name anywhere in the line no member can
  // have it, which settles those without a look at the members.
  static constexpr std::string_view kQuoted = "\"idempotency_key\"";
  if (!::memmem(line.data(), line.size(), kQuoted.data(), kQuoted.size())) return false;
  // The members are located by a scan that stops at the last one needed ("raw", the
  // bulk of the record, is never read), and only their values are decoded.
  thread_local std::vector<JsonMember> members;
  if (!top_level_members(line, members, {kKeyField, "sha256", "received_at", "points"})) return false;
  out = KeyedBatch{};
  bool key = false, sha = false, at = false, points = false;
  for (const auto& m : members) {
    if (m.key == kKeyField) {
      auto v = string_value(line, m.value_begin, m.value_end);
      key = v && !v->empty();
      if (key) out.key = std::move(*v);
    } else if (m.key == "sha256") {
      auto v = string_value(line, m.value_begin, m.value_end);
      sha = v.has_value();
      if (sha) out.sha256 = std::move(*v);
    } else if (m.key == "received_at") {
      auto v = string_value(line, m.value_begin, m.value_end);
      auto t = v ? parse_rfc3339(*v) : std::nullopt;
      at = t.has_value();
      if (at) out.received_at = *t;
    } else if (m.key == "points") {
      out.points = array_size(line, m.value_begin, m.value_end);
      points = out.points >= 0;
    }
  }
  return key && sha && at && points;
}

Result<KeyRecovery> recover_keys(Archive& archive, IdempotencyCache& cache, TimeNs now) {
  KeyRecovery r;
  TimeNs t0 = monotonic_ns();
  TimeNs since = now - cache.window();
  ArchiveFilter f;
  f.from = since;  // by day: today's and yesterday's directories for a 24h window
  KeyedBatch kb;
  Status st = archive.scan(f, [&](const ArchiveObject& obj, std::string_view bytes, const Status& problem) {
    if (!problem.is_ok()) {
      if (++r.problems <= kProblemsLogged)
        log::warn("idempotency recovery: " + obj.uri + ": " + problem.message() + " (skipped)");
      return true;
    }
    r.batches++;
    while (!bytes.empty() && bytes.back() == '\n') bytes.remove_suffix(1);
    if (!read_keyed_batch(bytes, kb) || kb.received_at < since) return true;
    r.keyed++;
    cache.restore(obj.tenant, kb.key, kb.sha256, obj.batch_id, kb.points, kb.received_at);
    return true;
  });
  if (!st) return st.with_context("idempotency recovery");
  r.restored = cache.restored(now);
  r.elapsed = monotonic_ns() - t0;
  return r;
}

}  // namespace ep::ingest
