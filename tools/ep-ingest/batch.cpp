#include "batch.h"

#include <rapidjson/internal/dtoa.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "ep/crypto.h"

namespace ep::ingest {
namespace {

// Bytes a character needs beyond itself when escaped: 1 for \" \\ \b \f \n \r \t, 5 for
// other control characters (\u00XX), 0 for everything else.
constexpr std::array<std::uint8_t, 256> kEscapeExtra = [] {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[static_cast<size_t>(c)] = 5;
  for (unsigned char c : {'"', '\\', '\b', '\f', '\n', '\r', '\t'}) t[c] = 1;
  return t;
}();

void append_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  char* end = rapidjson::internal::dtoa(v, buf);
  out.append(buf, static_cast<size_t>(end - buf));
}

}  // namespace

void write_batch(std::string& out, const BatchMeta& m, std::span<const PayloadPoint> points,
                 std::string_view raw, std::string_view sha256_hex) {
  out.reserve(out.size() + 256 + points.size() * 96 + raw.size() + raw.size() / 4);
  out += R"({"kind":"batch","batch_id":)";
  append_json_string(out, m.batch_id);
  out += R"(,"tenant":)";
  append_json_string(out, m.tenant);
  out += R"(,"device":)";
  append_json_string(out, m.device);
  out += R"(,"source":)";
  append_json_string(out, m.source);
  out += R"(,"received_at":")";
  append_rfc3339(out, m.received_at);
  out += R"(","sha256":)";
  append_json_string(out, sha256_hex.empty() ? std::string_view(crypto::sha256_hex(raw)) : sha256_hex);
  if (!m.idempotency_key.empty()) {
    out += R"(,"idempotency_key":)";
    append_json_string(out, m.idempotency_key);
  }
  if (!m.request_id.empty()) {
    out += R"(,"request_id":)";
    append_json_string(out, m.request_id);
  }
  out += R"(,"points":[)";
  // Points of one payload usually share their ts: format each distinct one once.
  thread_local std::string ts_json;
  TimeNs ts_of_json = INT64_MIN;
  bool first = true;
  for (const auto& p : points) {
    out += first ? R"({"metric":)" : R"(,{"metric":)";
    first = false;
    append_json_string(out, p.metric);
    if (p.ts != ts_of_json || ts_json.empty()) {
      ts_json.assign(1, '"');
      append_rfc3339(ts_json, p.ts);
      ts_json.push_back('"');
      ts_of_json = p.ts;
    }
    out += R"(,"ts":)";
    out += ts_json;
    out += R"(,"value":)";
    append_number(out, p.value);
    if (!p.unit.empty()) {
      out += R"(,"unit":)";
      append_json_string(out, p.unit);
    }
    out += '}';
  }
  if (m.raw_base64) {  // base64 needs no escaping: copied as is
    out += R"(],"raw_encoding":"base64","raw":")";
    out += raw;
    out += "\"}";
    return;
  }
  out += R"(],"raw":)";
  append_json_string(out, raw);
  out += '}';
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  // Two passes: the escaped length first, then the bytes written in place — no append
  // per escape (a JSON body is full of quotes).
  size_t extra = 0;
  for (char c : s) extra += kEscapeExtra[static_cast<unsigned char>(c)];
  size_t at = out.size();
  out.resize(at + s.size() + extra + 2);
  char* o = out.data() + at;
  *o++ = '"';
  if (extra == 0) {
    std::memcpy(o, s.data(), s.size());
    o += s.size();
  } else {
    for (char ch : s) {
      auto c = static_cast<unsigned char>(ch);
      if (!kEscapeExtra[c]) {
        *o++ = ch;
        continue;
      }
      *o++ = '\\';
      switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
          *o++ = 'u';
          *o++ = '0';
          *o++ = '0';
          *o++ = kHex[c >> 4];
          *o++ = kHex[c & 15];
      }
    }
  }
  *o++ = '"';
}

}  // namespace ep::ingest
