#pragma once
// A throwaway Postgres database with two tenants' worth of data, and ep-api serving it
// in-process on a real socket (127.0.0.1, ephemeral port), plus a libcurl client.
// Postgres comes from the libpq environment pg_virtualenv sets; unreachable = failure.
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "api.h"
#include "ep/http_server.h"
#include "ep/pg.h"

namespace ep::api::test {

inline constexpr const char* kPepper = "test-pepper-0123456789";

struct Reply {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// Ids of the seeded rows the tests refer to.
struct Seed {
  std::string acme_key, acme_revoked_key, globex_key;
  std::string acme_id, globex_id;
  std::string acme_dev1, acme_dev2, globex_dev;
  std::string acme_voltage, acme_current, globex_temp;  // metric ids
  std::string acme_rule, globex_rule, acme_hook, globex_hook;
  std::string spike_start, spike_end;  // RFC 3339 of the injected spike window
  long voltage_points = 0;
};

class Env {
 public:
  // Creates the database, migrates, seeds, starts the server. Aborts the test binary
  // with a clear message when Postgres is unreachable.
  static Env& get();
  ~Env();

  const Seed& seed() const { return seed_; }
  std::string base() const { return "http://" + server_->address(); }
  const std::string& db_url() const { return db_url_; }
  Reply call(const std::string& method, const std::string& path, const std::string& key,
             const std::string& body = "", const std::string& content_type = "application/json");
  Reply get(const std::string& path, const std::string& key) { return call("GET", path, key); }

 private:
  Env();
  void seed_data(pg::Conn& c);
  std::string admin_url_, db_name_, db_url_;
  Seed seed_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
};

// The URL of database `name` on the pg_virtualenv cluster.
std::string db_url_for(const std::string& name);

}  // namespace ep::api::test
