// Quota, idempotency cache and key store (ep-ingest core), with explicit times.
#include <gtest/gtest.h>

#include "auth.h"
#include "ep/keys.h"
#include "batch.h"
#include "idempotency.h"
#include "idempotency_log.h"
#include "payload.h"

namespace ep::ingest {
namespace {

constexpr TimeNs kT0 = 1'764'000'000LL * kNsPerSec;

TEST(Quota, TakesWholeRequestsAndRefillsContinuously) {
  Quota q;
  EXPECT_EQ(q.take("a", 60, 60, kT0), 0);      // the full minute's allowance
  EXPECT_EQ(q.take("a", 1, 60, kT0), 1);       // empty: one point per second
  EXPECT_EQ(q.take("a", 10, 60, kT0), 10);     // ten points need ten seconds
  EXPECT_EQ(q.take("a", 10, 60, kT0 + 10 * kNsPerSec), 0);
  EXPECT_EQ(q.take("b", 60, 60, kT0), 0) << "tenants have separate buckets";
}

TEST(Quota, UnlimitedAndOversizedRequests) {
  Quota q;
  EXPECT_EQ(q.take("a", 1'000'000, 0, kT0), 0);
  EXPECT_EQ(q.take("a", 61, 60, kT0), 60) << "never fits: wait a minute and split";
}

TEST(Quota, RefundGivesPointsBack) {
  Quota q;
  EXPECT_EQ(q.take("a", 50, 60, kT0), 0);
  EXPECT_GT(q.take("a", 50, 60, kT0), 0);
  q.refund("a", 50);
  EXPECT_EQ(q.take("a", 50, 60, kT0), 0);
}

TEST(IdempotencyCache, ReplaysMismatchesAndInFlight) {
  IdempotencyCache c(60 * kNsPerSec, 100);
  EXPECT_EQ(c.begin("t", "k", "sha1", kT0).outcome, IdempotencyCache::Outcome::kNew);
  EXPECT_EQ(c.begin("t", "k", "sha1", kT0).outcome, IdempotencyCache::Outcome::kInFlight);
  c.complete("t", "k", "batch-1", 3, kT0);
  auto r = c.begin("t", "k", "sha1", kT0 + kNsPerSec);
  EXPECT_EQ(r.outcome, IdempotencyCache::Outcome::kReplay);
  EXPECT_EQ(r.batch_id, "batch-1");
  EXPECT_EQ(r.points, 3);
  EXPECT_EQ(c.begin("t", "k", "sha2", kT0).outcome, IdempotencyCache::Outcome::kMismatch);
  EXPECT_EQ(c.begin("u", "k", "sha2", kT0).outcome, IdempotencyCache::Outcome::kNew) << "per tenant";
}

TEST(IdempotencyCache, AbandonedKeysCanBeRetried) {
  IdempotencyCache c(60 * kNsPerSec, 100);
  EXPECT_EQ(c.begin("t", "k", "sha1", kT0).outcome, IdempotencyCache::Outcome::kNew);
  c.abandon("t", "k");
  EXPECT_EQ(c.begin("t", "k", "sha1", kT0).outcome, IdempotencyCache::Outcome::kNew);
}

TEST(IdempotencyCache, EntriesExpireAfterTheWindowAndAreBounded) {
  IdempotencyCache c(60 * kNsPerSec, 10);
  c.begin("t", "k", "sha1", kT0);
  c.complete("t", "k", "b", 1, kT0);
  EXPECT_EQ(c.begin("t", "k", "sha1", kT0 + 61 * kNsPerSec).outcome, IdempotencyCache::Outcome::kNew);
  for (int i = 0; i < 100; ++i) {
    std::string k = "key" + std::to_string(i);
    c.begin("t", k, "s", kT0 + 62 * kNsPerSec);
    c.complete("t", k, "b", 1, kT0 + 62 * kNsPerSec);
  }
  EXPECT_LE(c.size(), 11u);
}

TEST(IdempotencyCache, RestoreKeepsTheNewestAnswersWithinTheWindowAndCapacity) {
  IdempotencyCache c(60 * kNsPerSec, 3);
  c.restore("t", "old", "s0", "b0", 1, kT0 - 61 * kNsPerSec);  // outside the window
  c.restore("t", "k", "s2", "b2", 3, kT0 - 2 * kNsPerSec);
  c.restore("t", "k", "s1", "b1", 2, kT0 - 5 * kNsPerSec);     // older: the newer answer stays
  c.restore("t", "x", "s3", "b3", 4, kT0 - 10 * kNsPerSec);    // oldest of four: over capacity
  c.restore("u", "k", "s4", "b4", 5, kT0 - 3 * kNsPerSec);
  c.restore("t", "y", "s5", "b5", 6, kT0 - 1 * kNsPerSec);
  EXPECT_EQ(c.restored(kT0), 3u);
  auto r = c.begin("t", "k", "s2", kT0);
  EXPECT_EQ(r.outcome, IdempotencyCache::Outcome::kReplay);
  EXPECT_EQ(r.batch_id, "b2");
  EXPECT_EQ(r.points, 3);
  EXPECT_EQ(c.begin("t", "k", "s1", kT0).outcome, IdempotencyCache::Outcome::kMismatch);
  EXPECT_EQ(c.begin("u", "k", "s4", kT0).batch_id, "b4");
  EXPECT_EQ(c.begin("t", "y", "s5", kT0).batch_id, "b5");
  EXPECT_EQ(c.begin("t", "x", "s3", kT0).outcome, IdempotencyCache::Outcome::kNew);
  EXPECT_EQ(c.begin("t", "old", "s0", kT0).outcome, IdempotencyCache::Outcome::kNew);
}

TEST(IdempotencyCache, RestoringManyMoreThanTheCapacityStaysBounded) {
  IdempotencyCache c(3600 * kNsPerSec, 100);
  for (int i = 0; i < 10000; ++i) {
    c.restore("t", "k" + std::to_string(i), "s", "b" + std::to_string(i), 1, kT0 - (9999 - i) * 1000);
    ASSERT_LE(c.size(), 201u);
  }
  EXPECT_EQ(c.restored(kT0), 100u);
  EXPECT_EQ(c.begin("t", "k9900", "s", kT0).batch_id, "b9900") << "the newest 100 are kept";
  EXPECT_EQ(c.begin("t", "k9899", "s", kT0).outcome, IdempotencyCache::Outcome::kNew);
  IdempotencyCache same(3600 * kNsPerSec, 100);
  for (int i = 0; i < 1000; ++i) same.restore("t", "k" + std::to_string(i), "s", "b", 1, kT0);
  EXPECT_LE(same.size(), 201u) << "ties at one time are bounded too";
  EXPECT_EQ(same.restored(kT0), 100u);
}

std::string keyed_line(std::string_view key, int points) {
  Payload p;
  Limits limits;
  limits.time_bounds = false;
  std::string body = R"({"device_external_id":"d1","metrics":[)";
  for (int i = 0; i < points; ++i)
    body += std::string(i ? "," : "") + R"({"name":"m)" + std::to_string(i) +
            R"(","ts":"2026-01-05T10:00:00Z","value":1.5,"unit":"V"})";
  body += "]}";
  EXPECT_TRUE(parse_payload(body, limits, kT0, p).is_ok());
  std::string w;
  write_batch(w, BatchMeta{"b-1", "acme", "d1", "http", kT0, key, {}, false}, p.points, body);
  return w;
}

