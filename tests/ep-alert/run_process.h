#pragma once
// Runs the real ep-alert binary: stdin from a string, stdout/stderr captured, exit code.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;

namespace ep::alert::testing {

struct ProcResult {
  int exit = -1;
  std::string out, err;
  std::vector<std::string> out_lines() const {
    std::vector<std::string> v;
    std::istringstream is(out);
    for (std::string l; std::getline(is, l);) v.push_back(l);
    return v;
  }
};

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

inline void spit(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

// A fresh directory per test.
inline std::string test_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string d = ::testing::TempDir() + "ep_alert_" + info->test_suite_name() + "_" + info->name();
  std::string cmd = "rm -rf '" + d + "' && mkdir -p '" + d + "'";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("cannot create " + d);
  return d;
}

// A process started in the background; wait() collects it.
struct Process {
  pid_t pid = -1;
  std::string out, err;  // files its stdout and stderr go to
  ProcResult wait() {
    ProcResult r;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pid = -1;
    r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
};

// Starts argv with stdin from a string; `name` keeps the files of concurrent processes
// in one directory apart.
inline Process start_process(const std::vector<std::string>& argv, const std::string& stdin_text,
                             const std::string& dir, const std::string& name = "") {
  std::string in = dir + "/.stdin" + name, out = dir + "/.stdout" + name,
              err = dir + "/.stderr" + name;
  spit(in, stdin_text);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  Process p;
  int rc = posix_spawn(&p.pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + " failed");
  p.out = out;
  p.err = err;
  return p;
}

inline ProcResult run_process(const std::vector<std::string>& argv, const std::string& stdin_text,
                              const std::string& dir) {
  return start_process(argv, stdin_text, dir).wait();
}

}  // namespace ep::alert::testing
