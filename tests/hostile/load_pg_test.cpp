// ep-load against a real Postgres with JSON nested far past kMaxJsonDepth between two
// valid batches: one numbered reject naming the limit, exit 65, and both batches loaded
// (before the fix the process died with SIGSEGV and the batch before it was lost too).
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "ep/json.h"
#include "hostile_input.h"
#include "pg_fixture.h"

namespace {

using eptest::count;
using eptest::hostile::HostileLine;

std::string batch(int i) {
  return R"({"kind":"batch","batch_id":"0190a0b0-0000-7000-8000-00000000000)" + std::to_string(i) +
         R"(","tenant":"acme","device":"dev-)" + std::to_string(i) +
         R"(","source":"test","received_at":"2026-01-05T10:00:00Z","sha256":")" + std::string(64, '0') +
         R"(","points":[{"metric":"m","ts":"2026-01-05T10:00:0)" + std::to_string(i) +
         R"(Z","value":1.5,"unit":"V"}]})";
}

class HostileLoad : public ::testing::TestWithParam<HostileLine> {};

TEST_P(HostileLoad, DeepLineIsOneRejectAndBothNeighboursAreLoaded) {
  eptest::TempDatabase db;
  ASSERT_TRUE(db.ok());
  db.migrate();
  ep::pg::Conn c = db.connect();
  EP_ASSERT_OK(c.run("INSERT INTO tenants (slug) VALUES ('acme')"));
  auto r = eptest::run({EP_LOAD_BIN, "--db", db.url(), "--no-progress"},
                       batch(1) + "\n" + GetParam().text + "\n" + batch(2) + "\n");
  EXPECT_EQ(r.status, 65) << r.err;
  const std::string limit = "nesting deeper than " + std::to_string(ep::kMaxJsonDepth) + " levels";
  EXPECT_TRUE(std::regex_search(r.err, std::regex("ep-load: stdin:2: invalid JSON at byte [0-9]+: " + limit)))
      << r.err;
  EXPECT_EQ(count(c, "SELECT count(*) FROM ingest_batches WHERE status = 'loaded'"), 2);
  EXPECT_EQ(count(c, "SELECT count(*) FROM datapoints"), 2);
  EXPECT_EQ(count(c, "SELECT count(*) FROM devices WHERE external_id IN ('dev-1', 'dev-2')"), 2);
}

INSTANTIATE_TEST_SUITE_P(Depths, HostileLoad, ::testing::ValuesIn(eptest::hostile::hostile_lines()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
