#include "batch.h"

#include <cstdint>

#include "ep/crypto.h"

namespace ep::ingest {

void write_batch(JsonWriter& w, const BatchMeta& m, std::span<const PayloadPoint> points,
                 std::string_view raw, std::string_view sha256_hex) {
  w.start_object();
  w.kv("kind", "batch");
  w.kv("batch_id", m.batch_id);
  w.kv("tenant", m.tenant);
  w.kv("device", m.device);
  w.kv("source", m.source);
  w.kv_time("received_at", m.received_at);
  if (sha256_hex.empty()) w.kv("sha256", crypto::sha256_hex(raw));
  else w.kv("sha256", sha256_hex);
  if (!m.idempotency_key.empty()) w.kv("idempotency_key", m.idempotency_key);
  w.key("points");
  w.start_array();
  // Points of one payload usually share their ts: format each distinct one once.
  thread_local std::string ts_json;
  TimeNs ts_of_json = INT64_MIN;
  for (const auto& p : points) {
    w.start_object();
    w.kv("metric", p.metric);
    if (p.ts != ts_of_json || ts_json.empty()) {
      ts_json.assign(1, '"');
      append_rfc3339(ts_json, p.ts);
      ts_json.push_back('"');
      ts_of_json = p.ts;
    }
    w.key("ts");
    w.raw(ts_json);
    w.kv("value", p.value);
    if (!p.unit.empty()) w.kv("unit", p.unit);
    w.end_object();
  }
  w.end_array();
  w.key("raw");
  thread_local std::string escaped;
  escaped.clear();
  append_json_string(escaped, raw);
  w.raw(escaped);
  w.end_object();
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out.reserve(out.size() + s.size() + s.size() / 8 + 2);
  out.push_back('"');
  const char* p = s.data();
  const char* end = p + s.size();
  const char* run = p;
  for (; p < end; ++p) {
    auto c = static_cast<unsigned char>(*p);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(run, static_cast<size_t>(p - run));
    run = p + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
  }
  out.append(run, static_cast<size_t>(end - run));
  out.push_back('"');
}

}  // namespace ep::ingest
