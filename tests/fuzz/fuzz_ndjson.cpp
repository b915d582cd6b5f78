// libFuzzer target: the NDJSON line reader (common/src/ndjson.cpp) with its max-line
// limit, against a reference splitter. The input's first three bytes choose the limit
// (0..4095 bytes) and the size of the pieces the reader gets from a pipe (1..256 bytes,
// one piece per read, fed from the reader's before-read hook), so lines straddle reads.
// Then the same text is read as two files. Properties: the reader yields exactly the
// reference lines (text without "\n" and one trailing "\r", 1-based numbers, over-long
// lines flagged with empty text), counts every byte, and ends without an error.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ep/ndjson.h"
#include "fuzz_check.h"

using ep::fuzz::check;

namespace {

struct Want {
  std::string text;
  std::int64_t number;
  bool too_long;
};

std::vector<Want> reference(std::string_view in, size_t max) {
  std::vector<Want> out;
  std::int64_t n = 0;
  while (!in.empty()) {
    size_t nl = in.find('\n');
    std::string_view line = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
    ++n;
    if (line.size() > max) {
      out.push_back({"", n, true});
      continue;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back({std::string(line), n, false});
  }
  return out;
}

void expect_lines(ep::LineReader& r, const std::vector<Want>& want, std::string_view stream,
                  size_t& i) {
  ep::Line line;
  for (const Want& w : want) {
    check(r.next(line), "the reader yields every line");
    check(line.number == w.number && line.too_long == w.too_long && line.text == w.text,
          "a line as the reference splits it", std::to_string(i) + ": " + std::string(line.text));
    check(line.stream == stream, "a line names its stream", line.stream);
    ++i;
  }
}

int memfd_with(std::string_view bytes) {
  int fd = ::memfd_create("ep-fuzz-ndjson", MFD_CLOEXEC);
  if (fd < 0 || ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()))
    std::abort();
  ::lseek(fd, 0, SEEK_SET);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const size_t max = (static_cast<size_t>(data[0]) << 4 | (data[1] & 15u));
  const size_t piece = 1 + data[2];
  std::string_view text(reinterpret_cast<const char*>(data) + 3, size - 3);

  // 1. One stream through a pipe, `piece` bytes per read.
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) std::abort();
  size_t fed = 0;
  {
    ep::LineReader reader(p[0], "pipe", max);
    reader.set_before_read([&] {
      if (p[1] < 0) return;
      if (fed == text.size()) {
        ::close(p[1]);
        p[1] = -1;
        return;
      }
      size_t n = std::min(piece, text.size() - fed);
      if (::write(p[1], text.data() + fed, n) != static_cast<ssize_t>(n)) std::abort();
      fed += n;
    });
    size_t i = 0;
    expect_lines(reader, reference(text, max), "pipe", i);
    ep::Line extra;
    check(!reader.next(extra), "no line after the last", extra.text);
    check(reader.status().is_ok(), "a pipe reads without error", reader.status().message());
    check(reader.bytes_read() == text.size(), "every byte is counted");
  }
  ::close(p[0]);
  if (p[1] >= 0) ::close(p[1]);

  // 2. The same text as two files (split after the first third), read in turn.
  std::string_view a = text.substr(0, text.size() / 3), b = text.substr(text.size() / 3);
  int fa = memfd_with(a), fb = memfd_with(b);
  std::string pa = "/proc/self/fd/" + std::to_string(fa), pb = "/proc/self/fd/" + std::to_string(fb);
  {
    ep::LineReader reader({pa, pb}, max);
    size_t i = 0;
    expect_lines(reader, reference(a, max), pa, i);
    expect_lines(reader, reference(b, max), pb, i);
    ep::Line extra;
    check(!reader.next(extra), "no line after the last file", extra.text);
    check(reader.status().is_ok(), "files read without error", reader.status().message());
    check(reader.bytes_read() == text.size(), "every byte of every file is counted");
  }
  ::close(fa);
  ::close(fb);
  return 0;
}
