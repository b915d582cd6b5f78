#include "idempotency_log.h"

#include <rapidjson/reader.h>

#include <string.h>

#include <algorithm>
#include <vector>

#include "ep/log.h"

namespace ep::ingest {
namespace {

constexpr std::string_view kKeyField = "idempotency_key";
constexpr std::uint64_t kProblemsLogged = 10;

// SAX over a batch record: depth 1 is the record's object, 2 the points array, 3 a point.
struct KeyedHandler : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, KeyedHandler> {
  explicit KeyedHandler(KeyedBatch& o) : out(o) {}
  KeyedBatch& out;
  int depth = 0;
  std::string member;  // the current top-level member
  bool key = false, sha = false, at = false, points = false, in_points = false;

  bool complete() const { return key && sha && at && points; }
  bool Default() { return true; }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (depth != 1) return true;
    std::string_view v(s, n);
    if (member == kKeyField) {
      out.key.assign(v);
      key = !v.empty();
    } else if (member == "sha256") {
      out.sha256.assign(v);
      sha = true;
    } else if (member == "received_at") {
      auto t = parse_rfc3339(v);
      if (t) out.received_at = *t;
      at = t.has_value();
    }
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (depth != 1) return true;
    if (complete()) return false;  // the rest ("raw") is not needed
    member.assign(s, n);
    return true;
  }
  bool StartObject() {
    ++depth;
    if (depth == 3 && in_points) out.points++;
    return true;
  }
  bool EndObject(rapidjson::SizeType) { return --depth, true; }
  bool StartArray() {
    ++depth;
    if (depth == 2 && member == "points") {
      in_points = true;
      out.points = 0;
    }
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    if (depth == 2 && in_points) in_points = false, points = true;
    return --depth, true;
  }
};

}  // namespace

bool read_keyed_batch(std::string_view line, KeyedBatch& out) {
  // Most records have no key: without the quoted name anywhere in the line no member can
  // have it, which settles those without a parse (the parse decides the others).
  static constexpr std::string_view kQuoted = "\"idempotency_key\"";
  if (!::memmem(line.data(), line.size(), kQuoted.data(), kQuoted.size())) return false;
  out = KeyedBatch{};
  KeyedHandler h(out);
  rapidjson::MemoryStream ms(line.data(), line.size());
  rapidjson::Reader reader;
  reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseStopWhenDoneFlag>(ms, h);
  return h.complete();
}

Result<KeyRecovery> recover_keys(Archive& archive, IdempotencyCache& cache, TimeNs now) {
  KeyRecovery r;
  TimeNs t0 = monotonic_ns();
  TimeNs since = now - cache.window();
  std::vector<IdempotencyCache::Recorded> recorded;
  // Memory stays bounded by the cache's capacity: past twice that, keep the newest.
  auto trim = [&] {
    size_t keep = cache.capacity();
    if (recorded.size() <= keep) return;
    std::nth_element(recorded.begin(), recorded.begin() + static_cast<std::ptrdiff_t>(recorded.size() - keep),
                     recorded.end(), [](const auto& a, const auto& b) { return a.at < b.at; });
    recorded.erase(recorded.begin(), recorded.begin() + static_cast<std::ptrdiff_t>(recorded.size() - keep));
  };
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
    recorded.push_back({obj.tenant, std::move(kb.key), std::move(kb.sha256), obj.batch_id, kb.points,
                        kb.received_at});
    if (recorded.size() >= 2 * std::max<size_t>(cache.capacity(), 1)) trim();
    return true;
  });
  if (!st) return st.with_context("idempotency recovery");
  trim();
  r.restored = cache.restore(recorded, now);
  r.elapsed = monotonic_ns() - t0;
  return r;
}

}  // namespace ep::ingest
