// ep-admin: schema migrations, tenants, plans, API keys, usage, retention.
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "admin.h"
#include "commands.h"
#include "ep/cli.h"
#include "ep/log.h"

namespace {

// "did you mean" for a mistyped sub-command before CLI11 reports it (docs/conventions.md 12).
std::optional<int> check_subcommand(const ep::Cli& cli, int argc, char** argv) {
  std::vector<std::string> top = {"migrate", "check", "tenant", "plan", "key", "usage", "retention", "rollup"};
  if (argc < 2 || argv[1][0] == '-') return std::nullopt;
  std::string word = argv[1];
  std::vector<std::string> known = top;
  if (std::find(top.begin(), top.end(), word) != top.end()) {
    if (argc < 3 || argv[2][0] == '-' || (word != "tenant" && word != "plan" && word != "key" && word != "rollup")) return std::nullopt;
    known.clear();
    for (const auto& c : ep::admin::commands())
      if (word == c.group) known.push_back(c.name);
    word = argv[2];
    if (std::find(known.begin(), known.end(), word) != known.end()) return std::nullopt;
  }
  std::string hint = ep::admin::suggest(word, known);
  return cli.usage_error("unknown command '" + word + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
}

}  // namespace

int main(int argc, char** argv) {
  ep::Cli cli("ep-admin", "EdgePulse administration: schema, tenants, plans, API keys, usage, retention, rollups.",
              "Reads: arguments. Writes: Postgres or a keys file; listings and new keys on stdout.",
              "ep-admin migrate --db postgresql:///edgepulse && ep-admin tenant add acme && "
              "ep-admin key issue --tenant acme --db > acme.key");
  ep::admin::Options opts;
  ep::admin::Registry registry(cli, opts);
  if (auto code = check_subcommand(cli, argc, argv)) return *code;
  if (auto code = cli.parse(argc, argv)) return *code;
  if (auto salt = cli.config().get("admin", "api_key_hash_salt")) opts.pepper_configured = *salt;

  const ep::admin::Command* cmd = registry.selected();
  if (!cmd) return cli.usage_error("no command given");
  ep::admin::Output out;
  ep::Status st = cmd->fn(opts, out);
  if (!out.out.empty() && ::write(1, out.out.data(), out.out.size()) != static_cast<ssize_t>(out.out.size())) {
    ep::log::error(ep::Status::io("stdout: write failed"));
    return 74;
  }
  for (const auto& n : out.notes) ep::log::info(n);
  if (!st) {
    if (st.code() == ep::Code::kUsage) return cli.usage_error(st.message());
    ep::log::error(st);
    return st.exit_code();
  }
  return 0;
}
