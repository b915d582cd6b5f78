// ep-admin as a process against a throwaway database.
#include <regex>

#include "ep/keys.h"
#include "ep/migrations.h"
#include "pg_fixture.h"

namespace {

using eptest::count;
using eptest::run;

const std::vector<std::string> kEnv = {"API_KEY_HASH_SALT=test-pepper"};

eptest::RunResult admin(std::vector<std::string> args, const std::string& db) {
  std::vector<std::string> argv = {EP_ADMIN_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  if (!db.empty()) {
    argv.push_back("--db");
    argv.push_back(db);
  }
  return run(argv, "", kEnv);
}

TEST(AdminMigrate, FromEmptyThenRerunIsNoop) {
  eptest::TempDatabase db;
  ASSERT_TRUE(db.ok());
  auto r1 = admin({"migrate"}, db.url());
  ASSERT_EQ(r1.status, 0) << r1.err;
  EXPECT_NE(r1.err.find("version 0 -> "), std::string::npos) << r1.err;
  auto r2 = admin({"migrate"}, db.url());
  ASSERT_EQ(r2.status, 0) << r2.err;
  EXPECT_NE(r2.err.find("nothing to do"), std::string::npos) << r2.err;
  auto c = db.connect();
  EXPECT_EQ(count(c, "SELECT count(*) FROM schema_migrations"), static_cast<std::int64_t>(ep::migrations().size()));
  EXPECT_EQ(count(c, "SELECT count(*) FROM plans WHERE name = 'default'"), 1);
}

TEST(AdminMigrate, TwoConcurrentMigratesBothSucceedOnce) {
  eptest::TempDatabase db;
  ASSERT_TRUE(db.ok());
  // Several pairs: the advisory lock must serialise them every time.
  for (int round = 0; round < 3; ++round) {
    eptest::TempDatabase fresh;
    ASSERT_TRUE(fresh.ok());
    eptest::Proc a({EP_ADMIN_BIN, "migrate", "--db", fresh.url()}, kEnv);
    eptest::Proc b({EP_ADMIN_BIN, "migrate", "--db", fresh.url()}, kEnv);
    a.close_stdin();
    b.close_stdin();
    ASSERT_EQ(a.wait(), 0) << a.err();
    ASSERT_EQ(b.wait(), 0) << b.err();
    // Exactly one of them applied the migrations.
    int applied = (a.err().find("applied") != std::string::npos) + (b.err().find("applied") != std::string::npos);
    EXPECT_EQ(applied, 1) << a.err() << b.err();
    auto c = fresh.connect();
    EXPECT_EQ(count(c, "SELECT count(*) FROM schema_migrations"), static_cast<std::int64_t>(ep::migrations().size()));
  }
}

TEST(AdminMigrate, RefusesNewerSchema) {
  eptest::TempDatabase db;
  ASSERT_TRUE(db.ok());
  db.migrate();
  auto c = db.connect();
  EP_ASSERT_OK(c.run("INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, '9999_future', 'x')"));
  auto r = admin({"migrate"}, db.url());
  EXPECT_EQ(r.status, 65);
  EXPECT_NE(r.err.find("newer than this binary"), std::string::npos) << r.err;
  auto chk = admin({"check"}, db.url());
  EXPECT_EQ(chk.status, 65);
}

TEST(AdminMigrate, RefusesChangedMigration) {
  eptest::TempDatabase db;
  ASSERT_TRUE(db.ok());
  db.migrate();
  auto c = db.connect();
  EP_ASSERT_OK(c.run("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1"));
  auto r = admin({"migrate"}, db.url());
  EXPECT_EQ(r.status, 65);
  EXPECT_NE(r.err.find("differs"), std::string::npos) << r.err;
}

TEST(AdminCheck, ReportsPendingThenOk) {
  eptest::TempDatabase db;
  ASSERT_TRUE(db.ok());
  auto r = admin({"check"}, db.url());
  EXPECT_EQ(r.status, 65) << r.err;
  EXPECT_NE(r.out.find("schema_version\t0"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("run 'ep-admin migrate'"), std::string::npos) << r.err;
  db.migrate();
  r = admin({"check"}, db.url());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("pending\t0"), std::string::npos);
}

TEST(AdminCheck, UnreachableServerIs69) {
  auto r = admin({"check"}, "host=127.0.0.1 port=" + std::to_string(eptest::free_port()) + " connect_timeout=2");
  EXPECT_EQ(r.status, 69) << r.err;
  EXPECT_NE(r.err.find("ep-admin: postgres"), std::string::npos) << r.err;
}

TEST(AdminCommands, NeedMigratedSchema) {
  eptest::TempDatabase db;
  ASSERT_TRUE(db.ok());
  auto r = admin({"tenant", "add", "acme"}, db.url());
  EXPECT_EQ(r.status, 69);
  EXPECT_NE(r.err.find("run 'ep-admin migrate'"), std::string::npos) << r.err;
}

TEST(AdminTenant, AddListDisableAndMisuse) {
  eptest::TempDatabase db;
  ASSERT_TRUE(db.ok());
  db.migrate();
  auto add = admin({"tenant", "add", "acme"}, db.url());
  ASSERT_EQ(add.status, 0) << add.err;
  EXPECT_TRUE(std::regex_match(add.out, std::regex("[0-9a-f-]{36}\n"))) << add.out;
  auto dup = admin({"tenant", "add", "acme"}, db.url());
  EXPECT_EQ(dup.status, 65);
  EXPECT_EQ(dup.err, "ep-admin: tenant add: tenant 'acme' already exists\n");
  auto badplan = admin({"tenant", "add", "beta", "--plan", "gold"}, db.url());
  EXPECT_EQ(badplan.status, 65);
  EXPECT_NE(badplan.err.find("unknown plan 'gold'"), std::string::npos);
  auto badslug = admin({"tenant", "add", "has space"}, db.url());
  EXPECT_EQ(badslug.status, 64);
  // A tenant is one archive path segment: the one tenant rule refuses these too.
  for (std::string slug : {"a/b/../c", ".hidden", "a/b"}) {
    auto bad = admin({"tenant", "add", slug}, db.url());
    EXPECT_EQ(bad.status, 64) << slug;
    EXPECT_EQ(bad.err, "ep-admin: tenant add: '" + slug +
                           "': not a valid tenant name ([A-Za-z0-9._:-]{1,128}, not starting with '.')\n"
                           "Run 'ep-admin --help' for usage.\n");
  }
  auto c0 = db.connect();
  EXPECT_EQ(count(c0, "SELECT count(*) FROM tenants WHERE slug LIKE '%/%' OR slug LIKE '.%'"), 0);
  ASSERT_EQ(admin({"plan", "add", "gold", "--retention-days", "90", "--points-per-minute", "1000"}, db.url()).status, 0);
  ASSERT_EQ(admin({"tenant", "add", "beta", "--plan", "gold"}, db.url()).status, 0);
  auto list = admin({"tenant", "list", "--json"}, db.url());
  ASSERT_EQ(list.status, 0);
  EXPECT_NE(list.out.find("\"tenant\":\"beta\",\"plan\":\"gold\",\"disabled\":false"), std::string::npos) << list.out;
  ASSERT_EQ(admin({"tenant", "disable", "beta"}, db.url()).status, 0);
  auto c = db.connect();
  EXPECT_EQ(count(c, "SELECT count(*) FROM tenants WHERE slug = 'beta' AND disabled AND disabled_at IS NOT NULL"), 1);
  auto unknown = admin({"tenant", "disable", "nope"}, db.url());
  EXPECT_EQ(unknown.status, 65);
  EXPECT_NE(unknown.err.find("unknown tenant 'nope'"), std::string::npos);
  ASSERT_EQ(admin({"tenant", "enable", "beta"}, db.url()).status, 0);
  EXPECT_EQ(count(c, "SELECT count(*) FROM tenants WHERE slug = 'beta' AND NOT disabled"), 1);
  auto setp = admin({"plan", "set", "gold", "--retention-days", "0"}, db.url());
  EXPECT_EQ(setp.status, 64);
  auto setnone = admin({"plan", "set", "nope", "--max-series", "5"}, db.url());
  EXPECT_EQ(setnone.status, 65);
  ASSERT_EQ(admin({"plan", "set", "gold", "--max-series", "5"}, db.url()).status, 0);
  EXPECT_EQ(count(c, "SELECT max_series FROM plans WHERE name = 'gold'"), 5);
}

TEST(AdminCli, MisuseIs64WithSuggestion) {
  auto r = run({EP_ADMIN_BIN, "tenat", "list"});
  EXPECT_EQ(r.status, 64);
  EXPECT_NE(r.err.find("did you mean 'tenant'?"), std::string::npos) << r.err;
  r = run({EP_ADMIN_BIN, "key", "isue"});
  EXPECT_EQ(r.status, 64);
  EXPECT_NE(r.err.find("did you mean 'issue'?"), std::string::npos) << r.err;
  r = run({EP_ADMIN_BIN, "key", "issue", "--keys-file", "/tmp/x"});
  EXPECT_EQ(r.status, 64);
  EXPECT_NE(r.err.find("--tenant is required"), std::string::npos) << r.err;
  // An unknown option is named, though a sub-command (or option) is missing as well.
  r = run({EP_ADMIN_BIN, "--no-such-flag"});
  EXPECT_EQ(r.status, 64);
  EXPECT_NE(r.err.find("unknown option '--no-such-flag'"), std::string::npos) << r.err;
  r = run({EP_ADMIN_BIN, "tenant", "--no-such-flag"});
  EXPECT_EQ(r.status, 64);
  EXPECT_NE(r.err.find("unknown option '--no-such-flag'"), std::string::npos) << r.err;
  r = run({EP_ADMIN_BIN, "key", "issue", "--keys-file", "/tmp/x", "--tenantt", "acme"});
  EXPECT_EQ(r.status, 64);
  EXPECT_NE(r.err.find("unknown option '--tenantt'"), std::string::npos) << r.err;
  r = run({EP_ADMIN_BIN});
  EXPECT_EQ(r.status, 64);
  r = run({EP_ADMIN_BIN, "--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("Example:"), std::string::npos);
}

void key_round_trip(const std::vector<std::string>& backend, const std::string& db_url,
                    const std::function<std::string(const std::string& prefix)>& stored_hash,
                    const std::function<bool(const std::string& prefix)>& revoked) {
  std::vector<std::string> issue = {"key", "issue", "--tenant", "acme", "--label", "ci"};
  issue.insert(issue.end(), backend.begin(), backend.end());
  auto r = admin(issue, db_url);
  ASSERT_EQ(r.status, 0) << r.err;
  // stdout is the key and nothing else.
  ASSERT_TRUE(std::regex_match(r.out, std::regex("ep_[A-Za-z0-9]{8}_[A-Za-z0-9]{32}\n"))) << r.out;
  std::string key = r.out.substr(0, r.out.size() - 1);
  std::string prefix = key.substr(3, 8);
  EXPECT_EQ(r.err.find(key), std::string::npos) << "the key must not be logged";
  EXPECT_TRUE(ep::keys::verify_key("test-pepper", key, stored_hash(prefix)));
  EXPECT_FALSE(ep::keys::verify_key("other-pepper", key, stored_hash(prefix)));

  std::vector<std::string> list = {"key", "list", "--json"};
  list.insert(list.end(), backend.begin(), backend.end());
  auto l = admin(list, db_url);
  ASSERT_EQ(l.status, 0) << l.err;
  EXPECT_NE(l.out.find("\"prefix\":\"" + prefix + "\",\"tenant\":\"acme\",\"label\":\"ci\""), std::string::npos) << l.out;
  EXPECT_EQ(l.out.find(key.substr(12)), std::string::npos) << "the secret must never be listed";
  EXPECT_NE(l.out.find("\"revoked_at\":null"), std::string::npos);

  std::vector<std::string> revoke = {"key", "revoke", prefix};
  revoke.insert(revoke.end(), backend.begin(), backend.end());
  auto v = admin(revoke, db_url);
  ASSERT_EQ(v.status, 0) << v.err;
  EXPECT_TRUE(revoked(prefix));
  auto again = admin(revoke, db_url);
  EXPECT_EQ(again.status, 65);
  EXPECT_NE(again.err.find("already revoked"), std::string::npos) << again.err;
  std::vector<std::string> unknown = {"key", "revoke", "ZZZZZZZZ"};
  unknown.insert(unknown.end(), backend.begin(), backend.end());
  auto u = admin(unknown, db_url);
  EXPECT_EQ(u.status, 65);
  EXPECT_NE(u.err.find("no key with prefix ZZZZZZZZ"), std::string::npos) << u.err;
  l = admin(list, db_url);
  EXPECT_EQ(l.out.find("\"revoked_at\":null"), std::string::npos) << l.out;
}

TEST(AdminKey, RoundTripPostgres) {
  eptest::TempDatabase db;
  ASSERT_TRUE(db.ok());
  db.migrate();
  ASSERT_EQ(admin({"tenant", "add", "acme"}, db.url()).status, 0);
  auto c = db.connect();
  key_round_trip(
      {}, db.url(),
      [&](const std::string& p) {
        auto r = c.exec("SELECT hash FROM api_keys WHERE prefix = $1", {p});
        return (r && r->size() == 1) ? r->str(0, 0) : std::string();
      },
      [&](const std::string& p) {
        return count(c, "SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL AND prefix = '" + p + "'") == 1;
      });
  // Unknown and disabled tenants get no key.
  auto r = admin({"key", "issue", "--tenant", "nope"}, db.url());
  EXPECT_EQ(r.status, 65);
  EXPECT_TRUE(r.out.empty());
  ASSERT_EQ(admin({"tenant", "disable", "acme"}, db.url()).status, 0);
  r = admin({"key", "issue", "--tenant", "acme"}, db.url());
  EXPECT_EQ(r.status, 65);
  EXPECT_NE(r.err.find("is disabled"), std::string::npos);
}

TEST(AdminKey, RoundTripKeysFile) {
  std::string path = "/tmp/ep-admin-keys-" + std::to_string(::getpid()) + ".ndjson";
  std::remove(path.c_str());
  key_round_trip(
      {"--keys-file", path}, "",
      [&](const std::string& p) {
        auto entries = ep::keys::load_keys_file(path);
        if (!entries) return std::string();
        for (auto& e : *entries)
          if (e.prefix == p) return e.hash;
        return std::string();
      },
      [&](const std::string& p) {
        auto entries = ep::keys::load_keys_file(path);
        if (!entries) return false;
        for (auto& e : *entries)
          if (e.prefix == p) return e.revoked_at.has_value();
        return false;
      });
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::remove(path.c_str());
}

TEST(AdminKey, IssueWithoutPepperIsUsageError) {
  auto r = run({EP_ADMIN_BIN, "key", "issue", "--tenant", "acme", "--keys-file", "/tmp/ep-nokey"},
               "", {"API_KEY_HASH_SALT="});
  EXPECT_EQ(r.status, 64) << r.err;
  EXPECT_NE(r.err.find("API_KEY_HASH_SALT"), std::string::npos);
  EXPECT_TRUE(r.out.empty());
}

TEST(AdminRetention, RemovesOnlyWhatIsPastRetention) {
  eptest::TempDatabase db;
  ASSERT_TRUE(db.ok());
  db.migrate();
  ASSERT_EQ(admin({"plan", "add", "short", "--retention-days", "2"}, db.url()).status, 0);
  ASSERT_EQ(admin({"plan", "add", "long", "--retention-days", "10"}, db.url()).status, 0);
  ASSERT_EQ(admin({"tenant", "add", "a", "--plan", "short"}, db.url()).status, 0);
  ASSERT_EQ(admin({"tenant", "add", "b", "--plan", "long"}, db.url()).status, 0);
  auto c = db.connect();
  // Day partitions for the 12 days (as ep-load would create them); one stray row in
  // the default partition.
  EP_ASSERT_OK(c.run("SELECT edgepulse_ensure_day_partition(d::date) FROM generate_series("
                     "'2026-02-17'::date, '2026-03-01'::date, interval '1 day') d"));
  // One point per hour for 12 days before "now" for each tenant, one series each.
  EP_ASSERT_OK(c.run(R"SQL(
    WITH d AS (INSERT INTO devices (tenant_id, external_id) SELECT tenant_id, 'd1' FROM tenants RETURNING tenant_id, device_id),
    m AS (INSERT INTO metrics (tenant_id, device_id, name) SELECT tenant_id, device_id, 'm' FROM d RETURNING tenant_id, metric_id)
    INSERT INTO datapoints SELECT m.tenant_id, m.metric_id, '2026-03-01T00:00:00Z'::timestamptz - make_interval(hours => h), h
    FROM m, generate_series(0, 287) AS h)SQL"));
  EP_ASSERT_OK(c.run(R"SQL(
    INSERT INTO ingest_batches (tenant_id, batch_id, received_at, status)
    SELECT tenant_id, gen_random_uuid(), '2026-03-01T00:00:00Z'::timestamptz - make_interval(days => d), 'loaded'
    FROM tenants, generate_series(0, 11) AS d)SQL"));
  // Partitions 02-17 (23 rows per tenant) and 02-18 (24) are past every tenant's
  // cutoff (b keeps 10 days: 02-19): they are dropped whole; the rest of tenant a's
  // expired rows (239 - 47) are deleted in chunks.
  auto dry = admin({"retention", "--now", "2026-03-01T00:00:00Z", "--dry-run", "--json"}, db.url());
  ASSERT_EQ(dry.status, 0) << dry.err;
  EXPECT_NE(dry.out.find("{\"tenant\":\"*\",\"table\":\"datapoints_p20260217\",\"retention_days\":10,"
                         "\"cutoff\":\"2026-02-19T00:00:00.000Z\",\"would_remove\":46}"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("{\"tenant\":\"*\",\"table\":\"datapoints_p20260218\",\"retention_days\":10,"
                         "\"cutoff\":\"2026-02-19T00:00:00.000Z\",\"would_remove\":48}"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("\"tenant\":\"a\",\"table\":\"datapoints\",\"retention_days\":2,"
                         "\"cutoff\":\"2026-02-27T00:00:00.000Z\",\"would_remove\":192"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("\"tenant\":\"b\",\"table\":\"datapoints\",\"retention_days\":10,"
                         "\"cutoff\":\"2026-02-19T00:00:00.000Z\",\"would_remove\":0"), std::string::npos) << dry.out;
  EXPECT_NE(dry.err.find("would remove 296 rows"), std::string::npos) << dry.err;  // 94 + 192 + 10 batches
  EXPECT_EQ(count(c, "SELECT count(*) FROM datapoints"), 576);
  // Small chunks: many bounded transactions, same result.
  auto r = admin({"retention", "--now", "2026-03-01T00:00:00Z", "--chunk", "7", "--json"}, db.url());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"table\":\"datapoints_p20260217\",\"retention_days\":10,"
                       "\"cutoff\":\"2026-02-19T00:00:00.000Z\",\"removed\":46"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"tenant\":\"a\",\"table\":\"datapoints\",\"retention_days\":2,"
                       "\"cutoff\":\"2026-02-27T00:00:00.000Z\",\"removed\":192"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"tenant\":\"b\",\"table\":\"datapoints\",\"retention_days\":10,"
                       "\"cutoff\":\"2026-02-19T00:00:00.000Z\",\"removed\":0"), std::string::npos) << r.out;
  EXPECT_EQ(count(c, "SELECT count(*) FROM pg_class WHERE relname IN ('datapoints_p20260217', 'datapoints_p20260218')"), 0);
  EXPECT_EQ(count(c, "SELECT count(*) FROM pg_class WHERE relname = 'datapoints_p20260219'"), 1);
  // Tenant a keeps exactly the last 2 days (48 h + the point at the cutoff), b the last 10.
  EXPECT_EQ(count(c, "SELECT count(*) FROM datapoints JOIN tenants USING (tenant_id) WHERE slug = 'a'"), 49);
  EXPECT_EQ(count(c, "SELECT count(*) FROM datapoints JOIN tenants USING (tenant_id) WHERE slug = 'b'"), 241);
  EXPECT_EQ(count(c, "SELECT count(*) FROM datapoints WHERE ts < '2026-02-27T00:00:00Z' AND tenant_id = "
                     "(SELECT tenant_id FROM tenants WHERE slug = 'a')"), 0);
  EXPECT_EQ(count(c, "SELECT count(*) FROM ingest_batches JOIN tenants USING (tenant_id) WHERE slug = 'a'"), 3);
  EXPECT_EQ(count(c, "SELECT count(*) FROM ingest_batches JOIN tenants USING (tenant_id) WHERE slug = 'b'"), 11);
  // Running again removes nothing.
  auto again = admin({"retention", "--now", "2026-03-01T00:00:00Z"}, db.url());
  ASSERT_EQ(again.status, 0);
  EXPECT_NE(again.err.find("removed 0 rows"), std::string::npos) << again.err;
}

}  // namespace
