#pragma once
// The one CLI11 wrapper (docs/conventions.md 12): --help to stdout with exit 0, misuse to stderr
// with exit 64, the common options defined once, configuration precedence
// flag > environment > TOML > default applied to every option, the same help layout.
#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

#include "ep/config.h"

namespace ep {

struct CommonOptions {
  std::string config_path;
  std::string log_format = "text";
  bool progress_on = false;
  bool progress_off = false;
  bool strict = false;
  std::vector<std::string> inputs;  // [FILE...]; empty or "-" means stdin
  // --progress/--no-progress, else whether stderr is a terminal.
  bool progress() const;
};

class Cli {
 public:
  // tool: "ep-load". summary: one line. io: what it reads and writes.
  // example: one example pipeline shown at the end of --help.
  Cli(std::string tool, std::string summary, std::string io, std::string example);

  CLI::App& app() { return app_; }
  CommonOptions& common() { return common_; }
  const Config& config() const { return config_; }

  // Adds positional [FILE...] inputs to `sub` (or the main app).
  void add_inputs(CLI::App* sub = nullptr);
  // Adds --allow-egress CIDR (repeatable, comma-separated, $EP_ALLOW_EGRESS, TOML
  // allow-egress = [...]): the egress policy's allowlist (ep/egress.h).
  CLI::Option* add_allow_egress(std::vector<std::string>& cidrs);

  // Parses argv, then fills options not given on the command line from the environment
  // (CLI11 envname) and the config file. Sets up logging (tool name, --log-format).
  // Returns an exit code when the program should stop now (help, version, misuse).
  std::optional<int> parse(int argc, const char* const* argv);

  // Prints "ep-tool: <msg>" plus a --help hint on stderr and returns 64.
  int usage_error(const std::string& msg) const;

 private:
  void apply_config(CLI::App& app, const std::string& section);

  std::string tool_;
  CLI::App app_;
  CommonOptions common_;
  Config config_;
};

}  // namespace ep
