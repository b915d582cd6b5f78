#pragma once
// The ep-admin sub-command table (docs/conventions.md 3): one entry per command drives both the
// CLI11 registration (and so --help) and dispatch.
#include <string>
#include <vector>

#include "admin.h"
#include "ep/cli.h"

namespace ep::admin {

using CommandFn = Status (*)(const Options&, Output&);

struct Command {
  const char* group;    // "" for top level, else "tenant", "plan", "key"
  const char* name;     // "add"
  const char* summary;  // one line for --help
  CommandFn fn;
  unsigned flags;       // which options the command takes (kOpt* bits)
};

const std::vector<Command>& commands();

// Registers every command on cli.app(), binding options to `o`. After parsing,
// selected() returns the command that was chosen (or nullptr).
class Registry {
 public:
  Registry(Cli& cli, Options& o);
  const Command* selected() const;

 private:
  std::vector<std::pair<CLI::App*, const Command*>> subs_;
};

// "did you mean" for a mistyped sub-command: the closest known name within edit
// distance 2, or "".
std::string suggest(const std::string& word, const std::vector<std::string>& known);

}  // namespace ep::admin
