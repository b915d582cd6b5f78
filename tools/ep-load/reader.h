#pragma once
// Reader side of ep-load: input lines -> parsed records -> groups, handed to the writer
// through a bounded queue (so memory is bounded by --batch-size/--max-points, never by
// the stream). A partial group is handed over when the input has been idle for
// --flush-interval, so a trickle is loaded promptly.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string_view>

#include "ep/ndjson.h"
#include "ep/status.h"
#include "group.h"
#include "options.h"

namespace ep::load {

// Bad input is reported through this (docs/conventions.md 15: location, reason; the caller counts).
class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void reject(std::string_view stream, std::int64_t line, std::string_view reason) = 0;
};

class GroupQueue {
 public:
  explicit GroupQueue(size_t capacity) : cap_(capacity) {}
  // Blocks while full. False when the consumer has closed the queue.
  bool push(Group&& g);
  // Blocks while empty. False when the producer has finished and the queue is drained.
  bool pop(Group& g);
  void finish();  // producer: no more groups
  void close();   // consumer: stop accepting groups
  bool closed() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Group> q_;
  size_t cap_;
  bool finished_ = false, closed_ = false;
};

struct ReadStats {
  std::uint64_t lines = 0, records = 0, batches = 0, points = 0, rejected = 0;
};

// Parses one NDJSON line into `g` (appending an entry and its points). Returns a data
// Status naming the field when the record is rejected.
Status parse_line(std::string_view text, std::string_view stream, std::int64_t line, Group& g);

// Reads all input into groups. `stop` ends reading early (SIGTERM, writer gave up);
// returns the reader's I/O status. Calls queue.finish() at the end.
Status read_groups(const Options& o, LineReader& reader, GroupQueue& queue, Reporter& rep,
                   std::atomic<bool>& stop, ReadStats& stats);

}  // namespace ep::load
