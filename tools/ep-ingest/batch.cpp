#include "batch.h"

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
  w.key("points");
  w.start_array();
  for (const auto& p : points) {
    w.start_object();
    w.kv("metric", p.metric);
    w.kv_time("ts", p.ts);
    w.kv("value", p.value);
    if (!p.unit.empty()) w.kv("unit", p.unit);
    w.end_object();
  }
  w.end_array();
  w.kv("raw", raw);
  w.end_object();
}

}  // namespace ep::ingest
