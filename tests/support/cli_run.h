#pragma once
// Running a tool binary from a process-level test: stdin from a string, stdout and stderr
// captured through files in a per-process, per-test directory (so ctest -j and parallel
// build trees never collide).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "ep/fsutil.h"

namespace eptest {

struct Proc {
  int code = -1;
  std::string out, err;
};

// A fresh, empty directory <TempDir>/<prefix>_<pid>_<name>.
inline std::string fresh_dir(const std::string& prefix, const std::string& name) {
  std::string d = ::testing::TempDir() + "/" + prefix + "_" + std::to_string(::getpid()) + "_" + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// Runs `bin args` through the shell with stdin_text as its input.
inline Proc run_tool(const std::string& bin, const std::string& args, const std::string& stdin_text,
                     const std::string& dir) {
  std::string in = dir + "/stdin", out = dir + "/stdout", err = dir + "/stderr";
  { std::ofstream(in) << stdin_text; }
  std::string cmd = bin + " " + args + " <" + in + " >" + out + " 2>" + err;
  int st = std::system(cmd.c_str());
  Proc r;
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = *ep::fs::read_file(out);
  r.err = *ep::fs::read_file(err);
  return r;
}

}  // namespace eptest
