#pragma once
// Window records (docs/architecture.md §3) as NDJSON, written without a DOM: the series prefix is
// escaped once per series, numbers use the shortest round-trip form.
#include <string>

#include "ep/ndjson.h"
#include "extractor.h"

namespace ep::features {

// Appends the "features" object ({"mean":…,"stuck":false,…}).
void append_features_json(std::string& out, const FeatureSet& f);
// Appends one window record (no newline).
void append_window_json(std::string& out, const WindowOut& w);

// Writes each window as one line; remembers a broken pipe so the run can stop.
class NdjsonWindowSink final : public WindowSink {
 public:
  explicit NdjsonWindowSink(RecordWriter& out) : out_(out) {}
  void on_window(const WindowOut& w) override;
  bool broken() const { return broken_; }

 private:
  RecordWriter& out_;
  std::string line_;
  bool broken_ = false;
};

}  // namespace ep::features
