#include "server.h"

#include <algorithm>
#include <boost/beast/http.hpp>
#include <cctype>

namespace ep::api {

namespace bhttp = boost::beast::http;

Request from_beast(const http::Request& req) {
  Request r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  for (const auto& f : req) {
    std::string name(f.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    r.headers[name] = std::string(f.value());
  }
  r.body = req.body();
  return r;
}

http::Response to_beast(const http::Request& req, Response&& res) {
  http::Response out{static_cast<bhttp::status>(res.status), req.version()};
  out.keep_alive(req.keep_alive());
  if (!res.content_type.empty()) out.set(bhttp::field::content_type, res.content_type);
  for (auto& [k, v] : res.headers) out.set(k, v);
  bool head = req.method() == bhttp::verb::head;
  out.body() = head ? std::string() : std::move(res.body);
  out.prepare_payload();
  return out;
}

namespace {

http::Response metrics_response(const http::Request& req, const http::ServerStats& stats) {
  http::Response out{bhttp::status::ok, req.version()};
  out.keep_alive(req.keep_alive());
  out.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  http::render_metrics(stats, "ep_api", out.body());
  out.prepare_payload();
  return out;
}

}  // namespace

http::Handler make_handler(Api& api, std::function<http::ServerStats()> stats) {
  return [&api, stats = std::move(stats)](http::Request&& req, http::Respond respond) {
    if (stats && req.method() == bhttp::verb::get && req.target() == "/metrics")
      return respond(metrics_response(req, stats()));
    Response res = api.handle(from_beast(req));
    respond(to_beast(req, std::move(res)));
  };
}

}  // namespace ep::api
