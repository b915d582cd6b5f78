#pragma once
// ep-eval's core: options in, report text out (main.cpp only parses and prints).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ep/status.h"

namespace ep::eval {

struct Options {
  // Event-level evaluation.
  std::string truth_path;
  std::optional<double> threshold;
  std::string merge_gap = "0s";
  // NAB mode.
  bool nab = false;
  std::string nab_windows, nab_data, nab_files, nab_results;
  std::vector<std::string> nab_profiles;  // empty: all three
  std::optional<double> nab_threshold;
  bool per_file = false;
  // Output and input.
  bool json = false;
  bool strict = false;
  std::vector<std::string> inputs;  // score records; empty or "-": stdin
};

struct Outcome {
  std::string report;        // for stdout
  std::int64_t rejected = 0; // input lines reported and skipped (exit 65)
};

// Usage errors (Code::kUsage) for inconsistent options; I/O and data errors otherwise.
Result<Outcome> run(const Options& opts);

}  // namespace ep::eval
