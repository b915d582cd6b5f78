#pragma once
// Group commit (DESIGN §6): request threads hand finished batch records to one committer
// thread, which takes everything queued, stores it in the archive with one put_many
// (sharing fsyncs), then writes the batch lines to stdout in one go, and only then
// tells each request its outcome — so a 202 always means "durable, then emitted".
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ep/archive.h"
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
  Committer(Archive* archive, RecordWriter& out, Metrics& metrics,
            std::function<void(const Status&)> on_output_error);
  ~Committer();
  void submit(Item&& item);
  // Processes everything queued, then ends the thread.
  void stop();
  // The stdout error, if any.
  Status output_status() const;

 private:
  void loop();
  void commit(std::vector<Item>& group);

  Archive* archive_;
  RecordWriter& out_;
  Metrics& metrics_;
  std::function<void(const Status&)> on_output_error_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> queue_;
  bool stop_ = false;
  Status output_status_;
  std::thread thread_;
};

}  // namespace ep::ingest