TEST(IdempotencyLog, ReadsTheKeyDigestTimeAndPointCountOfABatchRecord) {
  std::string line = keyed_line("retry-7", 4);
  KeyedBatch kb;
  ASSERT_TRUE(read_keyed_batch(line, kb)) << line;
  EXPECT_EQ(kb.key, "retry-7");
  EXPECT_EQ(kb.sha256.size(), 64u);
  EXPECT_EQ(kb.points, 4);
  EXPECT_EQ(kb.received_at, kT0);
  EXPECT_FALSE(read_keyed_batch(keyed_line("", 4), kb)) << "no key, nothing to restore";
  // A body that mentions the field (escaped inside "raw") is not a key.
  std::string raw_only = R"({"kind":"batch","sha256":"ab","received_at":"2026-01-05T10:00:00Z","points":[],)"
                         R"("raw":"{\"idempotency_key\":\"x\"}"})";
  EXPECT_FALSE(read_keyed_batch(raw_only, kb));
  EXPECT_FALSE(read_keyed_batch(line.substr(0, line.find("\"points\"")), kb)) << "cut short";
}

TEST(KeyStore, AuthenticatesAndClassifiesFailures) {
  KeyStore ks("pepper");
  std::string good = keys::generate_key(), revoked = keys::generate_key(), off = keys::generate_key();
  auto entry = [&](const std::string& k, const std::string& tenant) {
    keys::KeyEntry e;
    e.prefix = std::string(keys::parse_key(k)->prefix);
    e.hash = keys::hash_key("pepper", k);
    e.tenant = tenant;
    e.points_per_minute = 600;
    return e;
  };
  auto r = entry(revoked, "acme");
  r.revoked_at = kT0;
  auto d = entry(off, "gone");
  d.tenant_disabled = true;
  ks.set({entry(good, "acme"), r, d});
  AuthResult a = ks.authenticate(good);
  EXPECT_EQ(a.http_status, 0u);
  EXPECT_EQ(a.tenant, "acme");
  EXPECT_EQ(a.points_per_minute, 600);
  EXPECT_EQ(ks.authenticate("").http_status, 401u);
  EXPECT_EQ(ks.authenticate("ep_short").http_status, 401u);
  // Right prefix, wrong secret.
  std::string forged = good.substr(0, 12) + std::string(32, 'x');
  EXPECT_EQ(ks.authenticate(forged).http_status, 401u);
  EXPECT_EQ(ks.authenticate(forged).detail, "X-API-Key: unknown key");
  EXPECT_EQ(ks.authenticate(revoked).http_status, 403u);
  EXPECT_EQ(ks.authenticate(off).http_status, 403u);
  // Another pepper: nothing verifies.
  KeyStore other("other");
  other.set({entry(good, "acme")});
  EXPECT_EQ(other.authenticate(good).http_status, 401u);
}

