#include "test_receiver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <sstream>
#include <stdexcept>

namespace ep::alert::testing {

namespace http = boost::beast::http;
using boost::asio::ip::tcp;

TestReceiver::TestReceiver(const std::string& host) : host_(host) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      (ntohl(addr.sin_addr.s_addr) >> 24) != 127)
    throw std::runtime_error("test receiver: " + host + " is not a loopback address");
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 128) != 0)
    throw std::runtime_error("test receiver: cannot listen on " + host);
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

TestReceiver::~TestReceiver() { stop(); }

std::string TestReceiver::url(const std::string& path) const {
  return "http://" + host_ + ":" + std::to_string(port_) + path;
}

void TestReceiver::script(std::vector<Action> actions, Action fallback) {
  std::lock_guard lk(mu_);
  script_.assign(actions.begin(), actions.end());
  fallback_ = std::move(fallback);
}

bool TestReceiver::wait_for(size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, timeout, [&] { return received_.size() >= n; });
}

std::vector<Received> TestReceiver::received() const {
  std::lock_guard lk(mu_);
  return received_;
}

size_t TestReceiver::count() const {
  std::lock_guard lk(mu_);
  return received_.size();
}

void TestReceiver::release() {
  {
    std::lock_guard lk(mu_);
    released_ = true;
  }
  cv_.notify_all();
}

void TestReceiver::stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (int fd : conns_) ::shutdown(fd, SHUT_RDWR);
  }
  cv_.notify_all();
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  for (auto& t : workers_) t.join();
  for (int fd : conns_) ::close(fd);
  ::close(listen_fd_);
}

void TestReceiver::accept_loop() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    std::lock_guard lk(mu_);
    if (stopping_) {
      if (fd >= 0) ::close(fd);
      return;
    }
    if (fd < 0) continue;
    conns_.push_back(fd);
    workers_.emplace_back([this, fd] { serve(fd); });
  }
}

void TestReceiver::serve(int fd) {
  boost::asio::io_context ioc;
  tcp::socket sock(ioc);
  boost::beast::error_code ec;
  sock.assign(tcp::v4(), ::dup(fd), ec);  // the original fd stays ours for stop()
  if (ec) return;
  boost::beast::flat_buffer buf;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(16 << 20);
    http::read(sock, buf, parser, ec);
    if (ec) break;
    const auto& req = parser.get();
    Received r;
    r.target = std::string(req.target());
    for (const auto& f : req) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = std::string(f.value());
    }
    r.body = req.body();
    std::ostringstream os;
    os << req.base();
    r.raw = os.str() + req.body();
    r.at = std::chrono::steady_clock::now();
    Action a;
    {
      std::unique_lock lk(mu_);
      if (script_.empty()) a = fallback_;
      else {
        a = script_.front();
        script_.pop_front();
      }
      r.answered = a.hang || a.close_mid_response ? 0 : a.status;
      received_.push_back(r);
      cv_.notify_all();
      if (a.hang) {
        cv_.wait(lk, [&] { return stopping_; });
        break;
      }
      if (a.hold) {
        cv_.wait(lk, [&] { return stopping_ || released_; });
        if (stopping_) break;
      }
    }
    if (a.close_mid_response) {
      static const char kHalf[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial";
      boost::asio::write(sock, boost::asio::buffer(kHalf, sizeof kHalf - 1), ec);
      break;
    }
    http::response<http::string_body> res{static_cast<http::status>(a.status), req.version()};
    for (const auto& [k, v] : a.headers) res.set(k, v);
    if (a.status != 204 && a.status != 304)  // those must not carry a body
      res.body() = a.status < 300 ? "ok\n" : "scripted failure\n";
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    http::write(sock, res, ec);
    if (ec || !req.keep_alive()) break;
  }
  sock.shutdown(tcp::socket::shutdown_both, ec);
  sock.close(ec);
}

}  // namespace ep::alert::testing
