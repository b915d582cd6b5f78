#include "http.h"

#include "ep/json.h"

namespace ep::api {

std::string_view Request::path() const {
  std::string_view t = target;
  auto q = t.find('?');
  return q == std::string_view::npos ? t : t.substr(0, q);
}

std::string_view Request::header(std::string_view lower_name) const {
  auto it = headers.find(std::string(lower_name));
  return it == headers.end() ? std::string_view{} : std::string_view(it->second);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view s, bool* ok) {
  std::string out;
  out.reserve(s.size());
  *ok = true;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      int hi = i + 2 < s.size() ? hexval(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        *ok = false;
        return out;
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

Result<std::map<std::string, std::string>> parse_query(std::string_view target) {
  std::map<std::string, std::string> out;
  auto q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view part = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    bool ok1 = true, ok2 = true;
    std::string key = url_decode(part.substr(0, eq), &ok1);
    std::string val =
        eq == std::string_view::npos ? std::string() : url_decode(part.substr(eq + 1), &ok2);
    if (!ok1 || !ok2) return Status::usage(key + ": malformed percent-encoding");
    out[key] = std::move(val);
  }
  return out;
}

Response json_response(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response error_response(int status, std::string_view code, std::string_view details) {
  JsonWriter w;
  w.start_object();
  w.kv("error", code);
  w.kv("details", details);
  w.end_object();
  return json_response(status, w.take());
}

Response status_response(const Status& s) {
  switch (s.code()) {
    case Code::kNotFound:
      return error_response(404, "not_found", s.message());
    case Code::kUsage:
    case Code::kData:
      return error_response(400, "invalid_request", s.message());
    case Code::kConflict:
      return error_response(409, "conflict", s.message());
    case Code::kUnavailable:
    case Code::kTemporary: {
      Response r = error_response(503, "unavailable", "database unavailable, retry later");
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    default:
      return error_response(500, "internal", "internal error");
  }
}

}  // namespace ep::api
