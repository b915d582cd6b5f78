#pragma once
// The HTTP server's command-line options that ep-ingest and ep-api share (connection
// limits, the head deadline, TLS) and their SIGHUP certificate reload.
#include <CLI/CLI.hpp>

#include <string>

#include "ep/http_server.h"
#include "ep/status.h"

namespace ep::http {

// Values that need converting after parsing.
struct ServerFlags {
  std::string header_timeout = "5s";
};

// --max-connections, --max-connections-per-client, --header-timeout, --tls-cert,
// --tls-key; in `group` of the help unless it is empty.
void add_server_flags(CLI::App& app, ServerOptions& o, ServerFlags& f, const std::string& group = "");
Status resolve_server_flags(const ServerFlags& f, ServerOptions& o);

// SIGHUP: re-reads --tls-cert/--tls-key (when serving HTTPS) and logs the outcome; a bad
// file keeps the previous certificate.
void reload_tls_on_hangup(Server& srv);

}  // namespace ep::http
