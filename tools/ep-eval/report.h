#pragma once
// Rendering ep-eval results: an aligned text table for people, one JSON object for
// scripts (undefined ratios are "-" in text and null in JSON).
#include <string>
#include <vector>

#include "events.h"
#include "nab.h"

namespace ep::eval {

std::string render_events_text(const EventReport& r);
std::string render_events_json(const EventReport& r);

struct NabSummary {
  std::size_t files = 0, windows = 0, rows = 0;
  std::vector<nab::ProfileResult> profiles;
  bool fixed_threshold = false;
};
std::string render_nab_text(const NabSummary& s, bool per_file);
std::string render_nab_json(const NabSummary& s, bool per_file);

}  // namespace ep::eval
