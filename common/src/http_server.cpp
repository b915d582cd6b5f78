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

#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ep/json.h"

namespace ep::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
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

}  // namespace

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

class Connection;

class Server::Impl {
 public:
  Impl(const ServerOptions& o, Handler h, Observer obs)
      : opts(o), handler(std::move(h)), observer(std::move(obs)),
        acceptor(asio::make_strand(ioc)), drain_timer(ioc),
        work(asio::make_work_guard(ioc)) {}

  void accept();
  void on_accept(boost::system::error_code ec, tcp::socket socket);
  void stop();
  void add(const std::shared_ptr<Connection>& c);
  void remove(Connection* c);
  void finish_if_drained();
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
  std::atomic<std::uint64_t> accepted{0}, rejected{0}, active{0}, timeouts{0}, bad_requests{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> finished{false};
  std::atomic<bool> clean{true};
  asio::io_context ioc;
  tcp::acceptor acceptor;
  tcp::endpoint bound;
  asio::steady_timer drain_timer;
  asio::executor_work_guard<asio::io_context::executor_type> work;
};

// One client connection. Every operation runs on the connection's strand.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server::Impl& srv, tcp::socket&& socket) : srv_(srv), stream_(std::move(socket)) {}
  ~Connection() { srv_.remove(this); }

  void start() { wait_for_request(); }

  // Over the connection limit: one 503, then close.
  void reject() {
    Response res = make_error(11, false, 503, "unavailable", "too many connections");
    res.set(bhttp::field::retry_after, "1");
    send(std::move(res), /*close=*/true);
  }

  // Called (on the strand) when the server stops: an idle connection closes now; a busy
  // one finishes its request and closes after the response.
  void on_stop() {
    if (phase_ == Phase::kIdle) {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      stream_.socket().close(ec);
    }
  }
  void force_close() {
    beast::error_code ec;
    stream_.socket().close(ec);
  }
  asio::any_io_executor executor() { return stream_.get_executor(); }

 private:
  enum class Phase { kIdle, kHeader, kBody, kHandling, kWriting, kClosed };

  void wait_for_request() {
    phase_ = Phase::kIdle;
    if (srv_.stopping) return close();
    if (buffer_.size() > 0) return read_header();
    // Keep-alive idle wait: read whatever arrives first into the buffer the parser uses.
    stream_.expires_after(ns(srv_.opts.idle_timeout));
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->on_first_bytes(ec, n);
                            });
  }

  void on_first_bytes(beast::error_code ec, size_t n) {
    if (ec) {
      if (ec == beast::error::timeout) ++srv_.timeouts;
      return close();
    }
    buffer_.commit(n);
    read_header();
  }

  void read_header() {
    phase_ = Phase::kHeader;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(srv_.opts.max_header_bytes));
    parser_->body_limit(srv_.opts.max_body_bytes);
    stream_.expires_after(ns(srv_.opts.header_timeout));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               self->on_header(ec);
                             });
  }

  void on_header(beast::error_code ec) {
    start_ns_ = monotonic_ns();
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
      stream_.expires_after(ns(srv_.opts.write_timeout));
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue, sizeof kContinue - 1),
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(ns(srv_.opts.body_timeout));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->read_failed(ec);
                        self->dispatch();
                      });
  }

  void read_failed(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) return too_large();
    if (ec == beast::error::timeout) {
      ++srv_.timeouts;
      return close();
    }
    if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == asio::error::bad_descriptor)
      return close();
    ++srv_.bad_requests;
    unsigned status = ec == bhttp::error::header_limit ? 431 : 400;
    send(make_error(11, false, status, "bad_request", "malformed HTTP request: " + ec.message()),
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
    stream_.expires_never();
    Request req = parser_->release();
    parser_.reset();
    keep_alive_ = req.keep_alive();
    // The handler may answer from any thread; the answer hops back onto our strand
    // (dispatch: inline when the handler answers synchronously, on the strand already).
    Respond respond = [self = shared_from_this()](Response&& res) {
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
    response_ = std::make_unique<Response>(std::move(res));
    stream_.expires_after(ns(srv_.opts.write_timeout));
    bhttp::async_write(stream_, *response_,
                       [self = shared_from_this(), keep](beast::error_code ec, size_t) {
                         self->on_written(ec, keep);
                       });
  }

  void on_written(beast::error_code ec, bool keep) {
    if (ec == beast::error::timeout) ++srv_.timeouts;
    srv_.observe(method_, target_, response_->result_int(), start_ns_);
    response_.reset();
    start_ns_ = 0;
    if (ec || !keep) return close();
    wait_for_request();
  }

  void close() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  Server::Impl& srv_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::unique_ptr<Response> response_;
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
  auto conn = std::make_shared<Connection>(*this, std::move(socket));
  add(conn);
  if (active.load() > opts.max_connections) {
    ++rejected;
    asio::dispatch(conn->executor(), [conn] { conn->reject(); });
  } else {
    ++accepted;
    asio::dispatch(conn->executor(), [conn] { conn->start(); });
  }
  accept();
}

void Server::Impl::add(const std::shared_ptr<Connection>& c) {
  std::lock_guard lock(mu);
  conns.emplace(c.get(), c);
  ++active;
}

void Server::Impl::remove(Connection* c) {
  {
    std::lock_guard lock(mu);
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

void Server::Impl::stop() {
  if (stopping.exchange(true)) return;
  asio::post(acceptor.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor.close(ec);
  });
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(mu);
    for (auto& [p, w] : conns)
      if (auto c = w.lock()) live.push_back(std::move(c));
  }
  for (auto& c : live) asio::post(c->executor(), [c] { c->on_stop(); });
  live.clear();
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
  auto impl = std::make_unique<Impl>(opts, std::move(handler), std::move(observer));
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
  s.connections_active = impl_->active;
  s.timeouts = impl_->timeouts;
  s.bad_requests = impl_->bad_requests;
  return s;
}

}  // namespace ep::http
