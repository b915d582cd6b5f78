// The multi-threaded window reader hands on exactly what the single-threaded one does,
// in the same order, and stops where it does under --strict.
#include "window_reader.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "ep/fsutil.h"

using namespace ep;
using namespace ep::train;

namespace {

std::string temp_file(const std::string& name, const std::string& text) {
  std::string p = ::testing::TempDir() + "/ep_train_reader_" + std::to_string(::getpid()) + "_" + name;
  EXPECT_TRUE(fs::write_file_atomic(p, text).is_ok());
  return p;
}

std::string window_line(int i) {
  return R"({"kind":"window","tenant":"t","device":"d)" + std::to_string(i % 7) +
         R"(","metric":"m","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:05:00Z","n":)" +
         std::to_string(i) + R"(,"features":{"mean":)" + std::to_string(i) + ".5}}";
}

// Several chunks' worth of lines with blank, bad, wrong-kind and too-long ones mixed in.
std::string mixed_input(int lines) {
  std::string text;
  for (int i = 0; i < lines; ++i) {
    if (i % 997 == 5) text += "\n";
    else if (i % 1499 == 7) text += "{not json\n";
    else if (i % 2203 == 9) text += R"({"kind":"point","tenant":"t"})" "\n";
    else if (i % 3001 == 11) text += std::string(300, 'x') + "\n";
    else text += window_line(i) + "\n";
  }
  return text;
}

struct Seen {
  std::vector<std::string> windows;  // device/n per window, in the order handed on
  ReadStats stats;
  Status status;
};

Seen read_all(const std::vector<std::string>& paths, int threads, bool strict) {
  LineReader in(paths, 256);
  Seen s;
  s.status = read_windows(
      in, ReadOptions{.threads = threads, .strict = strict},
      [&s](const Window& w) { s.windows.push_back(w.device + "/" + std::to_string(w.n)); },
      nullptr, s.stats);
  return s;
}

}  // namespace

TEST(WindowReader, ThreadsHandOnTheSameWindowsInTheSameOrder) {
  const int n = static_cast<int>(kChunkLines) * 5 + 123;
  std::string a = temp_file("a", mixed_input(n)), b = temp_file("b", mixed_input(777));
  Seen one = read_all({a, b}, 1, false);
  ASSERT_TRUE(one.status.is_ok());
  EXPECT_EQ(one.stats.lines, n + 777);
  // Rejected: the bad JSON, the point records and the over-long lines of both files.
  int expect_rejected = 0;
  for (int lines : {n, 777})
    for (int i = 0; i < lines; ++i)
      if (i % 997 != 5 && (i % 1499 == 7 || i % 2203 == 9 || i % 3001 == 11)) ++expect_rejected;
  EXPECT_EQ(one.stats.rejected, expect_rejected);
  EXPECT_EQ(one.windows.front(), "d0/0");
  for (int threads : {2, 3, 8}) {
    Seen many = read_all({a, b}, threads, false);
    ASSERT_TRUE(many.status.is_ok());
    EXPECT_EQ(many.windows, one.windows) << threads << " threads";
    EXPECT_EQ(many.stats.lines, one.stats.lines);
    EXPECT_EQ(many.stats.rejected, one.stats.rejected);
  }
}

TEST(WindowReader, StrictStopsAtTheFirstRejectWhateverTheThreads) {
  // The first reject is in the fourth chunk; nothing after it is handed on.
  std::string text;
  const int bad = static_cast<int>(kChunkLines) * 3 + 17;
  for (int i = 0; i < bad + 5000; ++i) text += (i == bad ? std::string("{oops") : window_line(i)) + "\n";
  std::string p = temp_file("strict", text);
  for (int threads : {1, 2, 4}) {
    Seen s = read_all({p}, threads, true);
    ASSERT_TRUE(s.status.is_ok());
    EXPECT_EQ(s.stats.rejected, 1);
    EXPECT_EQ(s.stats.lines, bad + 1) << threads << " threads";
    ASSERT_EQ(s.windows.size(), static_cast<std::size_t>(bad));
    EXPECT_EQ(s.windows.back(), "d" + std::to_string((bad - 1) % 7) + "/" + std::to_string(bad - 1));
  }
}

TEST(WindowReader, UnreadableFileIsAnIoError) {
  Seen s = read_all({"/nonexistent/ep-train-reader"}, 2, false);
  EXPECT_EQ(s.status.code(), Code::kIo);
  EXPECT_TRUE(s.windows.empty());
}
