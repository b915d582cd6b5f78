#include "committer.h"

#include <algorithm>

#include "ep/fsutil.h"

namespace ep::ingest {
namespace {

// What a client is told when its batch could not be archived: what happened, never the
// server's paths or URLs (the log has those).
Status for_client(const Status& archive_error) {
  return Status::unavailable(fs::is_storage_full(archive_error)
                                 ? "archive storage is full; retry later"
                                 : "archive unavailable; retry later");
}

}  // namespace

Committer::Committer(Archive* archive, RecordWriter& out, Metrics& metrics,
                     std::function<void(const Status&)> on_output_error, int workers)
    : archive_(archive), out_(out), metrics_(metrics), on_output_error_(std::move(on_output_error)) {
  // Without an archive there is nothing to wait for but a write(2): the request thread
  // writes its own line (under out_mu_), which costs less than waking a committer.
  if (!archive_) return;
  // A segment log syncs one file per tenant-day: one committer appends and syncs
  // everything queued while a second gathers the next group; more would only split the
  // groups and wake each other (measured: 32 committers 9.0k req/s, 2 committers 13.2k).
  take_all_ = archive_->format() == 2;
  int n = take_all_ ? std::min(std::max(1, workers), kSegmentLogWriters) : std::max(1, workers);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { loop(); });
}

Committer::~Committer() { stop(); }

void Committer::submit(Item&& item) {
  if (!archive_) return emit(item);
  {
    std::lock_guard lock(mu_);
    if (!stop_) {
      queue_.push_back(std::move(item));
      cv_.notify_one();
      return;
    }
  }
  item.done(Status::unavailable("shutting down"));
}

void Committer::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

Status Committer::output_status() const {
  std::lock_guard lock(mu_);
  return output_status_;
}

void Committer::loop() {
  std::vector<Item> group;
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_;
    cv_.wait(lock, [&] { return !queue_.empty() || stop_; });
    --idle_;
    if (queue_.empty()) break;  // stop_ and drained
    // Segment log: everything queued is one group (one append, one fdatasync). Otherwise
    // a fair share, so idle committers pick up the rest and sync in parallel.
    size_t share = take_all_ ? queue_.size()
                             : (queue_.size() + static_cast<size_t>(idle_)) / static_cast<size_t>(idle_ + 1);
    for (size_t i = 0; i < share; ++i) {
      group.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    if (!queue_.empty()) cv_.notify_one();
    lock.unlock();
    commit(group);
    group.clear();
    lock.lock();
  }
}

// Without an archive: the line to stdout in the calling thread, then the answer.
void Committer::emit(Item& item) {
  Status result;
  {
    std::lock_guard out_lock(out_mu_);
    if (!output_ok()) {
      result = Status::unavailable("stdout unavailable");
    } else {
      out_.write(item.line);
      if (!out_.flush()) {
        output_failed();
        result = Status::unavailable("stdout unavailable");
      }
    }
  }
  item.done(result);
}

bool Committer::output_ok() const {
  std::lock_guard lock(mu_);
  return output_status_.is_ok();
}

// Under out_mu_: records why stdout failed and tells the owner (once).
void Committer::output_failed() {
  Status err = out_.broken_pipe() ? Status::io("stdout: broken pipe") : out_.close();
  if (err.is_ok()) err = Status::io("stdout: write failed");
  {
    std::lock_guard lock(mu_);
    output_status_ = err;
  }
  if (on_output_error_) on_output_error_(err);
}

void Committer::commit(std::vector<Item>& group) {
  std::vector<Status> results(group.size());
  if (archive_) {
    std::vector<ArchivePut> puts;
    puts.reserve(group.size());
    for (const auto& it : group) puts.push_back(ArchivePut{it.tenant, it.batch_id, it.received_at, it.line});
    std::vector<Result<std::string>> out;
    TimeNs t0 = monotonic_ns();
    Status s = archive_->put_many(puts, out);
    metrics_.commit(group.size(), monotonic_ns() - t0);
    for (size_t i = 0; i < group.size(); ++i) {
      Status err = !s.is_ok()         ? s
                   : i >= out.size() ? Status::software("no result for batch")
                                     : out[i].status();
      if (err.is_ok()) continue;
      archive_log_.error(err, "archive");
      results[i] = for_client(err);
    }
  }
  // The batch is durable even if stdout fails (replay recovers it).
  {
    std::lock_guard out_lock(out_mu_);
    if (output_ok()) {
      for (size_t i = 0; i < group.size(); ++i)
        if (results[i].is_ok()) out_.write(group[i].line);
      if (!out_.flush()) output_failed();
    }
  }
  for (size_t i = 0; i < group.size(); ++i) group[i].done(results[i]);
}

}  // namespace ep::ingest
