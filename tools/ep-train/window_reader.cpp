#include "window_reader.h"

#include <rapidjson/document.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ep/json.h"
#include "ep/log.h"

namespace ep::train {

namespace {

constexpr std::size_t kChunkBytes = 4 << 20;        // a chunk ends at this much text
constexpr std::size_t kParseArenaBytes = 64 << 10;  // one ordinary line's parse, no malloc

// Lines read but not yet handed on, with what parsing made of them.
struct Chunk {
  enum class Kind : std::uint8_t { kBlank, kTooLong, kLine };
  struct Entry {
    std::size_t offset = 0;  // into text; each line is followed by '\0'
    std::int64_t number = 0;
    std::uint32_t stream = 0;  // into streams
    Kind kind = Kind::kLine;
  };
  std::string text;
  std::vector<Entry> entries;
  std::vector<std::string> streams;
  // Filled by the parser, parallel to entries (kLine only): the window, or why not.
  std::vector<Window> windows;
  std::vector<std::string> errors;
  bool parsed = false;

  void clear() {
    text.clear();
    entries.clear();
    streams.clear();
    parsed = false;
  }
};

// Parses lines in place with one reused document: its pool allocator is emptied before
// each line (a document reused without that keeps every line's values), and ordinary
// lines fit the arena, so parsing does not call malloc.
class LineParser {
 public:
  LineParser() : arena_(kParseArenaBytes), pool_(arena_.data(), arena_.size()), doc_(&pool_) {}

  Status parse(char* text, Window& w) {
    EP_RETURN_IF_ERROR(parse_json_insitu(text, doc_));  // empties doc_ and pool_ first
    if (kind_of(doc_) != Kind::kWindow) return Status::data("kind: expected \"window\"");
    return parse_record(doc_, w);
  }

  void parse(Chunk& c) {
    c.windows.resize(c.entries.size());
    c.errors.resize(c.entries.size());
    for (std::size_t i = 0; i < c.entries.size(); ++i) {
      if (c.entries[i].kind != Chunk::Kind::kLine) continue;
      Status s = parse(c.text.data() + c.entries[i].offset, c.windows[i]);
      c.errors[i] = s.is_ok() ? std::string() : s.message();
    }
  }

 private:
  std::vector<char> arena_;
  rapidjson::MemoryPoolAllocator<> pool_;
  rapidjson::Document doc_;
};

// Reads up to kChunkLines lines (or kChunkBytes of text) into c; false at the end.
bool fill(LineReader& in, Chunk& c) {
  Line line;
  while (c.entries.size() < kChunkLines && c.text.size() < kChunkBytes) {
    if (!in.next(line)) return false;
    if (c.streams.empty() || c.streams.back() != line.stream) c.streams.emplace_back(line.stream);
    Chunk::Entry e;
    e.offset = c.text.size();
    e.number = line.number;
    e.stream = static_cast<std::uint32_t>(c.streams.size() - 1);
    e.kind = line.too_long ? Chunk::Kind::kTooLong
             : line.text.empty() ? Chunk::Kind::kBlank
                                 : Chunk::Kind::kLine;
    c.text.append(line.text);
    c.text.push_back('\0');
    c.entries.push_back(e);
  }
  return true;
}

class Pipeline {
 public:
  Pipeline(LineReader& in, const ReadOptions& opt, const std::function<void(const Window&)>& on_window,
           const std::function<void(std::int64_t)>& on_lines, ReadStats& stats)
      : in_(in), opt_(opt), on_window_(on_window), on_lines_(on_lines), stats_(stats) {}

  void run() {
    if (opt_.threads <= 1) {
      run_inline();
      return;
    }
    std::vector<std::thread> workers;
    for (int t = 0; t < opt_.threads; ++t) workers.emplace_back([this] { work(); });
    run_pipelined();
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      todo_.clear();  // after a --strict stop: parsed chunks nobody will read
    }
    work_cv_.notify_all();
    for (auto& w : workers) w.join();
  }

