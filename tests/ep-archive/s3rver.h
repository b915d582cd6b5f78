#pragma once
// A real S3-compatible server (the npm package s3rver, installed in tests/node by
// scripts/test) on 127.0.0.1 and an ephemeral port, for the S3 backend tests. The tests
// FAIL when it cannot start: the S3 backend must be tested against a real server.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "test_util.h"

namespace ep::test {

class S3rver {
 public:
  static constexpr const char* kBucket = "edgepulse";
  static constexpr const char* kKey = "S3RVER";  // s3rver's fixed access key and secret

  S3rver() {
    std::string bin = std::string(EP_NODE_DIR) + "/node_modules/.bin/s3rver";
    if (::access(bin.c_str(), X_OK) != 0) {
      error_ = bin + " not found: run 'npm install' in tests/node (scripts/test does)";
      return;
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      error_ = "pipe failed";
      return;
    }
    std::string data = dir_.path() + "/data";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      // s3rver builds ListObjectsV2 continuation tokens with DES, which Node 17+ only
      // offers through OpenSSL's legacy provider.
      ::setenv("NODE_OPTIONS", "--openssl-legacy-provider", 1);
      ::execl(bin.c_str(), bin.c_str(), "-d", data.c_str(), "-a", "127.0.0.1", "-p", "0", "-s",
              "--configure-bucket", kBucket, static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    out_fd_ = fds[0];
    // Wait for "S3rver listening on 127.0.0.1:PORT".
    std::string buf;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, 500) <= 0) continue;
      char tmp[512];
      ssize_t n = ::read(out_fd_, tmp, sizeof tmp);
      if (n <= 0) break;
      buf.append(tmp, static_cast<size_t>(n));
      auto at = buf.find("listening on 127.0.0.1:");
      if (at != std::string::npos && buf.find('\n', at) != std::string::npos) {
        port_ = std::stoi(buf.substr(at + 23));
        return;
      }
    }
    error_ = "s3rver did not start: " + buf;
  }
  ~S3rver() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st;
      ::waitpid(pid_, &st, 0);
    }
    if (out_fd_ >= 0) ::close(out_fd_);
  }
  bool ok() const { return port_ > 0; }
  const std::string& error() const { return error_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  std::string error_;
};

}  // namespace ep::test
