// Connection hygiene of the shared HTTP server, through ep-ingest over real sockets on
// loopback: slowloris above --max-connections from many source addresses (127.0.0.2 …),
// the per-address cap, the head deadline from accept, and shedding at the limit.
#include <gtest/gtest.h>
#include <poll.h>

#include <boost/asio/write.hpp>

#include <atomic>
#include <memory>
#include <thread>

#include "harness.h"

namespace ep::ingest::test {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

class Hygiene : public KeyedTest {
 protected:
  std::unique_ptr<Server> start(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--keys", keys_path_, "--threads", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Server>(dir_, args);
  }
  std::map<std::string, std::string> auth() const { return {{"X-API-Key", key_.key}}; }
  std::string metrics(unsigned short port) { return Client(port).request("GET", "/metrics").body; }

};

// Whether the server closes the socket within `limit` (a bound on the wait, not a timing
// assertion): readable, and the read ends the stream.
bool closed_by_server(tcp::socket& s, std::chrono::seconds limit) {
  pollfd p{s.native_handle(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(limit.count() * 1000)) != 1) return false;
  char b[512];
  boost::system::error_code ec;
  while (true) {
    s.read_some(asio::buffer(b), ec);
    if (ec) return ec == asio::error::eof || ec == asio::error::connection_reset;
  }
}

bhttp::response<bhttp::string_body> read_response(tcp::socket& s) {
  boost::beast::flat_buffer buf;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(s, buf, res);
  return res;
}

// Slowloris: `per_address` connections from each of 127.0.0.2 … 127.0.0.(1+addresses),
// each sending one more header byte every round and reconnecting when the server closes it.
class Slowloris {
 public:
  Slowloris(unsigned short port, int addresses, int per_address) : port_(port) {
    for (int a = 0; a < addresses; ++a)
      for (int i = 0; i < per_address; ++i) slots_.push_back({"127.0.0." + std::to_string(2 + a), nullptr});
    thread_ = std::thread([this] { run(); });
  }
  ~Slowloris() {
    stop_ = true;
    thread_.join();
  }
  int rounds() const { return rounds_; }

 private:
  struct Slot {
    std::string from;
    std::unique_ptr<tcp::socket> socket;
  };
  void run() {
    static const std::string kHead = "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    for (size_t byte = 0; !stop_; ++byte) {
      for (auto& slot : slots_) {
        boost::system::error_code ec;
        if (!slot.socket) {
          slot.socket = std::make_unique<tcp::socket>(ioc_);
          slot.socket->open(tcp::v4(), ec);
          if (!ec) slot.socket->bind(tcp::endpoint(asio::ip::make_address(slot.from), 0), ec);
          if (!ec) slot.socket->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
        }
        char c = byte < kHead.size() ? kHead[byte] : 'a';
        if (!ec) asio::write(*slot.socket, asio::buffer(&c, 1), ec);
        if (ec) slot.socket.reset();  // closed by the server (shed): come back
      }
      ++rounds_;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the attack's pace
    }
  }
  asio::io_context ioc_;
  unsigned short port_;
  std::vector<Slot> slots_;
  std::atomic<bool> stop_{false};
  std::atomic<int> rounds_{0};
  std::thread thread_;
};