 private:
  void run_inline() {
    Chunk c;
    LineParser parser;
    for (bool more = true; more;) {
      c.clear();
      more = fill(in_, c);
      parser.parse(c);
      if (!deliver(c)) return;
    }
  }

  void run_pipelined() {
    const std::size_t max_in_flight = 2 * static_cast<std::size_t>(opt_.threads) + 2;
    std::deque<Chunk*> order;  // submitted, oldest first
    for (bool more = true; more || !order.empty();) {
      if (more && order.size() < max_in_flight) {
        Chunk* c = take_free();
        more = fill(in_, *c);
        {
          std::lock_guard lock(mu_);
          todo_.push_back(c);
        }
        work_cv_.notify_one();
        order.push_back(c);
      }
      // Hand on what is parsed, in order; wait for the oldest when nothing else to do.
      while (!order.empty()) {
        Chunk* f = order.front();
        {
          std::unique_lock lock(mu_);
          if (!f->parsed) {
            if (more && order.size() < max_in_flight) break;  // read the next chunk first
            done_cv_.wait(lock, [f] { return f->parsed; });
          }
        }
        order.pop_front();
        bool go_on = deliver(*f);
        give_back(f);
        // --strict stop: run() drops the queue and joins the workers; chunks still being
        // parsed stay alive until then (chunks_ owns them).
        if (!go_on) return;
      }
    }
  }

  void work() {
    LineParser parser;
    for (;;) {
      Chunk* c;
      {
        std::unique_lock lock(mu_);
        work_cv_.wait(lock, [this] { return stop_ || !todo_.empty(); });
        if (todo_.empty()) return;
        c = todo_.front();
        todo_.pop_front();
      }
      parser.parse(*c);
      {
        std::lock_guard lock(mu_);
        c->parsed = true;
      }
      done_cv_.notify_all();
    }
  }

  Chunk* take_free() {
    if (free_.empty()) {
      chunks_.push_back(std::make_unique<Chunk>());
      return chunks_.back().get();
    }
    Chunk* c = free_.back();
    free_.pop_back();
    c->clear();
    return c;
  }
  void give_back(Chunk* c) { free_.push_back(c); }

  // Hands c's windows on and reports its rejects; false when --strict stops the read.
  bool deliver(Chunk& c) {
    for (std::size_t i = 0; i < c.entries.size(); ++i) {
      const Chunk::Entry& e = c.entries[i];
      ++stats_.lines;
      std::string_view stream = c.streams[e.stream];
      if (e.kind == Chunk::Kind::kTooLong) {
        reject(stream, e.number, "line longer than the maximum line length");
      } else if (e.kind == Chunk::Kind::kLine) {
        if (c.errors[i].empty()) on_window_(c.windows[i]);
        else reject(stream, e.number, c.errors[i]);
      }
      if (stats_.rejected > 0 && opt_.strict) return false;
      if ((stats_.lines & 1023) == 0 && on_lines_) on_lines_(stats_.lines);
    }
    return true;
  }

  void reject(std::string_view stream, std::int64_t number, std::string_view reason) {
    ++stats_.rejected;
    log::reject(stream, number, reason);
  }

  LineReader& in_;
  const ReadOptions& opt_;
  const std::function<void(const Window&)>& on_window_;
  const std::function<void(std::int64_t)>& on_lines_;
  ReadStats& stats_;

  std::vector<std::unique_ptr<Chunk>> chunks_;  // every chunk made, for reuse
  std::vector<Chunk*> free_;                    // calling thread only
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<Chunk*> todo_;
  bool stop_ = false;
};

}  // namespace

Status read_windows(LineReader& in, const ReadOptions& opt,
                    const std::function<void(const Window&)>& on_window,
                    const std::function<void(std::int64_t)>& on_lines, ReadStats& stats) {
  Pipeline(in, opt, on_window, on_lines, stats).run();
  return in.status();
}

}  // namespace ep::train
