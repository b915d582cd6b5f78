#pragma once
// ep-ingest's command line: registering the flags on ep::Cli and turning what was parsed
// (flags > env > TOML > defaults) into Options.
#include <string>

#include "ep/cli.h"
#include "ep/http_cli.h"
#include "options.h"

namespace ep::ingest {

// Flag values that need converting after parsing (durations, sizes).
struct Flags {
  http::ServerFlags server;  // --max-connections-per-client, --header-timeout, --tls-*
  std::string body_timeout = "30s", idle_timeout = "60s",
              drain_timeout = "30s", idempotency_window = "24h", max_age = "7d", max_skew = "5m",
              key_refresh = "30s", archive_segment_age = "1h";
  std::string db;
  CLI::Option* db_option = nullptr;
  bool no_time_bounds = false;
  std::string api_key_hash_salt;  // config only; the environment wins
};

void register_flags(Cli& cli, Options& o, Flags& f);
Status resolve(Cli& cli, const Flags& f, Options& o);

}  // namespace ep::ingest
