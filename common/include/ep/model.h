#pragma once
// Model artefacts shared by ep-train (writes) and ep-score (reads): an Isolation Forest
// plus everything needed to use it — feature names, robust scaling, threshold, training
// range — as one self-describing, checksummed JSON document, versioned per series
// ("tenant/device/metric@N"). The format is documented in docs/model-format.md.
//
// File store layout: DIR/<tenant>/<device>/<metric>/<N>.json, each name component
// escaped ('/' -> %2F, '*' -> %2A, a leading '.' -> %2E). A group model trained
// across devices (ep-train --group-by metric) has device "*". Files are written
// atomically (temp, fsync, link) and never overwritten: a new version is a new file.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ep/iforest.h"
#include "ep/records.h"
#include "ep/status.h"
#include "ep/time.h"

namespace ep::model {

inline constexpr int kFormatVersion = 1;
inline constexpr const char* kFormatName = "edgepulse-model";
inline constexpr const char* kGroupDevice = "*";

struct Model {
  std::string tenant, device, metric;  // device "*": a group model for the metric
  int version = 0;                     // assigned by Store::save
  TimeNs created_at = 0;
  TimeNs trained_from = 0, trained_to = 0;  // first window start, last window end
  std::int64_t windows = 0;                 // training windows used
  std::int64_t series = 1;                  // series pooled (group models)
  std::vector<std::string> features;
  std::string scaling = "median_iqr";       // how center/scale were computed
  std::vector<double> center, scale;        // per feature: median, robust sigma
  iforest::Params params;
  double contamination = 0;                 // 0 when the threshold was fixed
  double threshold = 0.6;                   // raw Isolation Forest score threshold
  iforest::Forest forest;

  SeriesKey key() const { return {tenant, device, metric}; }
  std::string series_name() const { return tenant + "/" + device + "/" + metric; }
  std::string id() const { return series_name() + "@" + std::to_string(version); }
};

// Maps a raw forest score to [0, 1] so that the model threshold lands on 0.5:
// piecewise linear, [0, t] -> [0, 0.5] and [t, 1] -> [0.5, 1]. Monotone.
double calibrate(double raw, double threshold);

// Serialises with the checksum filled in (SHA-256 of the document with the checksum's
// 64 hex digits replaced by '0's).
std::string serialize(const Model& m);
// Parses and verifies (format, version, checksum, shapes). `where` names the source.
Result<Model> parse(std::string_view text, std::string_view where);
// Checks only the checksum.
Status verify_checksum(std::string_view text);
// parse(), then checks that the artefact is series `k`, version `version` (kData naming
// `where` otherwise): a file or row must hold the model it is stored as.
Result<Model> parse_as(std::string_view text, std::string_view where, const SeriesKey& k,
                       int version);

// "tenant/device/metric" or "tenant/device/metric@N" (device may contain '/': the
// tenant ends at the first '/', the metric starts after the last one). version 0 = latest.
struct SeriesRef {
  SeriesKey key;
  int version = 0;
};
Result<SeriesRef> parse_series_ref(std::string_view s);

struct Entry {
  SeriesKey key;
  int version = 0;
  std::string path;
  std::string id() const { return key.to_string() + "@" + std::to_string(version); }
};

// Robust location and scale of one feature's values (NaNs ignored), as stored in a
// model's "scaling": center = median; scale = IQR / 1.349, else 1.4826 * MAD, else
// the standard deviation, else (a feature constant over the data) the floor
// max(0.01, 0.01 * |center|), so a departure from a constant still has a finite z.
struct Robust {
  double center = 0, scale = 1;
  std::size_t count = 0;  // finite values seen
};
Robust robust_stats(std::vector<double> values);
// The scale given to a feature constant over the data: max(0.01, 0.01 * |center|).
double scale_floor(double center);
// The smallest scale a model gives a feature, by name: 1 for flat_surprise (already in
// its own units, decimal orders of magnitude, and 0 in most windows, so its robust
// scale says nothing about how rare a large value is), else 0.
double min_feature_scale(std::string_view name);
// Median of the finite values (NaN when none). Reorders `values`.
double median_in_place(std::vector<double>& values);
// Quantile q in [0,1] by linear interpolation (numpy's default). Reorders `values`.
double quantile_in_place(std::vector<double>& values, double q);

// Where a scorer finds models: the directory Store below, or the Postgres models table
// (ep-score --db, tools/ep-score/pg_io.h). load() returns the given version, or the
// series' current one when version == 0; kNotFound when the series has none; any other
// error (kData for a corrupt or tampered artefact, naming it; kIo, kUnavailable) means
// the model exists but cannot be used.
class Source {
 public:
  virtual ~Source() = default;
  virtual Result<Model> load(const SeriesKey& k, int version = 0) const = 0;
  // For messages: "directory DIR", "the models table".
  virtual std::string describe() const = 0;
  // Drops whatever the source caches, so load() sees models stored since.
  virtual void refresh() const {}
};

class Store : public Source {
 public:
  explicit Store(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }

  std::string series_dir(const SeriesKey& k) const;
  // Highest stored version, 0 when none.
  Result<int> latest_version(const SeriesKey& k) const;
  // Assigns m.version = latest + 1 and writes it; if another writer took that number
  // first, takes the next one. Never overwrites.
  Status save(Model& m) const;
  // The given version, or the latest when version == 0. kNotFound when absent.
  Result<Model> load(const SeriesKey& k, int version = 0) const override;
  std::string describe() const override { return "directory " + dir_; }
  // Every stored version, sorted by series then version.
  Result<std::vector<Entry>> list() const;

  // Batched saving, for trainers writing many artefacts (ep-train): stage() assigns
  // m.version = latest + 1 and writes the artefact to a temporary file beside its final
  // name ("<N>.json.tmp.<random>", ignored by readers) without syncing; commit() syncs
  // the file system once (syncfs), links every staged file to its version name (never
  // overwriting), removes the temporaries and syncs again. The durability and atomicity
  // of save() for two syncs per batch instead of two fsyncs per artefact. A version
  // taken meanwhile by another writer is saved as the next free one (commit updates
  // Staged::version and path).
  struct Staged {
    SeriesKey key;
    int version = 0;
    std::string path, tmp;
    Status status;  // set by commit
  };
  // at_least: the lowest version to assign (ep-train --db passes the models table's
  // latest + 1, so a second trainer host with its own directory never reuses a number).
  Result<Staged> stage(Model& m, int at_least = 1) const;
  // Sets every entry's status; returns the first failure (ok when all were stored).
  Status commit(std::vector<Staged>& staged) const;

 private:
  std::string dir_;
};

}  // namespace ep::model