TEST(KeyStore, UnknownPrefixDoesTheSameHashingAsAWrongSecret) {
  // Timing must not tell whether a prefix exists: every well-formed key costs one HMAC
  // and one constant-time compare, known prefix or not.
  KeyStore ks("pepper");
  std::string good = keys::generate_key(), bad_tenant = keys::generate_key();
  auto entry = [&](const std::string& k, const std::string& tenant) {
    keys::KeyEntry e;
    e.prefix = std::string(keys::parse_key(k)->prefix);
    e.hash = keys::hash_key("pepper", k);
    e.tenant = tenant;
    return e;
  };
  ks.set({entry(good, "acme"), entry(bad_tenant, "a/b/../c")});
  auto hashes_for = [&](const std::string& key, unsigned want_status) {
    std::uint64_t before = keys::hash_count();
    EXPECT_EQ(ks.authenticate(key).http_status, want_status) << key;
    return keys::hash_count() - before;
  };
  EXPECT_EQ(hashes_for(keys::generate_key(), 401), 1u);                      // unknown prefix
  EXPECT_EQ(hashes_for(good.substr(0, 12) + std::string(32, 'x'), 401), 1u);  // wrong secret
  EXPECT_EQ(hashes_for(good, 0), 1u);
  EXPECT_EQ(ks.authenticate(keys::generate_key()).detail,
            ks.authenticate(good.substr(0, 12) + std::string(32, 'x')).detail);
  // A key whose tenant the archive cannot hold (loaded from an old keys file or row).
  EXPECT_EQ(hashes_for(bad_tenant, 403), 1u);
  EXPECT_EQ(ks.authenticate(bad_tenant).detail,
            "tenant: not a valid tenant name ([A-Za-z0-9._:-]{1,128}, not starting with '.'): \"a/b/../c\"");
}

TEST(KeyStore, VerifyKeyNeverAcceptsAnUnknownPrefix) {
  std::string k = keys::generate_key();
  EXPECT_TRUE(keys::verify_key("pepper", k, keys::hash_key("pepper", k)));
  EXPECT_FALSE(keys::verify_key("pepper", k, ""));
  EXPECT_FALSE(keys::verify_key("pepper", k, std::string(64, '0')));
}

}  // namespace
}  // namespace ep::ingest
