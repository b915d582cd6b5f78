#include "ep/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "ep/json.h"

namespace ep::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

std::chrono::nanoseconds ns(TimeNs t) { return std::chrono::nanoseconds(t); }

std::string error_body(std::string_view error, std::string_view detail) {
  JsonWriter w;
  w.start_object();
  w.kv("error", error);
  w.kv("detail", detail);
  w.end_object();
  return std::string(w.view());
}

Response make_error(unsigned version, bool keep_alive, unsigned status, std::string_view error,
                    std::string_view detail) {
  Response res{static_cast<bhttp::status>(status), version};
  res.set(bhttp::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  res.body() = error_body(error, detail);
  res.prepare_payload();
  return res;
}

// "host:port", "[v6]:port", ":port".
Result<tcp::endpoint> parse_listen(asio::io_context& ioc, const std::string& s) {
  auto bad = [&](const std::string& why) {
    return Status::usage("--listen " + s + ": " + why + " (expected HOST:PORT)");
  };
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return bad("missing port");
  std::string host = s.substr(0, colon), port_s = s.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  unsigned port = 0;
  if (port_s.empty() || port_s.size() > 5 || port_s.find_first_not_of("0123456789") != std::string::npos ||
      (port = static_cast<unsigned>(std::stoul(port_s))) > 65535)
    return bad("invalid port");
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (!ec) return tcp::endpoint(addr, static_cast<unsigned short>(port));
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(host, port_s, ec);
  if (ec || results.empty()) return bad("cannot resolve host: " + ec.message());
  return results.begin()->endpoint();
}

// A server context from PEM files: TLS 1.2 or later, the certificate file may carry the
// chain after the leaf.
Result<std::shared_ptr<ssl::context>> load_tls(const std::string& cert, const std::string& key) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                   ssl::context::single_dh_use);
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1)
    return Status::software("TLS: cannot require TLS 1.2");
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert, ec);
  if (ec) return Status::usage("--tls-cert " + cert + ": " + ec.message());
  ctx->use_private_key_file(key, ssl::context::pem, ec);
  if (ec) return Status::usage("--tls-key " + key + ": " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    return Status::usage("--tls-key " + key + ": does not match the certificate in " + cert);
  return ctx;
}

}  // namespace

void render_metrics(const ServerStats& s, std::string_view prefix, std::string& out) {
  std::string p(prefix);
  auto metric = [&](const char* type, const char* name, const char* help, std::uint64_t v) {
    std::string n = p + "_" + name;
    out += "# HELP " + n + " " + help + "\n# TYPE " + n + " " + type + "\n" + n + " " +
           std::to_string(v) + "\n";
  };
  auto counter = [&](const char* name, const char* help, std::uint64_t v) {
    metric("counter", name, help, v);
  };
  metric("gauge", "connections_active", "Open client connections.", s.connections_active);
  counter("connections_accepted_total", "Connections accepted.", s.connections_accepted);
  counter("connections_rejected_total",
          "Connections refused over --max-connections (every connection busy with a request).",
          s.connections_rejected);
  counter("connections_rejected_per_client_total",
          "Connections refused over --max-connections-per-client.", s.connections_rejected_per_client);
  counter("connections_shed_total",
          "Idle or head-incomplete connections closed at --max-connections to admit a new one.",
          s.connections_shed);
  counter("timeouts_total", "Connections closed by a head, body, idle or write deadline.", s.timeouts);
  counter("head_timeouts_total", "Connections closed by the head deadline (--header-timeout).",
          s.head_timeouts);
  counter("body_timeouts_total", "Requests answered 408 because the body stopped arriving.",
          s.body_timeouts);
  counter("bad_requests_total", "Unparseable HTTP requests.", s.bad_requests);
  counter("tls_handshake_failures_total", "TLS handshakes that failed (bad version, not TLS, …).",
          s.tls_handshake_failures);
  counter("tls_reloads_total", "Certificate reloads (SIGHUP) that took effect.", s.tls_reloads);
  counter("tls_reload_failures_total", "Certificate reloads that failed (the previous one stays).",
          s.tls_reload_failures);
}

