#pragma once
// A real S3-compatible server (the npm package s3rver, installed in tests/node by
// scripts/test) on 127.0.0.1 and an ephemeral port, for the S3 backend tests. The tests
// FAIL when it cannot start: the S3 backend must be tested against a real server.
// Its log goes to a file: stored_objects() counts the PUTs that stored an object, as
// the server saw them. stop() and start() take it down and bring it back on the same
// port with the same data (an outage).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "test_util.h"

namespace ep::test {

class S3rver {
 public:
  static constexpr const char* kBucket = "edgepulse";
  static constexpr const char* kKey = "S3RVER";  // s3rver's fixed access key and secret

  S3rver() { start(); }
  ~S3rver() { stop(); }
  S3rver(const S3rver&) = delete;
  S3rver& operator=(const S3rver&) = delete;

  // Starts the server (again: on the port it had, with the same data).
  void start() {
    std::string bin = std::string(EP_NODE_DIR) + "/node_modules/.bin/s3rver";
    if (::access(bin.c_str(), X_OK) != 0) {
      error_ = bin + " not found: run 'npm install' in tests/node (scripts/test does)";
      return;
    }
    std::string log = log_path();
    size_t log_start = read_log().size();
    std::string data = dir_.path() + "/data";
    std::string port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (fd >= 0) ::dup2(fd, 1);
      // s3rver builds ListObjectsV2 continuation tokens with DES, which Node 17+ only
      // offers through OpenSSL's legacy provider.
      ::setenv("NODE_OPTIONS", "--openssl-legacy-provider", 1);
      ::execl(bin.c_str(), bin.c_str(), "-d", data.c_str(), "-a", "127.0.0.1", "-p", port.c_str(),
              "--configure-bucket", kBucket, static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Wait for "S3rver listening on 127.0.0.1:PORT" in what this start logged.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::string buf;
    while (std::chrono::steady_clock::now() < deadline) {
      buf = read_log().substr(log_start);
      auto at = buf.find("listening on 127.0.0.1:");
      if (at != std::string::npos && buf.find('\n', at) != std::string::npos) {
        port_ = std::stoi(buf.substr(at + 23));
        error_.clear();
        return;
      }
      int st;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling the log for the line
    }
    error_ = "s3rver did not start: " + buf;
  }
  // Stops the server (SIGTERM, waits for it).
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int st;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }
  bool ok() const { return port_ > 0 && pid_ > 0 && error_.empty(); }
  const std::string& error() const { return error_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // PUT requests that stored an object or a multipart part, as the server logged them
  // ("Stored object ...", "Stored part ..."), since the first start.
  size_t stored_puts() const {
    std::string log = read_log();
    size_t n = 0;
    for (const char* what : {"Stored object \"", "Stored part "})
      for (size_t at = 0; (at = log.find(what, at)) != std::string::npos; ++at) ++n;
    return n;
  }
  // The directory s3rver keeps its buckets in.
  std::string data_dir() const { return dir_.path() + "/data"; }

 private:
  std::string log_path() const { return dir_.path() + "/s3rver.log"; }
  std::string read_log() const {
    std::ifstream f(log_path());
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string error_;
};

}  // namespace ep::test
