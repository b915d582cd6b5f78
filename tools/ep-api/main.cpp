// ep-api: the tenant-scoped REST API and dashboard over Postgres (docs/architecture.md §2, §12).
#include <boost/asio/signal_set.hpp>

#include "api.h"
#include "ep/cli.h"
#include "ep/http_cli.h"
#include "ep/keys.h"
#include "ep/log.h"
#include "ep/pg.h"
#include "server.h"

int main(int argc, char** argv) {
  ep::Cli cli("ep-api", "Tenant-scoped REST API and dashboard over Postgres.",
              "Reads: HTTP requests with X-API-Key. Writes: JSON; the dashboard at /.",
              "ep-api --listen 127.0.0.1:8788 --db postgresql:///edgepulse   # then open "
              "http://127.0.0.1:8788/");
  auto& app = cli.app();
  ep::http::ServerOptions sopts;
  sopts.listen = "127.0.0.1:8788";
  sopts.threads = 4;
  sopts.max_body_bytes = 64 << 10;
  std::string db, salt;
  double cache_ttl = 30;
  ep::api::Options aopts;
  app.add_option("--listen", sopts.listen, "HOST:PORT to listen on (port 0: any free port)");
  app.add_option("--db", db, "Postgres URL (default $DATABASE_URL, then libpq's PG* variables)")
      ->envname("DATABASE_URL");
  app.add_option("--threads", sopts.threads, "Server threads")->check(CLI::Range(1, 256));
  ep::http::ServerFlags sflags;
  ep::http::add_server_flags(app, sopts, sflags);
  app.add_option("--key-cache-ttl", cache_ttl,
                 "Seconds an API key lookup is cached (a revoked key works at most this long)")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--max-range-points", aopts.max_range_points,
                 "Points one /v1/series request may read before downsampling (bounds memory)")
      ->check(CLI::Range(1000, 100'000'000));
  app.add_option("--pool-size", aopts.max_idle_connections, "Idle Postgres connections kept");
  app.add_option("--api-key-hash-salt", salt, "API key pepper (prefer the environment)")
      ->envname("API_KEY_HASH_SALT");
  std::vector<std::string> allow_egress;
  cli.add_allow_egress(allow_egress);
  if (auto code = cli.parse(argc, argv)) return *code;
  if (ep::Status st = ep::http::resolve_server_flags(sflags, sopts); !st.is_ok())
    return cli.usage_error(st.message());

  auto pepper = ep::keys::pepper_from_env(salt);
  if (!pepper) return cli.usage_error(pepper.status().message());
  aopts.pepper = *pepper;
  auto policy = ep::egress::Policy::from_strings(allow_egress);
  if (!policy) return cli.usage_error(policy.status().message());
  aopts.egress = std::move(policy).value();
  aopts.db_url = ep::pg::resolve_url(db);
  aopts.key_cache_ttl = static_cast<ep::TimeNs>(cache_ttl * ep::kNsPerSec);
  ep::api::Api api(aopts);
  if (ep::Status st = api.check_database(); !st.is_ok()) {
    ep::log::error(st.with_context(ep::pg::redact_url(aopts.db_url)));
    return st.exit_code();
  }
  ep::http::Server* srv = nullptr;
  auto server = ep::http::Server::listen(sopts, ep::api::make_handler(api, [&srv] { return srv->stats(); }));
  if (!server) {
    ep::log::error(server.status());
    return server.status().exit_code();
  }
  srv = server->get();
  boost::asio::signal_set signals(srv->context(), SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) srv->stop();
  });
  // SIGHUP: a renewed certificate is served without a restart.
  boost::asio::signal_set hup(srv->context(), SIGHUP);
  std::function<void()> arm_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      ep::http::reload_tls_on_hangup(*srv);
      arm_hup();
    });
  };
  arm_hup();
  ep::log::info("listening on " + srv->url());
  bool clean = (*server)->run();
  return clean ? 0 : 75;
}
