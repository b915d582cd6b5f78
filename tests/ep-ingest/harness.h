#pragma once
// Test harness for ep-ingest as a process: spawn it with arguments and environment,
// capture stdout/stderr in files, signal it, wait for it; and a small Beast HTTP client.
#include <sys/types.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ep::ingest::test {

std::string make_temp_dir();
std::string read_text(const std::string& path);
void write_text(const std::string& path, const std::string& text);
std::vector<std::string> lines_of(const std::string& text);

// Polls cond every 10 ms until it holds or the timeout passes (waits for an observable
// condition; never a fixed sleep).
bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout = std::chrono::seconds(10));

class Process {
 public:
  // stdin_path: file to read stdin from ("" = /dev/null); stdin_pipe: give the test a
  // pipe to write stdin to instead.
  Process(const std::vector<std::string>& args, const std::string& dir,
          const std::map<std::string, std::string>& env = {}, const std::string& stdin_path = "",
          bool stdin_pipe = false);
  ~Process();
  void signal(int sig);
  // Waits for exit; returns the exit status (128+sig when killed), nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  std::string out() const { return read_text(out_path_); }
  std::string err() const { return read_text(err_path_); }
  int stdin_fd() const { return stdin_fd_; }
  void close_stdin();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::string out_path_, err_path_;
  bool exited_ = false;
};

// Starts `ep-ingest --listen 127.0.0.1:0 …` and waits for its "listening on" line.
// wrapper: a command that execs its arguments (e.g. unshare), prepended to the argv.
class Server {
 public:
  Server(const std::string& dir, std::vector<std::string> extra_args,
         const std::map<std::string, std::string>& env = {},
         const std::vector<std::string>& wrapper = {});
  std::string host() const { return "127.0.0.1"; }
  unsigned short port() const { return port_; }
  Process& process() { return *proc_; }

 private:
  std::unique_ptr<Process> proc_;
  unsigned short port_ = 0;
};

struct Reply {
  unsigned status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  bool keep_alive = false;
};

// One HTTP/1.1 connection (keep-alive) to 127.0.0.1:port, from the loopback address
// `from` when given (127.0.0.2 …: another client as the server sees it).
class Client {
 public:
  explicit Client(unsigned short port, const std::string& from = "");
  Reply request(const std::string& method, const std::string& target, const std::string& body = "",
                const std::map<std::string, std::string>& headers = {});
  Reply post(const std::string& body, const std::map<std::string, std::string>& headers);
  boost::asio::ip::tcp::socket& socket() { return socket_; }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

// The pepper the tests run with, and a keys file writer using ep::keys.
inline constexpr const char* kPepper = "test-pepper-0123456789";
struct TestKey {
  std::string key, tenant;
  std::int64_t points_per_minute = 0;
  bool revoked = false, disabled = false;
  std::int64_t max_series = 0;
};
TestKey new_key(const std::string& tenant, std::int64_t ppm = 0);
void write_keys(const std::string& path, const std::vector<TestKey>& keys);

// A valid payload with n points, ts near now.
std::string payload(const std::string& device, int n = 1);
std::string now_rfc3339();

// A fixture with a fresh directory and a keys file holding one key of tenant "acme".
class KeyedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    keys_path_ = dir_ + "/keys.ndjson";
    key_ = new_key("acme");
    write_keys(keys_path_, {key_});
  }
  std::string dir_, keys_path_;
  TestKey key_;
};

}  // namespace ep::ingest::test