Response json_error(const Request& req, unsigned status, std::string_view error,
                    std::string_view detail) {
  return make_error(req.version(), req.keep_alive(), status, error, detail);
}

Response json_response(const Request& req, unsigned status, std::string body) {
  Response res{static_cast<bhttp::status>(status), req.version()};
  res.set(bhttp::field::content_type, "application/json");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

// A client connection as the server sees it, whatever its stream. Fields marked "mu" are
// guarded by Server::Impl::mu; everything else runs on the connection's strand.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server::Impl& srv, std::string client) : srv_(srv), client_(std::move(client)) {}
  virtual ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  virtual void start() = 0;
  // Refused at accept: 503 then close (a plain close under TLS).
  virtual void refuse(std::string_view why) = 0;
  // The server stops: a connection without a request in progress closes now.
  virtual void on_stop() = 0;
  // Closed to admit a newcomer, unless its head completed meanwhile.
  virtual void shed() = 0;
  virtual void force_close() = 0;
  virtual asio::any_io_executor executor() = 0;

  const std::string& client() const { return client_; }
  bool waiting = false;  // mu: in Impl::waiting
  // mu: neighbours in Impl::waiting (intrusive: no allocation per request)
  Connection* waiting_prev = nullptr;
  Connection* waiting_next = nullptr;

 protected:
  Server::Impl& srv_;

 private:
  std::string client_;  // remote address
};

class Server::Impl {
 public:
  Impl(const ServerOptions& o, Handler h, Observer obs)
      : opts(o), handler(std::move(h)), observer(std::move(obs)),
        acceptor(asio::make_strand(ioc)), drain_timer(ioc),
        work(asio::make_work_guard(ioc)) {}

  enum class Admission { kAdmit, kFull, kClientCap };

  void accept();
  void on_accept(boost::system::error_code ec, tcp::socket socket);
  std::shared_ptr<Connection> make_connection(tcp::socket&& socket, std::string client);
  Admission admit(const std::shared_ptr<Connection>& c, std::shared_ptr<Connection>& victim);
  std::shared_ptr<Connection> pop_oldest_waiting();
  void set_waiting(Connection& c, bool on);
  void stop();
  void remove(Connection* c);
  void finish_if_drained();
  std::vector<std::shared_ptr<Connection>> live();
  std::shared_ptr<ssl::context> tls_context() {
    std::lock_guard lock(tls_mu);
    return tls;
  }
  void observe(std::string_view method, std::string_view target, unsigned status, TimeNs start) {
    if (observer) observer(Completed{method, target, status, start ? monotonic_ns() - start : 0});
  }

  // Declared before ioc: connections destroyed with the io_context's pending handlers
  // still unregister themselves here.
  ServerOptions opts;
  Handler handler;
  Observer observer;
  std::mutex mu;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> conns;
  std::unordered_map<std::string, size_t> per_client;
  // Connections without a complete request head (idle keep-alive, handshake or head in
  // progress), longest waiting first: the ones shed at max_connections. An intrusive
  // list through Connection::waiting_prev/next, under mu.
  Connection* waiting_head = nullptr;
  Connection* waiting_tail = nullptr;
  void unlink_waiting(Connection& c);
  std::mutex tls_mu;
  std::shared_ptr<ssl::context> tls;  // null: plain HTTP
  std::atomic<std::uint64_t> accepted{0}, rejected{0}, rejected_per_client{0}, shed{0}, active{0},
      timeouts{0}, head_timeouts{0}, body_timeouts{0}, bad_requests{0}, tls_failures{0},
      tls_reloads{0}, tls_reload_failures{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> finished{false};
  std::atomic<bool> clean{true};
  asio::io_context ioc;
  tcp::acceptor acceptor;
  tcp::endpoint bound;
  asio::steady_timer drain_timer;
  asio::executor_work_guard<asio::io_context::executor_type> work;
};

Connection::~Connection() { srv_.remove(this); }

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

template <class Stream>
Stream make_stream(tcp::socket&& socket, ssl::context* ctx) {
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    return Stream(std::move(socket), *ctx);
  } else {
    (void)ctx;
    return Stream(std::move(socket));
  }
}

