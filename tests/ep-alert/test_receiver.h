#pragma once
// A real HTTP receiver on 127.0.0.1 for ep-alert's tests (Boost.Beast's parser), scripted
// per request: answer a status (with headers such as Retry-After), hang until stopped
// (the client times out), hold the answer until release(), or close the connection in
// the middle of the response.
// Tests wait on received requests with a condition variable, never with sleeps.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ep::alert::testing {

struct Action {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  bool hang = false;                // never answer; hold the connection until stop()
  bool close_mid_response = false;  // send half a response, then close
  bool hold = false;                // answer `status` only once release() is called
  static Action reply(int status) { return Action{status, {}, false, false, false}; }
  static Action retry_after(int status, std::string value) {
    return Action{status, {{"Retry-After", std::move(value)}}, false, false, false};
  }
  static Action hang_up() { return Action{0, {}, true, false, false}; }
  static Action cut() { return Action{200, {}, false, true, false}; }
  static Action held(int status) { return Action{status, {}, false, false, true}; }
};

struct Received {
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string raw;  // the request as received (request line, headers, body)
  std::chrono::steady_clock::time_point at;
  int answered = 0;  // status sent back (0: hung or cut)
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class TestReceiver {
 public:
  // Listens on `host`, a loopback address (127.0.0.0/8): tests send nowhere else.
  explicit TestReceiver(const std::string& host = "127.0.0.1");
  ~TestReceiver();
  TestReceiver(const TestReceiver&) = delete;
  TestReceiver& operator=(const TestReceiver&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path = "/hook") const;
  // Actions for the next requests, in order; afterwards every request gets `fallback`.
  void script(std::vector<Action> actions, Action fallback = Action::reply(200));
  // Waits until at least n requests arrived; false on timeout.
  bool wait_for(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(20));
  std::vector<Received> received() const;
  size_t count() const;
  // Lets the held requests (Action::held) be answered, and every later one at once.
  void release();
  void stop();

 private:
  void accept_loop();
  void serve(int fd);

  std::string host_;
  int listen_fd_ = -1;
  int port_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Action> script_;
  Action fallback_ = Action::reply(200);
  std::vector<Received> received_;
  std::vector<int> conns_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
  bool stopping_ = false;
  bool released_ = false;
};

}  // namespace ep::alert::testing
