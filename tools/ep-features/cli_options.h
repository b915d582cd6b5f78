#pragma once
// The command line of ep-features (docs/architecture.md §12) on top of ep::Cli: builds Options,
// StreamOptions and DbOptions, and checks them (misuse → 64).
#include <optional>
#include <string>
#include <vector>

#include "ep/cli.h"
#include "options.h"
#include "pg_io.h"
#include "run.h"

namespace ep::features {

class CliOptions {
 public:
  CliOptions();
  // Returns an exit code when the program should stop now (help, version, misuse).
  std::optional<int> parse(int argc, const char* const* argv);

  const Options& options() const { return opts_; }
  StreamOptions stream() { return {cli_.common().strict, cli_.common().progress()}; }
  const std::vector<std::string>& inputs() { return cli_.common().inputs; }
  size_t max_line_bytes() const { return max_line_bytes_; }
  bool db_mode() const { return db_given_; }
  const DbOptions& db() const { return db_; }
  // The --help text (the man page test checks every option is documented).
  std::string help() { return cli_.app().help(); }

 private:
  Status build();

  Cli cli_;
  Options opts_;
  DbOptions db_;
  bool db_given_ = false;
  bool partial_ = false;
  std::string window_ = "300s", hop_, interval_, lateness_ = "0s", season_ = "week",
              season_bucket_ = "1h";
  std::string since_, from_, to_;
  size_t max_line_bytes_ = kDefaultMaxLineBytes;
};

}  // namespace ep::features
