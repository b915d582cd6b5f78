#pragma once
// A small HTTP/1.1 server on Boost.Beast/Asio, shared by ep-ingest and ep-api.
//
// What it does so the tools do not have to: listens on HOST:PORT (port 0 = ephemeral),
// runs N threads, keep-alive, optional TLS (1.2 or later; the certificate is re-read by
// reload_tls() without a restart), and connection hygiene so a slow or greedy client
// cannot starve the others:
//  - a head deadline: a new connection must finish its TLS handshake and request head
//    within header_timeout of being accepted; a keep-alive request within header_timeout
//    of its first byte. Past it the connection is closed without an answer.
//  - a body deadline: a body that stops arriving is answered 408 and closed.
//  - a keep-alive idle timeout and a write deadline.
//  - a cap per client address (the excess get 503, or a plain close under TLS).
//  - a total cap: at max_connections, a new connection first sheds the connection that
//    has waited longest without a complete request head (idle keep-alive, or a head still
//    trickling in); only when every connection is busy with a request is the newcomer
//    refused (503 and close; a plain close under TLS).
// A body limit (413 without reading the body when Content-Length says so), and graceful
// shutdown: stop() closes the listener and connections without a request in progress,
// lets in-flight requests finish (their responses carry "Connection: close"), and run()
// returns when everything has drained or drain_timeout passed.
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
  size_t max_connections_per_client = 128;  // per remote address; 0 = no cap
  size_t max_header_bytes = 16 << 10;
  size_t max_body_bytes = 1 << 20;
  // Head deadline: from accept (TLS handshake included) or from the first byte of a
  // keep-alive request to the end of its header.
  TimeNs header_timeout = 5 * kNsPerSec;
  TimeNs body_timeout = 30 * kNsPerSec;    // from the end of the header to the end of the body
  TimeNs idle_timeout = 60 * kNsPerSec;    // keep-alive: waiting for the next request
  TimeNs write_timeout = 30 * kNsPerSec;   // sending a response
  TimeNs drain_timeout = 30 * kNsPerSec;   // stop(): how long in-flight requests may take
  std::string server_name = "edgepulse";
  std::string tls_cert, tls_key;  // PEM files (the certificate file may hold the chain); both set = HTTPS
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
  std::uint64_t connections_rejected = 0;  // over max_connections with nothing to shed
  std::uint64_t connections_rejected_per_client = 0;  // over max_connections_per_client
  std::uint64_t connections_shed = 0;  // idle or head-incomplete, closed to admit a new one
  std::uint64_t connections_active = 0;
  std::uint64_t timeouts = 0;       // any deadline passed: head, body, idle or write
  std::uint64_t head_timeouts = 0;  // of which the head deadline (TLS handshake included)
  std::uint64_t body_timeouts = 0;  // of which the body deadline (answered 408)
  std::uint64_t bad_requests = 0;   // unparseable HTTP
  std::uint64_t tls_handshake_failures = 0;  // TLS handshakes that failed (not by deadline)
  std::uint64_t tls_reloads = 0, tls_reload_failures = 0;
};

// Appends the stats in Prometheus text format as <prefix>_connections_active,
// <prefix>_connections_accepted_total, … (the names docs/ep-ingest.md lists).
void render_metrics(const ServerStats& stats, std::string_view prefix, std::string& out);

// {"error":"<error>","detail":"<detail>"} with the status, Content-Type and keep-alive set.
Response json_error(const Request& req, unsigned status, std::string_view error,
                    std::string_view detail);
// A response with the given JSON body.
Response json_response(const Request& req, unsigned status, std::string body);

class Server {
 public:
  // Loads the TLS certificate and key when set, binds and listens (errors: kUsage for a
  // bad address or an unusable certificate or key, kUnavailable when the port is taken). Nothing is accepted until run().
  static Result<std::unique_ptr<Server>> listen(const ServerOptions& opts, Handler handler,
                                                Observer observer = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound address, e.g. "127.0.0.1:40123" (after an ephemeral bind, the real port).
  std::string address() const;
  std::uint16_t port() const;
  // "http://ADDRESS" or "https://ADDRESS".
  std::string url() const;
  bool tls() const;
  // Re-reads opts.tls_cert and opts.tls_key; connections accepted afterwards use them.
  // On an error the previous certificate stays in use and the error is returned.
  Status reload_tls();

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
