#include "ep/log.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ep {
namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    out.push_back(text.substr(pos, nl - pos));
    pos = nl == std::string::npos ? text.size() : nl + 1;
  }
  return out;
}

TEST(Throttled, FirstInFullThenOneLinePerIntervalWithTheSuppressedCount) {
  log::set_tool("ep-test");
  FakeClock clock(1000 * kNsPerSec);
  log::Throttled t(10 * kNsPerSec, clock);
  testing::internal::CaptureStderr();
  t.error(Status::io("/srv/archive/acme/x.json: No space left on device"), "archive");
  for (int i = 0; i < 500; ++i) {
    clock.advance(10 * kNsPerMs);  // 500 occurrences over 5 s: all suppressed
    t.error(Status::io("/srv/archive/acme/y.json: No space left on device"), "archive");
  }
  clock.advance(5 * kNsPerSec);  // 10 s after the first line: one report with the count
  t.error(Status::io("/srv/archive/acme/z.json: No space left on device"), "archive");
  t.error(Status::io("/srv/archive/acme/w.json: No space left on device"), "archive");
  clock.advance(60 * kNsPerSec);  // quiet for a minute: the next one is reported as new
  t.error(Status::io("/srv/archive/acme/v.json: No space left on device"), "archive");
  auto got = lines(testing::internal::GetCapturedStderr());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "ep-test: archive: /srv/archive/acme/x.json: No space left on device");
  EXPECT_EQ(got[1], "ep-test: archive: /srv/archive/acme/z.json: No space left on device "
                    "(500 more suppressed since the last report)");
  EXPECT_EQ(got[2], "ep-test: archive: /srv/archive/acme/v.json: No space left on device "
                    "(1 more suppressed since the last report)");
}

}  // namespace
}  // namespace ep
