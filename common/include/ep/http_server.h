#pragma once
// A small HTTP/1.1 server on Boost.Beast/Asio, shared by ep-ingest and ep-api.
//
// What it does so the tools do not have to: listens on HOST:PORT (port 0 = ephemeral),
// runs N threads, keep-alive, a deadline for the request header and one for the body
// (a slow client cannot hold a worker), a keep-alive idle timeout, a maximum number of
// concurrent connections (the excess get 503 and are closed), a body limit (413 without
// reading the body when Content-Length says so), and graceful shutdown: stop() closes the
// listener and idle connections, lets in-flight requests finish (their responses carry
// "Connection: close"), and run() returns when everything has drained or drain_timeout
// passed.
//
// Requests reach one Handler, which answers through a Respond callback — immediately or
// later from another thread (ep-ingest answers after its group commit). Errors the
// server generates itself are JSON: {"error":"payload_too_large","detail":"…"}.
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "ep/status.h"
#include "ep/time.h"

namespace ep::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

struct ServerOptions {
  std::string listen = "127.0.0.1:8787";  // HOST:PORT; [v6]:PORT; port 0 = any free port
  int threads = 1;
  size_t max_connections = 1024;
  size_t max_header_bytes = 16 << 10;
  size_t max_body_bytes = 1 << 20;
  TimeNs header_timeout = 10 * kNsPerSec;  // from the first byte of a request to its last header byte
  TimeNs body_timeout = 30 * kNsPerSec;    // from the end of the header to the end of the body
  TimeNs idle_timeout = 60 * kNsPerSec;    // keep-alive: waiting for the next request
  TimeNs write_timeout = 30 * kNsPerSec;   // sending a response
  TimeNs drain_timeout = 30 * kNsPerSec;   // stop(): how long in-flight requests may take
  std::string server_name = "edgepulse";
};

// Answers one request. May be called from any thread, exactly once.
using Respond = std::function<void(Response&&)>;
using Handler = std::function<void(Request&& req, Respond respond)>;

// Called after every response is written (or failed to be), for metrics and access logs.
struct Completed {
  std::string_view method, target;
  unsigned status = 0;
  TimeNs duration_ns = 0;  // from the end of the request header to the response written
};
using Observer = std::function<void(const Completed&)>;

struct ServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_rejected = 0;  // over max_connections
  std::uint64_t connections_active = 0;
  std::uint64_t timeouts = 0;  // header, body, idle or write deadline passed
  std::uint64_t bad_requests = 0;  // unparseable HTTP
};

// {"error":"<error>","detail":"<detail>"} with the status, Content-Type and keep-alive set.
Response json_error(const Request& req, unsigned status, std::string_view error,
                    std::string_view detail);
// A response with the given JSON body.
Response json_response(const Request& req, unsigned status, std::string body);

class Server {
 public:
  // Binds and listens (errors: kUsage for a bad address, kUnavailable when the port is
  // taken). Nothing is accepted until run().
  static Result<std::unique_ptr<Server>> listen(const ServerOptions& opts, Handler handler,
                                                Observer observer = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound address, e.g. "127.0.0.1:40123" (after an ephemeral bind, the real port).
  std::string address() const;
  std::uint16_t port() const;

  // Runs the server on opts.threads threads (the caller's included) until stop() has
  // drained it. Returns whether the drain was clean (false: drain_timeout passed and
  // connections were cut).
  bool run();
  // Thread-safe; may be called from a handler or a signal_set handler.
  void stop();
  bool stopping() const;

  // For signal_set and timers that must run on the server's threads.
  boost::asio::io_context& context();
  ServerStats stats() const;

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ep::http