// One client connection over a plain or a TLS stream: the one HTTP session.
template <class Stream>
class Session final : public Connection {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  Session(Server::Impl& srv, tcp::socket&& socket, std::string client, std::shared_ptr<ssl::context> ctx)
      : Connection(srv, std::move(client)), tls_(std::move(ctx)),
        stream_(make_stream<Stream>(std::move(socket), tls_.get())), body_timer_(stream_.get_executor()) {}

  void start() override {
    phase_ = Phase::kHead;
    srv_.set_waiting(*this, true);
    // The head deadline runs from accept and covers the handshake.
    lowest().expires_after(ns(srv_.opts.header_timeout));
    if constexpr (kTls) {
      stream_.async_handshake(ssl::stream_base::server, [self = self()](beast::error_code ec) {
        if (self->phase_ == Phase::kClosed) return;  // shed or stopped meanwhile
        if (!ec) return self->read_header();
        if (ec == beast::error::timeout) return self->head_timed_out();
        ++self->srv_.tls_failures;
        self->close();
      });
    } else {
      read_header();
    }
  }

  void refuse(std::string_view why) override {
    if constexpr (kTls) {
      close();  // an answer would need the handshake first
    } else {
      Response res = make_error(11, false, 503, "unavailable", why);
      res.set(bhttp::field::retry_after, "1");
      send(std::move(res), /*close=*/true);
    }
  }

  void on_stop() override {
    if (phase_ == Phase::kIdle || phase_ == Phase::kHead) close();
  }
  void shed() override {
    if (phase_ != Phase::kIdle && phase_ != Phase::kHead) return;
    ++srv_.shed;
    close();
  }
  void force_close() override {
    beast::error_code ec;
    lowest().socket().close(ec);
  }
  asio::any_io_executor executor() override { return stream_.get_executor(); }

 private:
  // kHead: handshake or request head in progress.
  enum class Phase { kIdle, kHead, kBody, kHandling, kWriting, kClosed };

  std::shared_ptr<Session> self() { return std::static_pointer_cast<Session>(shared_from_this()); }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  // Keep-alive: wait for the next request.
  void wait_for_request() {
    phase_ = Phase::kIdle;
    if (srv_.stopping) return close();
    srv_.set_waiting(*this, true);
    if (buffer_.size() > 0) {
      // A pipelined request: parse it from a fresh handler, so that a long pipeline
      // answered synchronously does not nest ever deeper.
      asio::post(stream_.get_executor(), [self = self()] {
        if (self->phase_ == Phase::kIdle) self->begin_head();
      });
      return;
    }
    // Read whatever arrives first into the buffer the parser uses.
    lowest().expires_after(ns(srv_.opts.idle_timeout));
    stream_.async_read_some(buffer_.prepare(4096), [self = self()](beast::error_code ec, size_t n) {
      self->on_first_bytes(ec, n);
    });
  }

  void on_first_bytes(beast::error_code ec, size_t n) {
    if (ec) {
      if (ec == beast::error::timeout) ++srv_.timeouts;
      return close();
    }
    buffer_.commit(n);
    begin_head();
  }

  // Bytes of a keep-alive request have arrived: usually the whole request, which is then
  // parsed right here (no further read, no deadline timer); else the head is read with
  // the head deadline running.
  void begin_head() {
    phase_ = Phase::kHead;
    new_parser();
    beast::error_code ec = feed(/*head=*/true);
    if (ec != bhttp::error::need_more) return on_header(ec);
    lowest().expires_after(ns(srv_.opts.header_timeout));
    async_read_head();
  }

