#include "webhook.h"

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>

#include "ep/crypto.h"
#include "ep/json.h"

namespace ep::alert {

namespace http = boost::beast::http;

std::string build_body(const Event& e, TimeNs timestamp) {
  const Score& s = *e.score;
  JsonWriter w;
  w.start_object();
  w.kv("type", event_type_name(e.type));
  w.kv_time("timestamp", timestamp);
  w.key("data");
  w.start_object();
  w.kv("alert_id", e.alert_id);
  w.kv("rule", e.rule->name);
  w.kv("severity", severity_name(e.rule->severity));
  w.kv("tenant", s.tenant);
  w.kv("device", s.device);
  w.kv("metric", s.metric);
  w.kv_time("start", s.start);
  w.kv_time("end", s.end);
  w.kv("score", s.score);
  w.kv("anomaly", s.anomaly);
  w.kv("label", s.label);
  if (!s.model.empty()) w.kv("model", s.model);
  w.kv("consecutive", e.consecutive);
  w.key("explanation");
  w.start_array();
  for (const auto& x : s.explanation) {
    w.start_object();
    w.kv("feature", x.feature);
    w.kv("value", x.value);
    w.kv("baseline", x.baseline);
    w.kv("z", x.z);
    w.end_object();
  }
  w.end_array();
  w.end_object();
  w.end_object();
  return w.take();
}

std::string sign(const std::vector<std::string>& keys, std::string_view id, std::int64_t ts_sec,
                 std::string_view body) {
  std::string msg;
  msg.reserve(id.size() + body.size() + 24);
  msg.append(id).push_back('.');
  msg.append(std::to_string(ts_sec)).push_back('.');
  msg.append(body);
  std::string out;
  for (const auto& k : keys) {
    if (!out.empty()) out += ' ';
    out += "v1,";
    out += crypto::base64(crypto::hmac_sha256(k, msg));
  }
  return out;
}

namespace {

// Dumps saved by editors or `nc -l > file` may use bare LF; Beast wants CRLF in the
// header block. Only the header block is rewritten; the body stays byte-exact.
std::string normalise_header_block(std::string_view text) {
  size_t crlf_end = text.find("\r\n\r\n");
  size_t lf_end = text.find("\n\n");
  if (crlf_end != std::string_view::npos && (lf_end == std::string_view::npos || crlf_end < lf_end))
    return std::string(text);
  if (lf_end == std::string_view::npos) lf_end = text.size();
  std::string out;
  out.reserve(text.size() + 64);
  for (size_t i = 0; i < lf_end; ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  out += "\r\n\r\n";
  if (lf_end + 2 <= text.size()) out.append(text.substr(lf_end + 2));
  return out;
}

bool looks_like_request_line(std::string_view first) {
  // "POST /path HTTP/1.1": a token, a space, and no ':' before the first space.
  size_t sp = first.find(' ');
  size_t colon = first.find(':');
  return sp != std::string_view::npos && (colon == std::string_view::npos || sp < colon) &&
         first.find("HTTP/") != std::string_view::npos;
}

}  // namespace

Result<ReceivedWebhook> parse_request_dump(std::string_view text) {
  std::string buf;
  std::string_view first = text.substr(0, text.find('\n'));
  if (!looks_like_request_line(first)) buf = "POST / HTTP/1.1\r\n";
  buf += normalise_header_block(text);

  http::request_parser<http::string_body> parser;
  parser.eager(true);
  parser.body_limit(64 << 20);
  boost::beast::error_code ec;
  size_t used = parser.put(boost::asio::buffer(buf), ec);
  if (ec && ec != http::error::need_more)
    return Status::data("request: not an HTTP request dump: " + ec.message());
  if (!parser.is_header_done()) return Status::data("request: headers not terminated by a blank line");
  const auto& req = parser.get();
  ReceivedWebhook w;
  if (parser.content_length() || parser.chunked()) {
    if (!parser.is_done()) {
      if (parser.chunked()) return Status::data("body: chunked body is incomplete");
      return Status::data("body: shorter than Content-Length (" +
                          std::to_string(req.body().size()) + " < " +
                          std::to_string(*parser.content_length()) + " bytes)");
    }
    w.body = req.body();
  } else {
    w.body = buf.substr(used);
  }
  for (auto [name, dst, has] : {std::tuple{"webhook-id", &w.id, &w.has_id},
                                {"webhook-timestamp", &w.timestamp, &w.has_timestamp},
                                {"webhook-signature", &w.signature, &w.has_signature}}) {
    auto it = req.find(name);
    if (it != req.end()) {
      *dst = std::string(it->value());
      *has = true;
    }
  }
  return w;
}

Verdict verify(const ReceivedWebhook& w, const std::vector<std::string>& keys, TimeNs now,
               TimeNs tolerance) {
  Verdict v;
  for (auto [name, has] : {std::pair{"webhook-id", w.has_id},
                           {"webhook-timestamp", w.has_timestamp},
                           {"webhook-signature", w.has_signature}})
    if (!has) {
      v.reason = std::string("missing header ") + name;
      return v;
    }
  std::int64_t ts = 0;
  auto [p, ec] = std::from_chars(w.timestamp.data(), w.timestamp.data() + w.timestamp.size(), ts);
  if (ec != std::errc() || p != w.timestamp.data() + w.timestamp.size()) {
    v.reason = "webhook-timestamp: not an integer number of seconds: \"" + w.timestamp + "\"";
    return v;
  }
  auto ts_ns = seconds_to_ns(ts);
  if (!ts_ns) {
    v.reason = "webhook-timestamp: out of range: \"" + w.timestamp + "\"";
    return v;
  }
  // Both within ±kMaxSeconds, so neither the difference nor its nanoseconds overflow
  // (the message clamps a skew beyond what a duration can hold).
  std::int64_t now_sec = now / kNsPerSec;
  std::int64_t skew = now_sec - ts;
  std::int64_t abs_skew = skew < 0 ? -skew : skew;
  if (abs_skew > tolerance / kNsPerSec) {
    v.reason = "webhook-timestamp: " + format_rfc3339(*ts_ns) + " is " +
               format_duration(*seconds_to_ns(std::min(abs_skew, kMaxSeconds))) +
               (skew < 0 ? " in the future" : " old") + ", outside the tolerance of " +
               format_duration(tolerance);
    return v;
  }
  std::vector<std::string> wanted;
  for (const auto& k : keys) wanted.push_back(sign({k}, w.id, ts, w.body).substr(3));
  size_t n_sigs = 0;
  std::string_view rest = w.signature;
  while (!rest.empty()) {
    size_t sp = rest.find(' ');
    std::string_view sig = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
    if (sig.empty()) continue;
    ++n_sigs;
    if (sig.rfind("v1,", 0) != 0) continue;  // other schemes (e.g. v1a) are not ours
    for (size_t i = 0; i < wanted.size(); ++i)
      if (crypto::equal_ct(sig.substr(3), wanted[i])) {
        v.valid = true;
        v.reason = "signature " + std::to_string(n_sigs) + " matches secret " +
                   std::to_string(i + 1);
        return v;
      }
  }
  v.reason = "webhook-signature: none of " + std::to_string(n_sigs) +
             " signature(s) matches the " + std::to_string(keys.size()) +
             " secret(s) (wrong secret, or the body or id was changed)";
  return v;
}

}  // namespace ep::alert
