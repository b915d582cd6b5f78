#include "ep/progress.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "ep/ndjson.h"

using namespace ep;

TEST(ProgressFormat, CountsAndBytesInDecimalUnits) {
  EXPECT_EQ(format_count(0, false), "0");
  EXPECT_EQ(format_count(999, false), "999");
  EXPECT_EQ(format_count(1000, false), "1.00k");
  EXPECT_EQ(format_count(45600, false), "45.6k");
  EXPECT_EQ(format_count(1354644469, true), "1.35 GB");
  EXPECT_EQ(format_count(348173960, true), "348 MB");
  EXPECT_EQ(format_count(999999, true), "1.00 MB");  // rounds up into the next unit
  EXPECT_EQ(format_count(512, true), "512 B");
}

TEST(ProgressFormat, EtaInSecondsMinutesHours) {
  EXPECT_EQ(format_eta(12.4), "12s");
  EXPECT_EQ(format_eta(185), "3m05s");
  EXPECT_EQ(format_eta(7650), "2h07m");
  EXPECT_EQ(format_eta(-1), "0s");
}

TEST(ProgressFormat, BytesOfAKnownSizeShowPercentageAndEta) {
  // 1.35 GB of 3.3 GB in 3.89 s: 348 MB/s, 41%, the rest in 5.6 s.
  ProgressSample s{true, "lines", 1354644469, 3300000000, 9840000, 1354644469 / 348173960.0};
  EXPECT_EQ(format_progress("ep-features", s),
            "ep-features: 1.35 GB read, 348 MB/s, 41% (ETA 6s), 9.84M lines");
}

TEST(ProgressFormat, UnknownTotalHasNoPercentage) {
  ProgressSample s{true, "", 1354644469, 0, 0, 1354644469 / 348173960.0};
  EXPECT_EQ(format_progress("ep-features", s), "ep-features: 1.35 GB read, 348 MB/s");
  ProgressSample c{false, "objects replayed", 1200, 0, 0, 4};
  EXPECT_EQ(format_progress("ep-archive", c), "ep-archive: 1.20k objects replayed, 300/s");
}

TEST(ProgressFormat, CountsOfAKnownTotal) {
  ProgressSample s{false, "series", 30, 120, 0, 10};
  EXPECT_EQ(format_progress("ep-features", s), "ep-features: 30/120 series, 3/s, 25% (ETA 30s)");
  // Done, or past a total that grew: 100%, no ETA.
  s.done = 130;
  EXPECT_EQ(format_progress("ep-features", s), "ep-features: 130/120 series, 13/s, 100%");
}

TEST(ProgressInput, SizeOfRegularFilesOnly) {
  char path[] = "/tmp/ep-progress-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "{}\n{}\n", 6), 6);
  EXPECT_EQ(regular_file_size(fd), 6u);
  EXPECT_EQ(regular_file_size(std::string(path)), 6u);
  EXPECT_EQ(LineReader(std::vector<std::string>{path, path}).input_size(), 12u);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  EXPECT_EQ(regular_file_size(p[0]), 0u);  // a pipe has no known size
  EXPECT_EQ(LineReader(p[0], "pipe").input_size(), 0u);
  EXPECT_EQ(LineReader(std::vector<std::string>{path, "/dev/null"}).input_size(), 0u);
  ::close(p[0]);
  ::close(p[1]);
  ::close(fd);
  ::unlink(path);
}