  void read_header() {
    new_parser();
    async_read_head();
  }

  void new_parser() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(srv_.opts.max_header_bytes));
    parser_->body_limit(srv_.opts.max_body_bytes);
  }

  void async_read_head() {
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = self()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  // Parses what is already buffered, up to the end of the head or of the whole message,
  // without I/O: need_more when the rest has not arrived yet.
  beast::error_code feed(bool head) {
    auto done = [&] { return head ? parser_->is_header_done() : parser_->is_done(); };
    beast::error_code ec;
    while (!done() && buffer_.size() > 0) {
      size_t n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec) return ec;
      if (n == 0) break;
    }
    if (!done()) ec = bhttp::error::need_more;
    return ec;
  }

  void head_timed_out() {
    ++srv_.timeouts;
    ++srv_.head_timeouts;
    close();
  }

  void on_header(beast::error_code ec) {
    start_ns_ = monotonic_ns();
    srv_.set_waiting(*this, false);  // complete, or failed and about to close: not to be shed
    if (ec == beast::error::timeout) return head_timed_out();
    if (ec) return read_failed(ec);
    auto& h = parser_->get();
    method_ = std::string(h.method_string());
    target_ = std::string(h.target());
    if (auto len = parser_->content_length(); len && *len > srv_.opts.max_body_bytes) {
      return too_large();
    }
    if (parser_->is_done()) return dispatch();
    phase_ = Phase::kBody;
    if (beast::iequals(h[bhttp::field::expect], "100-continue")) {
      lowest().expires_after(ns(srv_.opts.write_timeout));
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue, sizeof kContinue - 1),
                        [self = self()](beast::error_code ec, size_t) {
                          if (ec) return self->close();
                          self->read_body();
                        });
      return;
    }
    // Usually the body came with the head: then no read and no body timer.
    if (auto fed = feed(/*head=*/false); fed != bhttp::error::need_more) {
      if (fed) return read_failed(fed);
      return dispatch();
    }
    read_body();
  }

  // The body deadline is a timer of its own that cancels the read: the stream's deadline
  // would close the socket, and a 408 could not be sent.
  void read_body() {
    lowest().expires_never();
    body_timer_.expires_after(ns(srv_.opts.body_timeout));
    body_timer_.async_wait([self = self()](beast::error_code ec) {
      if (ec || self->phase_ != Phase::kBody) return;
      self->body_expired_ = true;
      beast::error_code ignored;
      self->lowest().socket().cancel(ignored);
    });
    bhttp::async_read(stream_, buffer_, *parser_, [self = self()](beast::error_code ec, size_t) {
      self->body_timer_.cancel();
      if (ec) return self->read_failed(ec);
      self->dispatch();
    });
  }

  void read_failed(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) return too_large();
    if (body_expired_) return body_timed_out();
    if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == asio::error::bad_descriptor || ec == ssl::error::stream_truncated)
      return close();
    ++srv_.bad_requests;
    unsigned status = ec == bhttp::error::header_limit ? 431 : 400;
    send(make_error(11, false, status, "bad_request", "malformed HTTP request: " + ec.message()), true);
  }

  // The body stopped arriving: 408, then close (the rest of it would be read as a request).
  void body_timed_out() {
    ++srv_.timeouts;
    ++srv_.body_timeouts;
    send(make_error(parser_->get().version(), false, 408, "request_timeout",
                    "body: not complete within " + format_duration(srv_.opts.body_timeout) +
                        " of the header"),
         true);
  }

  void too_large() {
    // The body is not read, so the connection cannot be reused.
    send(make_error(parser_->get().version(), false, 413, "payload_too_large",
                    "body: larger than " + std::to_string(srv_.opts.max_body_bytes) + " bytes"),
         true);
  }

  void dispatch() {
    phase_ = Phase::kHandling;
    lowest().expires_never();
    Request req = parser_->release();
    parser_.reset();
    keep_alive_ = req.keep_alive();
    // The handler may answer from any thread; the answer hops back onto our strand
    // (dispatch: inline when the handler answers synchronously, on the strand already).
    Respond respond = [self = self()](Response&& res) {
      asio::dispatch(self->stream_.get_executor(),
                     [self, res = std::move(res)]() mutable { self->send(std::move(res), false); });
    };
    try {
      srv_.handler(std::move(req), std::move(respond));
    } catch (const std::exception& e) {
      // A handler must not throw; answer 500 rather than lose the connection silently.
      send(make_error(11, false, 500, "internal", e.what()), true);
    }
  }

  void send(Response&& res, bool close_after) {
    if (phase_ == Phase::kClosed) return;
    bool keep = !close_after && keep_alive_ && !srv_.stopping && res.keep_alive();
    res.keep_alive(keep);
    res.set(bhttp::field::server, srv_.opts.server_name);
    res.prepare_payload();
    phase_ = Phase::kWriting;
    response_.emplace(std::move(res));
    serializer_.emplace(*response_);
    if constexpr (!kTls) {
      // A response almost always fits the socket's send buffer: write it now, without a
      // handler hop or a deadline timer; only what does not fit is written asynchronously.
      beast::error_code ec;
      auto& sock = lowest().socket();
      if (!sock.non_blocking()) sock.non_blocking(true, ec);
      if (!ec) bhttp::write(sock, *serializer_, ec);
      if (ec != asio::error::would_block && ec != asio::error::try_again) return on_written(ec, keep);
    }
    lowest().expires_after(ns(srv_.opts.write_timeout));
    bhttp::async_write(stream_, *serializer_, [self = self(), keep](beast::error_code ec, size_t) {
      self->on_written(ec, keep);
    });
  }

  void on_written(beast::error_code ec, bool keep) {
    if (ec == beast::error::timeout) ++srv_.timeouts;
    srv_.observe(method_, target_, response_->result_int(), start_ns_);
    serializer_.reset();
    response_.reset();
    start_ns_ = 0;
    if (ec || !keep) return close();
    wait_for_request();
  }

  // No TLS close_notify: every response is delimited by Content-Length, so a truncation
  // cannot pass for a whole answer, and a peer that stopped reading cannot hold us.
  void close() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest().socket().close(ec);
  }

  std::shared_ptr<ssl::context> tls_;  // kept alive for the stream (null when plain)
  Stream stream_;
  asio::steady_timer body_timer_;
  bool body_expired_ = false;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<Response> response_;  // the one being written (no allocation per request)
  std::optional<bhttp::response_serializer<bhttp::string_body>> serializer_;  // of *response_
  Phase phase_ = Phase::kIdle;
  bool keep_alive_ = true;
  TimeNs start_ns_ = 0;
  std::string method_, target_;
};

