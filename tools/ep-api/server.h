#pragma once
// Puts the ep-api core behind the shared HTTP server (ep/http_server.h).
#include <functional>

#include "api.h"
#include "ep/http_server.h"

namespace ep::api {

// Converts a Beast request to the core's Request, answers it, converts back. GET /metrics
// (no key) answers the server's connection counters from `stats` in Prometheus format.
http::Handler make_handler(Api& api, std::function<http::ServerStats()> stats = {});
// Beast-free conversions, exposed for tests.
Request from_beast(const http::Request& req);
http::Response to_beast(const http::Request& req, Response&& res);

}  // namespace ep::api