TEST_F(Hygiene, NormalClientIsServedWhileSlowlorisHoldsTwiceTheConnectionLimit) {
  // The head deadline is long on purpose: shedding, not the deadline, must make room.
  auto s = start({"--max-connections", "40", "--max-connections-per-client", "8", "--header-timeout", "60s"});
  Slowloris attack(s->port(), 10, 8);
  ASSERT_TRUE(wait_until([&] { return attack.rounds() >= 3; }));
  for (int i = 0; i < 20; ++i) {
    Client c(s->port());
    Reply r = c.post(payload("d" + std::to_string(i)), auth());
    EXPECT_EQ(r.status, 202u) << "request " << i << ": " << r.body;
  }
  std::string m = metrics(s->port());
  EXPECT_EQ(m.find("ep_ingest_connections_shed_total 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("ep_ingest_connections_rejected_total 0\n"), std::string::npos) << m;
}

TEST_F(Hygiene, ConnectionOverThePerAddressCapIsRefusedWhileAnotherAddressGetsThrough) {
  auto s = start({"--max-connections-per-client", "3"});
  std::vector<std::unique_ptr<Client>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<Client>(s->port(), "127.0.0.2"));
    ASSERT_EQ(held.back()->request("GET", "/v1/health").status, 200u);
  }
  Client fourth(s->port(), "127.0.0.2");
  auto res = read_response(fourth.socket());
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_NE(res.body().find("too many connections from this address"), std::string::npos) << res.body();
  EXPECT_TRUE(closed_by_server(fourth.socket(), std::chrono::seconds(10)));
  Client other(s->port(), "127.0.0.3");
  EXPECT_EQ(other.post(payload("d1"), auth()).status, 202u);
  // The held connections are still served.
  EXPECT_EQ(held[0]->request("GET", "/v1/health").status, 200u);
  std::string m = metrics(s->port());
  EXPECT_NE(m.find("ep_ingest_connections_rejected_per_client_total 1\n"), std::string::npos) << m;
}

TEST_F(Hygiene, HeadDeadlineRunsFromAcceptAndClosesAnUnfinishedHead) {
  auto s = start({"--header-timeout", "1s", "--idle-timeout", "60s"});
  Client silent(s->port());  // sends nothing at all
  Client partial(s->port());
  asio::write(partial.socket(), asio::buffer(std::string("POST /v1/ingest HTTP/1.1\r\nHost: x\r\n")));
  EXPECT_TRUE(closed_by_server(silent.socket(), std::chrono::seconds(20)));
  EXPECT_TRUE(closed_by_server(partial.socket(), std::chrono::seconds(20)));
  // The deadline closes the socket before the server counts it: poll the counter.
  std::string m;
  EXPECT_TRUE(wait_until([&] {
    m = metrics(s->port());
    return m.find("ep_ingest_head_timeouts_total 2\n") != std::string::npos;
  })) << m;
}

TEST_F(Hygiene, IdleKeepAliveConnectionIsShedForANewClientAtTheLimit) {
  auto s = start({"--max-connections", "2"});
  Client a(s->port()), b(s->port());
  ASSERT_EQ(a.request("GET", "/v1/health").status, 200u);
  ASSERT_EQ(b.request("GET", "/v1/health").status, 200u);
  Client c(s->port());
  EXPECT_EQ(c.post(payload("d1"), auth()).status, 202u);
  // One idle connection made room (the longest idle; which of the two that is depends on
  // when the server finished writing each answer), the other is still served.
  pollfd p[2] = {{a.socket().native_handle(), POLLIN, 0}, {b.socket().native_handle(), POLLIN, 0}};
  ASSERT_EQ(::poll(p, 2, 10000), 1) << "exactly one idle connection is closed";
  Client& shed = p[0].revents ? a : b;
  Client& kept = p[0].revents ? b : a;
  EXPECT_TRUE(closed_by_server(shed.socket(), std::chrono::seconds(10)));
  EXPECT_EQ(kept.request("GET", "/v1/health").status, 200u);
  // Asked on c: a new connection would shed another one.
  std::string m = c.request("GET", "/metrics").body;
  EXPECT_NE(m.find("ep_ingest_connections_shed_total 1\n"), std::string::npos) << m;
}

TEST_F(Hygiene, ConnectionsBusyWithRequestsAreNotShedAndTheNewcomerGets503) {
  auto s = start({"--max-connections", "2"});
  std::string head = "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: " +
                     key_.key + "\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n";
  Client a(s->port()), b(s->port());
  for (Client* c : {&a, &b}) {
    asio::write(c->socket(), asio::buffer(head));
    // "100 Continue": the server has the head; the request is in progress.
    char buf[64];
    size_t n = c->socket().read_some(asio::buffer(buf));
    ASSERT_EQ(std::string(buf, n).rfind("HTTP/1.1 100", 0), 0u) << std::string(buf, n);
  }
  Client c(s->port());
  auto res = read_response(c.socket());
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
}

}  // namespace
}  // namespace ep::ingest::test
