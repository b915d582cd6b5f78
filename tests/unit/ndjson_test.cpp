#include "ep/ndjson.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include <string>
#include <vector>

using namespace ep;

namespace {
// Feeds text through a real (unlinked) temp file and collects lines; a pipe would
// deadlock once the text exceeds the pipe buffer.
std::vector<Line> read_all(const std::string& text, size_t max, std::vector<std::string>* texts) {
  char path[] = "/tmp/ep-ndjson-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  unlink(path);
  EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  lseek(fd, 0, SEEK_SET);
  int fds[2] = {fd, -1};
  LineReader r(fds[0], "file", max);
  std::vector<Line> out;
  Line l;
  while (r.next(l)) {
    out.push_back(l);
    texts->push_back(std::string(l.text));
  }
  close(fds[0]);
  return out;
}
}  // namespace

TEST(NdjsonReader, SplitsLinesAndNumbersThem) {
  std::vector<std::string> t;
  auto lines = read_all("a\nbb\r\n\nccc", 100, &t);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(t[0], "a");
  EXPECT_EQ(t[1], "bb");
  EXPECT_EQ(t[2], "");
  EXPECT_EQ(t[3], "ccc");
  EXPECT_EQ(lines[3].number, 4);
}

TEST(NdjsonReader, LineLongerThanLimitIsRejectedAndReadingGoesOn) {
  std::vector<std::string> t;
  std::string big(200000, 'x');
  auto lines = read_all("ok1\n" + big + "\nok2\n", 1000, &t);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_FALSE(lines[0].too_long);
  EXPECT_TRUE(lines[1].too_long);
  EXPECT_EQ(lines[1].number, 2);
  EXPECT_EQ(t[2], "ok2");
  EXPECT_EQ(lines[2].number, 3);
}

TEST(NdjsonReader, MissingFileIsAnIoError) {
  LineReader r({"/nonexistent/file.ndjson"});
  Line l;
  EXPECT_FALSE(r.next(l));
  EXPECT_EQ(r.status().code(), Code::kIo);
}

TEST(RecordWriter, BrokenPipeIsReportedNotFatal) {
  ignore_sigpipe();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[0]);
  RecordWriter w(fds[1], 16);
  w.write("{\"kind\":\"point\"}");
  EXPECT_FALSE(w.flush());
  EXPECT_TRUE(w.broken_pipe());
  EXPECT_TRUE(w.close().is_ok());
  close(fds[1]);
}
