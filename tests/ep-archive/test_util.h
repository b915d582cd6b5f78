#pragma once
// Helpers shared by the ep-archive and ep-sim tests.
#include <dirent.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace ep::test {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ep-archive-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Files below dir whose name contains `part`.
inline int count_files(const std::string& dir, const std::string& part) {
  int n = 0;
  std::error_code ec;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir, ec))
    if (e.path().filename().string().find(part) != std::string::npos) ++n;
  return n;
}

}  // namespace ep::test

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>
#include <cctype>
#include <utility>
#include <vector>

namespace ep::test {

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs argv[0] with `input` on stdin and extra environment entries ("K=V"); collects
// stdout, stderr and the exit code (128+signal when killed).
inline RunResult run(const std::vector<std::string>& argv, const std::string& input = {},
                     const std::vector<std::string>& env = {}) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  std::thread feeder([fd = in[1], &input] {
    size_t off = 0;
    while (off < input.size()) {
      ssize_t n = ::write(fd, input.data() + off, input.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(fd);
  });
  RunResult r;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  feeder.join();
  int st = 0;
  ::waitpid(pid, &st, 0);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

inline std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    if (nl == std::string::npos) nl = s.size();
    out.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

// Long options listed by `--help` (before its example) that the roff man page lacks.
inline std::vector<std::string> options_missing_from_man(std::string help, const std::string& man,
                                                          int* found = nullptr) {
  help = help.substr(0, help.find("Example:"));
  std::vector<std::string> missing;
  size_t pos = 0;
  int n = 0;
  while ((pos = help.find("--", pos)) != std::string::npos) {
    size_t end = pos + 2;
    while (end < help.size() && (std::isalnum(static_cast<unsigned char>(help[end])) || help[end] == '-')) ++end;
    std::string opt = help.substr(pos, end - pos);
    pos = end;
    if (opt.size() <= 2) continue;
    std::string roff = opt;
    for (size_t i = 0; (i = roff.find('-', i)) != std::string::npos; i += 2) roff.replace(i, 1, "\\-");
    if (man.find(roff) == std::string::npos) missing.push_back(opt);
    n++;
  }
  if (found) *found = n;
  return missing;
}

}  // namespace ep::test
