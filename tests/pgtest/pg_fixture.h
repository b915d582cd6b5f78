#pragma once
// Test helpers for Postgres tests (label "postgres"): a throwaway database per fixture
// on the server pg_virtualenv provides (PGHOST, PGPORT, PGUSER, PGPASSWORD), a cluster
// of our own (initdb + pg_ctl) for tests that stop and start the server, and a child
// process runner. Tests FAIL, never skip, when Postgres cannot be reached.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ep/pg.h"
#include "ep/schema.h"

// ASSERT/EXPECT that an ep::Status (or Result) is ok, printing its message if not.
#define EP_ASSERT_OK(expr)                                        \
  do {                                                            \
    auto ep_s_ = (expr);                                          \
    ASSERT_TRUE(ep_s_.is_ok()) << #expr << ": " << ::eptest::message_of(ep_s_); \
  } while (0)
#define EP_EXPECT_OK(expr)                                        \
  do {                                                            \
    auto ep_s_ = (expr);                                          \
    EXPECT_TRUE(ep_s_.is_ok()) << #expr << ": " << ::eptest::message_of(ep_s_); \
  } while (0)

namespace eptest {

inline std::string message_of(const ep::Status& s) { return s.message(); }
template <typename T>
std::string message_of(const ep::Result<T>& r) {
  return r.status().message();
}

inline std::string env_or(const char* name, const char* dflt) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : dflt;
}

// libpq keyword/value string for `dbname` on the server the environment points at.
inline std::string conninfo(const std::string& dbname) { return "dbname=" + dbname; }

// A database created for one test and dropped afterwards.
class TempDatabase {
 public:
  TempDatabase() {
    static std::atomic<int> counter{0};
    name_ = "ep_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 100000);
    auto admin = ep::pg::Conn::connect(conninfo(env_or("PGDATABASE", "postgres")), "ep-test");
    if (!admin) {
      ADD_FAILURE() << "Postgres is not reachable (run under pg_virtualenv): " << admin.status().message();
      return;
    }
    auto s = admin->run("CREATE DATABASE " + name_);
    if (!s) ADD_FAILURE() << s.message();
    ok_ = s.is_ok();
  }
  ~TempDatabase() {
    if (!ok_) return;
    auto admin = ep::pg::Conn::connect(conninfo(env_or("PGDATABASE", "postgres")), "ep-test");
    if (admin) (void)admin->run("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  std::string url() const { return conninfo(name_); }
  ep::pg::Conn connect() const {
    auto c = ep::pg::Conn::connect(url(), "ep-test");
    if (!c) {
      ADD_FAILURE() << c.status().message();
      return ep::pg::Conn();
    }
    return std::move(*c);
  }
  void migrate() const {
    auto c = connect();
    auto r = ep::schema::migrate(c);
    if (!r) ADD_FAILURE() << r.status().message();
  }

 private:
  std::string name_;
  bool ok_ = false;
};

inline std::int64_t count(ep::pg::Conn& c, const std::string& sql) {
  auto r = c.exec(sql);
  if (!r) {
    ADD_FAILURE() << sql << ": " << r.status().message();
    return -1;
  }
  return r->get_int(0, 0);
}

// Creates tenant `slug` (unless it exists), its device and metric; returns their ids.
struct SeriesIds {
  std::string tenant_id, device_id, metric_id;
};
inline SeriesIds create_series(ep::pg::Conn& c, const std::string& slug, const std::string& device,
                               const std::string& metric) {
  SeriesIds ids;
  auto r = c.exec(
      "WITH t AS (INSERT INTO tenants (slug) VALUES ($1) ON CONFLICT (slug) DO UPDATE SET slug = "
      "excluded.slug RETURNING tenant_id), "
      "d AS (INSERT INTO devices (tenant_id, external_id) SELECT tenant_id, $2 FROM t "
      "ON CONFLICT (tenant_id, external_id) DO UPDATE SET external_id = excluded.external_id "
      "RETURNING tenant_id, device_id) "
      "INSERT INTO metrics (tenant_id, device_id, name) SELECT tenant_id, device_id, $3 FROM d "
      "RETURNING tenant_id, device_id, metric_id",
      {slug, device, metric});
  if (!r || r->size() != 1) {
    ADD_FAILURE() << "create_series " << slug << "/" << device << "/" << metric << ": "
                  << (r ? "no row" : r.status().message());
    return ids;
  }
  return {r->str(0, 0), r->str(0, 1), r->str(0, 2)};
}

// A test with its own migrated database holding the series acme/d/m: c_ is connected,
// tenant_id_ and metric_id_ are its ids. A derived SetUp() calls this one first and
// returns when it failed (HasFatalFailure()).
class SeriesDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    db_.migrate();
    c_ = db_.connect();
    ASSERT_TRUE(c_.connected());
    auto ids = create_series(c_, "acme", "d", "m");
    tenant_id_ = ids.tenant_id;
    metric_id_ = ids.metric_id;
    ASSERT_FALSE(metric_id_.empty());
  }

  TempDatabase db_;
  ep::pg::Conn c_;
  std::string tenant_id_, metric_id_;
};

