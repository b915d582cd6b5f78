#pragma once
// ep-train core: reads window records, keeps a bounded buffer per series (or per metric
// group), and trains one Isolation Forest model per series into a model store.
#include <cstdint>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ep/iforest.h"
#include "ep/model.h"
#include "ep/ndjson.h"
#include "ep/records.h"
#include "ep/status.h"
#include "ep/time.h"

namespace ep::train {

enum class GroupBy { kSeries, kMetric };

struct Options {
  iforest::Params forest;                  // trees, sample, base seed
  double contamination = 0.01;             // threshold = (1 - c) quantile of training scores
  std::optional<double> threshold;         // fixed raw threshold instead
  std::optional<TimeNs> from, to;          // training range on window start/end
  GroupBy group_by = GroupBy::kSeries;
  std::vector<std::string> features;       // empty: every feature the windows carry
  std::size_t max_windows = 4096;          // most recent windows kept per series
  std::size_t min_windows = 32;            // fewer: no model (ep-score keeps its fallback)
  double min_presence = 0.5;               // a feature must be in this share of windows
  int threads = 1;
  bool strict = false;
};

struct Summary {
  std::int64_t lines = 0, windows = 0, rejected = 0, out_of_range = 0;
  std::int64_t trained = 0, too_few = 0, failed = 0;
};

// One trained (or skipped) series, as reported on stdout.
struct Outcome {
  SeriesKey key;
  Status status;               // ok, or why no model was written
  std::string record;          // the "model" record written to stdout when ok
  int version = 0;             // when ok: the stored version and its artefact file
  std::string path;
};

// The per-series seed: the base seed mixed with the series name, so results do not
// depend on input order, thread count or which other series are in the run.
std::uint64_t series_seed(std::uint64_t base, const SeriesKey& key);

// Trains a model for one series from its windows' rows (feature names in `names`,
// NaN = absent). Does not save it. kData when there are too few windows.
Result<model::Model> train_series(const SeriesKey& key, const std::vector<std::string>& names,
                                  const std::vector<std::vector<double>>& rows, TimeNs from,
                                  TimeNs to, std::int64_t series_count, const Options& opt,
                                  TimeNs now);

class Trainer {
 public:
  explicit Trainer(Options opt);
  ~Trainer();
  // Adds one window (filtered by the training range).
  void add(const Window& w);
  // Trains every buffered series, saves to the store, calls on_outcome for each
  // (in series order, from the calling thread). on_progress (optional) gets (series
  // done, series in all) from the calling thread while training. Artefacts are committed
  // to the store in batches of kCommitBatch (model::Store::stage/commit). Returns the
  // first I/O error, if any.
  Status finish(const model::Store& store, const Clock& clock,
                const std::function<void(const Outcome&)>& on_outcome,
                const std::function<void(std::size_t, std::size_t)>& on_progress = {});
  static constexpr std::size_t kCommitBatch = 256;
  // The lowest version each series' new model may take (default: 1, i.e. the store's
  // latest + 1). Called from the training threads; must be safe to call concurrently.
  void set_version_floor(std::function<int(const SeriesKey&)> floor) { floor_ = std::move(floor); }
  std::size_t series() const;
  Summary& summary() { return summary_; }

 private:
  struct Buffer;
  static constexpr std::size_t kNoFeature = SIZE_MAX;
  // The global index of a feature name, adding it when allowed; kNoFeature when not.
  std::size_t feature_index(const std::string& name);
  std::size_t add_name(const std::string& name);

  Options opt_;
  std::function<int(const SeriesKey&)> floor_;
  std::vector<std::string> names_;                      // global feature index
  std::unordered_map<std::string, std::size_t> name_index_;
  std::size_t n_index_ = kNoFeature, expected_index_ = kNoFeature;
  std::unordered_map<SeriesKey, std::unique_ptr<Buffer>, SeriesKeyHash> buffers_;
  Summary summary_;
  // Fast paths of add(): the previous window's feature names (by position) and series.
  std::vector<std::string> recent_names_;
  std::vector<std::size_t> recent_index_;
  SeriesKey recent_key_;
  Buffer* recent_buffer_ = nullptr;
  std::vector<double> row_;
};

// The whole run: reads records from `in`, trains, writes one "model" record per
// trained series to `out`. Rejects are reported through log::reject and counted.
// Returns kData when some input was rejected (all valid input was used).
Status run(const Options& opt, LineReader& in, RecordWriter& out, const model::Store& store,
           const Clock& clock, bool progress, Summary& summary);

// Trains every series buffered in `trainer` into `store`, writes one "model" record per
// trained series to `out`, reports the rest, fills the counters of `summary`.
// `on_model` (optional) runs for each stored model; its first failure is returned.
Status train_and_report(Trainer& trainer, RecordWriter& out, const model::Store& store,
                        const Clock& clock, bool progress, Summary& summary,
                        const std::function<Status(const Outcome&)>& on_model = {});

// ep-train --list: one record per stored version. ep-train --show SERIES[@N]: the artefact.
Status list_models(const model::Store& store, RecordWriter& out);
Status show_model(const model::Store& store, std::string_view ref, RecordWriter& out);

}  // namespace ep::train