void Server::Impl::accept() {
  acceptor.async_accept(asio::make_strand(ioc),
                        [this](boost::system::error_code ec, tcp::socket socket) {
                          on_accept(ec, std::move(socket));
                        });
}

std::shared_ptr<Connection> Server::Impl::make_connection(tcp::socket&& socket, std::string client) {
  if (auto ctx = tls_context())
    return std::make_shared<Session<TlsStream>>(*this, std::move(socket), std::move(client), std::move(ctx));
  return std::make_shared<Session<PlainStream>>(*this, std::move(socket), std::move(client), nullptr);
}

void Server::Impl::on_accept(boost::system::error_code ec, tcp::socket socket) {
  if (stopping) return;
  if (ec) {
    if (ec == asio::error::operation_aborted) return;
    // Out of file descriptors and the like: back off briefly instead of spinning.
    auto timer = std::make_shared<asio::steady_timer>(acceptor.get_executor(), std::chrono::milliseconds(50));
    timer->async_wait([this, timer](boost::system::error_code) {
      if (!stopping) accept();
    });
    return;
  }
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  auto peer = socket.remote_endpoint(ignored);
  auto conn = make_connection(std::move(socket), ignored ? std::string() : peer.address().to_string());
  std::shared_ptr<Connection> victim;
  switch (admit(conn, victim)) {
    case Admission::kAdmit:
      ++accepted;
      asio::dispatch(conn->executor(), [conn] { conn->start(); });
      break;
    case Admission::kFull:
      ++rejected;
      asio::dispatch(conn->executor(), [conn] { conn->refuse("too many connections"); });
      break;
    case Admission::kClientCap:
      ++rejected_per_client;
      asio::dispatch(conn->executor(), [conn] { conn->refuse("too many connections from this address"); });
      break;
  }
  if (victim) asio::dispatch(victim->executor(), [victim] { victim->shed(); });
  accept();
}

