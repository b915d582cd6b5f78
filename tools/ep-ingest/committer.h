#pragma once
// Group commit (docs/architecture.md §6): request threads hand finished batch records to committer
// threads. Each takes its share of what is queued, stores it in the archive with one
// put_many (format 2: appended with one write and synced with one fdatasync shared with
// the groups appended meanwhile; format 1: sharing directory fsyncs), then writes the
// batch lines to stdout, and only then tells each request its outcome — so a 202 always
// means "durable, then emitted".
// An archive failure reaches the request as a path-free kUnavailable ("archive storage
// is full; retry later") and the log (rate-limited) with the full reason.
// Several committers run at once because the file system batches concurrent fdatasync
// calls into one journal commit (measured on ext4: 7.4 ms per file one at a time,
// 0.55 ms per file with 16 at once); one committer would serialise them.
// Without an archive, submit() writes the line in the calling thread.
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ep/archive.h"
#include "ep/log.h"
#include "ep/ndjson.h"
#include "ep/status.h"
#include "metrics.h"

namespace ep::ingest {

class Committer {
 public:
  using Done = std::function<void(const Status&)>;
  struct Item {
    std::string line;  // the batch record, no newline
    std::string tenant, batch_id;
    TimeNs received_at = 0;
    Done done;
  };

  // archive may be null (then "durable" means "written to stdout"). on_output_error is
  // called once if stdout fails (the caller stops the server).
  // workers: committer threads (1 is enough without an archive).
  Committer(Archive* archive, RecordWriter& out, Metrics& metrics,
            std::function<void(const Status&)> on_output_error, int workers = 1);
  ~Committer();
  void submit(Item&& item);
  // Processes everything queued, then ends the thread.
  void stop();
  // The stdout error, if any.
  Status output_status() const;

 private:
  void loop();
  void commit(std::vector<Item>& group);  // with an archive
  void emit(Item& item);                   // without one
  bool output_ok() const;
  void output_failed();

  static constexpr int kSegmentLogWriters = 2;  // committers at most for a format 2 archive

  Archive* archive_;
  bool take_all_ = false;  // format 2: a committer takes everything queued
  RecordWriter& out_;
  Metrics& metrics_;
  std::function<void(const Status&)> on_output_error_;
  // A full disk fails every request: the first failure in full, then one line per 10 s.
  log::Throttled archive_log_{10 * kNsPerSec};
  mutable std::mutex mu_;  // queue_, idle_, stop_, output_status_
  std::condition_variable cv_;
  std::deque<Item> queue_;
  int idle_ = 0;
  bool stop_ = false;
  Status output_status_;
  std::mutex out_mu_;  // stdout: one group's lines at a time
  std::vector<std::thread> threads_;
};

}  // namespace ep::ingest
