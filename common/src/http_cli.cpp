#include "ep/http_cli.h"

#include "ep/log.h"

namespace ep::http {

void add_server_flags(CLI::App& app, ServerOptions& o, ServerFlags& f, const std::string& group) {
  std::vector<CLI::Option*> opts = {
      app.add_option("--max-connections", o.max_connections,
                     "Concurrent connections; at the limit the longest-waiting idle or "
                     "head-incomplete one is shed, else the newcomer gets 503")
          ->type_name("N")->check(CLI::Range(1, 1000000)),
      app.add_option("--max-connections-per-client", o.max_connections_per_client,
                     "Concurrent connections from one client address; more get 503 (0: no cap)")
          ->type_name("N")->check(CLI::Range(0, 1000000)),
      app.add_option("--header-timeout", f.header_timeout,
                     "Deadline for a request's head, from accept (TLS handshake included) or from "
                     "a keep-alive request's first byte")
          ->type_name("DUR"),
      app.add_option("--tls-cert", o.tls_cert,
                     "Serve HTTPS with this PEM certificate (chain after the leaf); SIGHUP reloads it")
          ->type_name("FILE"),
      app.add_option("--tls-key", o.tls_key, "PEM private key of --tls-cert")->type_name("FILE"),
  };
  if (!group.empty())
    for (auto* opt : opts) opt->group(group);
}

Status resolve_server_flags(const ServerFlags& f, ServerOptions& o) {
  auto d = parse_duration(f.header_timeout);
  if (!d || *d <= 0)
    return Status::usage("--header-timeout " + f.header_timeout + ": not a positive duration (e.g. 5s)");
  o.header_timeout = *d;
  if (o.tls_cert.empty() != o.tls_key.empty()) return Status::usage("--tls-cert and --tls-key go together");
  return Status::ok();
}

void reload_tls_on_hangup(Server& srv) {
  if (!srv.tls()) return;
  if (Status s = srv.reload_tls(); !s.is_ok()) {
    log::emit(log::Level::kError, "SIGHUP", "keeping the previous TLS certificate: " + s.message());
  } else {
    log::info("SIGHUP: reloaded the TLS certificate");
  }
}

}  // namespace ep::http