// Registers c and decides whether it is served; at max_connections it picks the
// connection to shed for it.
Server::Impl::Admission Server::Impl::admit(const std::shared_ptr<Connection>& c,
                                            std::shared_ptr<Connection>& victim) {
  std::lock_guard lock(mu);
  Admission verdict = Admission::kAdmit;
  size_t& from_client = per_client[c->client()];
  if (opts.max_connections_per_client > 0 && from_client >= opts.max_connections_per_client) {
    verdict = Admission::kClientCap;
  } else if (conns.size() >= opts.max_connections) {
    victim = pop_oldest_waiting();
    if (!victim) verdict = Admission::kFull;
  }
  ++from_client;
  conns.emplace(c.get(), c);
  ++active;
  return verdict;
}

// Under mu.
void Server::Impl::unlink_waiting(Connection& c) {
  (c.waiting_prev ? c.waiting_prev->waiting_next : waiting_head) = c.waiting_next;
  (c.waiting_next ? c.waiting_next->waiting_prev : waiting_tail) = c.waiting_prev;
  c.waiting_prev = c.waiting_next = nullptr;
  c.waiting = false;
}

// Under mu.
std::shared_ptr<Connection> Server::Impl::pop_oldest_waiting() {
  while (waiting_head) {
    Connection* c = waiting_head;
    unlink_waiting(*c);
    if (auto it = conns.find(c); it != conns.end())
      if (auto p = it->second.lock()) return p;
  }
  return nullptr;
}

void Server::Impl::set_waiting(Connection& c, bool on) {
  std::lock_guard lock(mu);
  if (c.waiting == on) return;
  if (!on) return unlink_waiting(c);
  c.waiting_prev = waiting_tail;
  c.waiting_next = nullptr;
  (waiting_tail ? waiting_tail->waiting_next : waiting_head) = &c;
  waiting_tail = &c;
  c.waiting = true;
}

void Server::Impl::remove(Connection* c) {
  {
    std::lock_guard lock(mu);
    if (c->waiting) unlink_waiting(*c);
    if (auto it = per_client.find(c->client()); it != per_client.end() && --it->second == 0)
      per_client.erase(it);
    conns.erase(c);
    --active;
  }
  if (stopping) finish_if_drained();
}

void Server::Impl::finish_if_drained() {
  std::lock_guard lock(mu);
  if (!conns.empty() || finished.exchange(true)) return;
  drain_timer.cancel();
  work.reset();
  ioc.stop();
}

std::vector<std::shared_ptr<Connection>> Server::Impl::live() {
  std::vector<std::shared_ptr<Connection>> out;
  std::lock_guard lock(mu);
  for (auto& [p, w] : conns)
    if (auto c = w.lock()) out.push_back(std::move(c));
  return out;
}

