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