// A child process with stdin/stdout/stderr pipes (or files).
class Proc {
 public:
  // args[0] is the program. env entries "K=V" are added to the environment.
  Proc(std::vector<std::string> args, std::vector<std::string> env = {}, const std::string& stdin_file = "") {
    ::signal(SIGPIPE, SIG_IGN);  // a child that died must fail the test, not kill it
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) abort();
    pid_ = ::fork();
    if (pid_ == 0) {
      if (!stdin_file.empty()) {
        int fd = ::open(stdin_file.c_str(), O_RDONLY);
        ::dup2(fd, 0);
      } else {
        ::dup2(in[0], 0);
      }
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      for (auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    in_ = in[1];
    if (!stdin_file.empty()) close_stdin();
    out_ = out[0];
    err_ = err[0];
    // Drain stdout/stderr in the background so the child never blocks on a full pipe.
    tout_ = std::thread([this] { drain(out_, out_text_); });
    terr_ = std::thread([this] { drain(err_, err_text_); });
  }
  ~Proc() {
    close_stdin();
    if (pid_ > 0 && !waited_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
    if (tout_.joinable()) tout_.join();
    if (terr_.joinable()) terr_.join();
  }
  bool write(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::write(in_, s.data() + off, s.size() - off);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  void close_stdin() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }
  void kill(int sig) { ::kill(pid_, sig); }
  // Bytes written to the child's stdin that it has not read yet.
  int unread_stdin() const {
    int n = 0;
    return (in_ >= 0 && ::ioctl(in_, FIONREAD, &n) == 0) ? n : -1;
  }
  // Exit status (or 128+signal).
  int wait() {
    if (!waited_) {
      int st = 0;
      ::waitpid(pid_, &st, 0);
      waited_ = true;
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      if (tout_.joinable()) tout_.join();
      if (terr_.joinable()) terr_.join();
    }
    return status_;
  }
  // stderr so far, while the process runs.
  std::string err_so_far() {
    std::lock_guard lk(mu_);
    return err_text_;
  }
  const std::string& out() {
    wait();
    return out_text_;
  }
  const std::string& err() {
    wait();
    return err_text_;
  }

 private:
  void drain(int fd, std::string& into) {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      std::lock_guard lk(mu_);
      into.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
  }
  std::mutex mu_;
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  bool waited_ = false;
  int status_ = -1;
  std::string out_text_, err_text_;
  std::thread tout_, terr_;
};

// Runs a command to completion with stdin text; returns (status, stdout, stderr).
struct RunResult {
  int status;
  std::string out, err;
};
inline RunResult run(std::vector<std::string> args, const std::string& input = "",
                     std::vector<std::string> env = {}) {
  Proc p(std::move(args), std::move(env));
  p.write(input);
  p.close_stdin();
  int st = p.wait();
  return {st, p.out(), p.err()};
}

inline int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(s);
  return port;
}

// A Postgres 15 cluster of our own (initdb in a temp dir), for tests that stop and
// start the server. As root, the server runs as the "postgres" user (initdb refuses root).
class OwnCluster {
 public:
  OwnCluster() {
    char tmpl[] = "/tmp/ep-pgcluster-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    port_ = free_port();
    as_ = ::geteuid() == 0 ? "runuser -u postgres -- " : "";
    if (::geteuid() == 0) sh("chown postgres " + dir_);
    ok_ = sh(as_ + kBin + "initdb -D " + dir_ + "/data -U postgres -A trust >" + dir_ + "/initdb.log 2>&1") == 0;
    if (!ok_) {
      ADD_FAILURE() << "initdb failed; see " << dir_ << "/initdb.log";
      return;
    }
    ok_ = start();
  }
  ~OwnCluster() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool start() {
    int rc = sh(as_ + kBin + "pg_ctl -D " + dir_ + "/data -w -t 60 -l " + dir_ + "/data/server.log -o \"-p " +
                std::to_string(port_) + " -k " + dir_ + " -c listen_addresses=127.0.0.1 -c fsync=on\" start >/dev/null");
    if (rc != 0) ADD_FAILURE() << "pg_ctl start failed (" << dir_ << ")";
    return rc == 0;
  }
  bool stop(const char* mode = "fast") {
    return sh(as_ + kBin + "pg_ctl -D " + dir_ + "/data -w -m " + mode + " stop >/dev/null 2>&1") == 0;
  }
  bool ok() const { return ok_; }
  int port() const { return port_; }
  std::string url(const std::string& db = "postgres") const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + db;
  }

 private:
  static constexpr const char* kBin = "/usr/lib/postgresql/15/bin/";
  static int sh(const std::string& cmd) { return std::system(cmd.c_str()); }
  std::string dir_, as_;
  int port_ = 0;
  bool ok_ = false;
};

// A test with a cluster of its own (it may stop and start it) holding database "ep",
// migrated, with tenant acme; c_ is connected (reconnect() after a restart).
class OwnClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.ok());
    auto admin = ep::pg::Conn::connect(cluster_.url(), "ep-test");
    ASSERT_TRUE(admin) << admin.status().message();
    EP_ASSERT_OK(admin->run("CREATE DATABASE ep"));
    c_ = connect();
    EP_ASSERT_OK(ep::schema::migrate(c_));
    EP_ASSERT_OK(c_.run("INSERT INTO tenants (slug) VALUES ('acme')"));
  }
  ep::pg::Conn connect() {
    auto c = ep::pg::Conn::connect(cluster_.url("ep"), "ep-test");
    EXPECT_TRUE(c) << c.status().message();
    return c ? std::move(*c) : ep::pg::Conn();
  }
  // count() of sql on c_, reconnecting first when the server was restarted.
  std::int64_t count_now(const std::string& sql) {
    if (!c_.connected()) c_ = connect();
    return count(c_, sql);
  }
  OwnCluster cluster_;
  ep::pg::Conn c_;
};

// Polls `pred` every 20 ms until true or `timeout_ms` passes.
template <typename F>
bool eventually(F pred, int timeout_ms = 30000) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

}  // namespace eptest
