#pragma once
// Where ep-alert's durable state lives: a --state file (files mode) or Postgres
// (--db). The run loop tells the store about delivery outcomes as they happen and asks
// it to save the whole State at most every --state-interval and at exit.
#include <string>

#include "deliverer.h"
#include "ep/status.h"
#include "ep/time.h"
#include "state.h"

namespace ep::alert {

class Store {
 public:
  virtual ~Store() = default;
  // Where the state is kept, for messages ("alert-state.json", "Postgres").
  virtual std::string where() const = 0;
  // Persists the state (series, deliveries not yet delivered, disabled endpoints) and
  // everything reported since the last save. A failed save keeps what it had to write.
  virtual Status save(const State& s, TimeNs now) = 0;
  // An event that was suppressed (cooldown, silence, flapping): not sent, recorded.
  virtual void on_suppressed(const Delivery&, TimeNs /*now*/) {}
  // Every settled or rescheduled attempt (the Deliverer's report).
  virtual void on_attempt(const AttemptReport&, TimeNs /*now*/) {}
};

// Files mode: the whole state as one JSON document, rewritten atomically.
class FileStore : public Store {
 public:
  explicit FileStore(std::string path) : path_(std::move(path)) {}
  std::string where() const override { return path_; }
  Status save(const State& s, TimeNs now) override { return save_state(path_, s, now); }

 private:
  std::string path_;
};

}  // namespace ep::alert
