#pragma once
// Assembling a NAB corpus from files: the windows file (windows.json: {"cat/name.csv":
// [[start, end], ...]}), the data files (DIR/cat/name.csv or DIR/data/cat/name.csv,
// `timestamp,value`), and the detector's scores, either
//  - NDJSON score records, one per row: device = category, metric = file name (with or
//    without ".csv"), end = the row's timestamp, score = the row's anomaly score; rows
//    without a record score 0 (a window detector emits nothing for the first rows); several
//    records for one row keep the highest score; or
//  - a NAB results directory: DIR/cat/<detector>_name.csv (or DIR/cat/name.csv) with
//    columns timestamp and anomaly_score, one row per data row, in order.
#include <cstdint>
#include <string>
#include <vector>

#include "ep/status.h"
#include "nab.h"
#include "ep/record_input.h"

namespace ep::eval::nab {

struct CorpusSpec {
  std::string windows_path;            // required
  std::string data_dir;                // required for NDJSON scores
  std::string files_list;              // optional: one "cat/name.csv" per line
  std::string results_dir;             // NAB results layout instead of NDJSON
  std::vector<std::string> score_inputs;  // NDJSON inputs (empty or "-": stdin)
  bool strict = false;
};

struct CorpusLoad {
  std::vector<File> files;
  InputStats input;                 // NDJSON reading
  std::int64_t rows_without_score = 0;
  std::int64_t unmatched_records = 0;  // score records of a listed file matching no row
  std::int64_t foreign_records = 0;    // score records of series not in the corpus
};

Result<std::vector<std::pair<TimeNs, TimeNs>>> parse_window_list(const rapidjson::Value& v,
                                                                 std::string_view path);
// Parses "timestamp,value"-style CSV text: returns the timestamps of the named column
// and, if `value_column` is non-empty, its values. Errors name file:line.
struct CsvColumns {
  std::vector<TimeNs> ts;
  std::vector<double> values;
};
Result<CsvColumns> parse_csv(std::string_view text, std::string_view name,
                             std::string_view value_column);

Result<CorpusLoad> load_corpus(const CorpusSpec& spec);

}  // namespace ep::eval::nab
