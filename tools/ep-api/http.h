#pragma once
// The HTTP surface of ep-api as plain values: the core maps a Request to a Response and
// never touches a socket, so every route is testable without a server (the tests also
// run it over real sockets).
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ep/status.h"
#include "ep/url.h"

namespace ep::api {

struct Request {
  std::string method;                          // "GET"
  std::string target;                          // "/v1/anomalies?limit=10"
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  std::string_view path() const;
  std::string_view header(std::string_view lower_name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

using ep::parse_query;  // ep/url.h
using ep::url_decode;

// {"error":"<code>","details":"<text>"} with the matching status.
Response error_response(int status, std::string_view code, std::string_view details);
// Maps a Status to an error response: kNotFound 404, kUsage/kData 400, kConflict 409,
// kUnavailable/kTemporary 503, else 500 (the details of a 500 are generic).
Response status_response(const Status& s);
Response json_response(int status, std::string body);

}  // namespace ep::api
