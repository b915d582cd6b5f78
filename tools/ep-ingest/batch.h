#pragma once
// Builds the `batch` record (docs/architecture.md §3) straight from a parsed payload, without the
// intermediate ep::Batch copy (the hot path of both HTTP and stdin ingest).
#include <span>
#include <string>
#include <string_view>

#include "payload.h"

namespace ep::ingest {

struct BatchMeta {
  std::string_view batch_id, tenant, device, source;
  TimeNs received_at = 0;
  // The request's Idempotency-Key; when set, the record carries it as "idempotency_key"
  // (after "sha256", before "points") so a restarted ep-ingest recovers its answer.
  std::string_view idempotency_key;
  // A request of several devices becomes one record per device: all carry the first
  // record's batch_id as "request_id"; only the first carries the raw body.
  std::string_view request_id;
  // raw is the body in base64 ("raw_encoding":"base64"): compressed or binary bodies.
  bool raw_base64 = false;
};

// Appends one batch record (no newline) to out. The record carries the sha256 of raw
// (computed unless sha256_hex is given) and raw itself. Written straight into the string
// (the same bytes RapidJSON's Writer produces: keys in this order, strings escaped by
// append_json_string, numbers by RapidJSON's dtoa) — it is the hot path of ingest.
void write_batch(std::string& out, const BatchMeta& meta, std::span<const PayloadPoint> points,
                 std::string_view raw, std::string_view sha256_hex = {});

// Appends s as a JSON string literal (quotes included), escaped exactly as RapidJSON's
// Writer does (short forms for \b \f \n \r \t, \u00XX for other control characters,
// '"' and '\\'; UTF-8 passes through). Copies unescaped runs whole: the raw body is most
// of a batch record, and escaping it byte by byte through the Writer was the hot spot.
void append_json_string(std::string& out, std::string_view s);

}  // namespace ep::ingest