void Server::Impl::stop() {
  if (stopping.exchange(true)) return;
  asio::post(acceptor.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor.close(ec);
  });
  for (auto& c : live()) asio::post(c->executor(), [c] { c->on_stop(); });
  drain_timer.expires_after(ns(opts.drain_timeout));
  drain_timer.async_wait([this](boost::system::error_code ec) {
    if (ec) return;  // cancelled: drained in time
    clean = false;
    std::vector<std::shared_ptr<Connection>> rest;
    {
      std::lock_guard lock(mu);
      for (auto& [p, w] : conns)
        if (auto c = w.lock()) rest.push_back(std::move(c));
      finished = true;
    }
    for (auto& c : rest) asio::post(c->executor(), [c] { c->force_close(); });
    work.reset();
    ioc.stop();
  });
  finish_if_drained();
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  // Pending handlers (and the connections they own) are destroyed with the io_context;
  // mark the server finished so their unregistering does not touch the timer.
  impl_->finished = true;
  impl_->stopping = true;
  impl_->ioc.stop();
}

Result<std::unique_ptr<Server>> Server::listen(const ServerOptions& opts, Handler handler,
                                               Observer observer) {
  if (opts.threads < 1) return Status::usage("--threads must be at least 1");
  if (opts.tls_cert.empty() != opts.tls_key.empty())
    return Status::usage("--tls-cert and --tls-key go together");
  auto impl = std::make_unique<Impl>(opts, std::move(handler), std::move(observer));
  if (!opts.tls_cert.empty()) {
    auto ctx = load_tls(opts.tls_cert, opts.tls_key);
    if (!ctx) return ctx.status();
    impl->tls = std::move(ctx).value();
  }
  auto ep = parse_listen(impl->ioc, opts.listen);
  if (!ep) return ep.status();
  boost::system::error_code ec;
  auto& a = impl->acceptor;
  a.open(ep->protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(*ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::unavailable("listen on " + opts.listen + ": " + ec.message());
  impl->bound = a.local_endpoint(ec);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

std::string Server::address() const {
  const auto& b = impl_->bound;
  std::string host = b.address().to_string();
  if (b.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(b.port());
}

std::uint16_t Server::port() const { return impl_->bound.port(); }
std::string Server::url() const { return (tls() ? "https://" : "http://") + address(); }
bool Server::tls() const { return !impl_->opts.tls_cert.empty(); }

Status Server::reload_tls() {
  if (!tls()) return Status::ok();
  auto ctx = load_tls(impl_->opts.tls_cert, impl_->opts.tls_key);
  if (!ctx) {
    ++impl_->tls_reload_failures;
    return ctx.status();
  }
  std::lock_guard lock(impl_->tls_mu);
  impl_->tls = std::move(ctx).value();
  ++impl_->tls_reloads;
  return Status::ok();
}

bool Server::run() {
  asio::post(impl_->acceptor.get_executor(), [this] {
    if (!impl_->stopping) impl_->accept();
  });
  std::vector<std::thread> threads;
  for (int i = 1; i < impl_->opts.threads; ++i) threads.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  for (auto& t : threads) t.join();
  return impl_->clean;
}

void Server::stop() { impl_->stop(); }
bool Server::stopping() const { return impl_->stopping; }
boost::asio::io_context& Server::context() { return impl_->ioc; }

ServerStats Server::stats() const {
  ServerStats s;
  s.connections_accepted = impl_->accepted;
  s.connections_rejected = impl_->rejected;
  s.connections_rejected_per_client = impl_->rejected_per_client;
  s.connections_shed = impl_->shed;
  s.connections_active = impl_->active;
  s.timeouts = impl_->timeouts;
  s.head_timeouts = impl_->head_timeouts;
  s.body_timeouts = impl_->body_timeouts;
  s.bad_requests = impl_->bad_requests;
  s.tls_handshake_failures = impl_->tls_failures;
  s.tls_reloads = impl_->tls_reloads;
  s.tls_reload_failures = impl_->tls_reload_failures;
  return s;
}

}  // namespace ep::http
