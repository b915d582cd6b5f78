#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/beast/core/flat_buffer.hpp>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "ep/crypto.h"
#include "ep/keys.h"
#include "ep/time.h"

namespace ep::ingest::test {

namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

std::string make_temp_dir() {
  std::string tmpl = (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : "/tmp") +
                     "/ep-ingest-test-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

Process::Process(const std::vector<std::string>& args, const std::string& dir,
                 const std::map<std::string, std::string>& env, const std::string& stdin_path,
                 bool stdin_pipe) {
  static int counter = 0;
  std::string tag = std::to_string(++counter);
  out_path_ = dir + "/stdout." + tag;
  err_path_ = dir + "/stderr." + tag;
  int pipefd[2] = {-1, -1};
  if (stdin_pipe && ::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int in = stdin_pipe ? pipefd[0] : ::open(stdin_path.empty() ? "/dev/null" : stdin_path.c_str(), O_RDONLY);
    int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (stdin_pipe) {
    ::close(pipefd[0]);
    stdin_fd_ = pipefd[1];
  }
}

Process::~Process() {
  close_stdin();
  if (!exited_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st;
    ::waitpid(pid_, &st, 0);
  }
}

void Process::close_stdin() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  stdin_fd_ = -1;
}

void Process::signal(int sig) { ::kill(pid_, sig); }

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  int st = 0;
  bool done = wait_until(
      [&] {
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        return r == pid_;
      },
      timeout);
  if (!done) return std::nullopt;
  exited_ = true;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  return 128 + WTERMSIG(st);
}

Server::Server(const std::string& dir, std::vector<std::string> extra_args,
               const std::map<std::string, std::string>& env,
               const std::vector<std::string>& wrapper) {
  std::vector<std::string> args = wrapper;
  args.insert(args.end(), {EP_INGEST_BIN, "--listen", "127.0.0.1:0"});
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  auto e = env;
  e.emplace("API_KEY_HASH_SALT", kPepper);
  proc_ = std::make_unique<Process>(args, dir, e);
  std::string err;
  bool up = wait_until([&] {
    err = proc_->err();
    return err.find("listening on http") != std::string::npos ||
           proc_->wait(std::chrono::milliseconds(0)).has_value();
  });
  // "listening on http://127.0.0.1:PORT" or "https://…" under --tls-cert.
  const std::string host = "://127.0.0.1:";
  size_t at = err.find(host, err.find("listening on http"));
  if (!up || at == std::string::npos) throw std::runtime_error("ep-ingest did not start: " + err);
  port_ = static_cast<unsigned short>(std::stoi(err.substr(at + host.size())));
}

Client::Client(unsigned short port, const std::string& from) : socket_(ioc_) {
  if (!from.empty()) {
    socket_.open(tcp::v4());
    socket_.bind(tcp::endpoint(boost::asio::ip::make_address(from), 0));
  }
  socket_.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
}

Reply Client::request(const std::string& method, const std::string& target, const std::string& body,
                      const std::map<std::string, std::string>& headers) {
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  if (!body.empty() || method == "POST") req.prepare_payload();
  bhttp::write(socket_, req);
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 << 20);
  bhttp::read(socket_, buffer_, parser);
  auto res = parser.release();
  Reply r;
  r.status = res.result_int();
  r.body = res.body();
  r.keep_alive = res.keep_alive();
  for (const auto& f : res) r.headers[std::string(f.name_string())] = std::string(f.value());
  return r;
}

Reply Client::post(const std::string& body, const std::map<std::string, std::string>& headers) {
  auto h = headers;
  h.emplace("Content-Type", "application/json");
  return request("POST", "/v1/ingest", body, h);
}

TestKey new_key(const std::string& tenant, std::int64_t ppm) {
  return TestKey{keys::generate_key(), tenant, ppm};
}

void write_keys(const std::string& path, const std::vector<TestKey>& ks) {
  std::vector<keys::KeyEntry> entries;
  for (const auto& k : ks) {
    keys::KeyEntry e;
    auto parsed = keys::parse_key(k.key);
    e.prefix = std::string(parsed->prefix);
    e.hash = keys::hash_key(kPepper, k.key);
    e.tenant = k.tenant;
    e.created_at = now_ns();
    if (k.revoked) e.revoked_at = now_ns();
    e.tenant_disabled = k.disabled;
    e.points_per_minute = k.points_per_minute;
    e.max_series = k.max_series;
    entries.push_back(e);
  }
  auto s = keys::save_keys_file(path, entries);
  if (!s.is_ok()) throw std::runtime_error(s.message());
}

std::string now_rfc3339() { return format_rfc3339(now_ns()); }

std::string payload(const std::string& device, int n) {
  std::string ts = now_rfc3339();
  std::string s = R"({"device_external_id":")" + device + R"(","metrics":[)";
  for (int i = 0; i < n; ++i) {
    if (i) s += ',';
    s += R"({"name":"m)" + std::to_string(i) + R"(","ts":")" + ts + R"(","value":)" +
         std::to_string(i) + R"(.5,"unit":"V"})";
  }
  return s + "]}";
}

}  // namespace ep::ingest::test
