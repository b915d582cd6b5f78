#pragma once
// ep-score core: window records in, score records out.
//
// A series with a model (its own, else its metric's group model "tenant/*/metric") is
// scored by the Isolation Forest on robustly scaled features; a series without one by
// a median/MAD fallback over its own recent windows ("model":"fallback",
// "status":"warming"). Every score carries a label and the features that drove it.
//
// Drift adaptation (per series, in memory for the run; see docs/ep-score.md):
//  * slow drift: after each normal window the baseline center of every feature moves
//    by alpha * (value - center), clipped to +-3 robust sigmas (EWMA refresh);
//  * level shift: after K consecutive anomalous windows the baseline is re-centred on
//    the median of those K windows, so a new normal stops alarming from window K+1.
//    Windows labelled missingness or stuck never count: a fault is not a new normal.
//  * return: an anomalous window of an adapted series that the trained model (without
//    the adaptation) finds normal ends the shift: the baseline goes back to the model.
//  * retraining on a schedule (ep-train from cron) folds the new normal into the model.
#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ep/model.h"
#include "ep/ndjson.h"
#include "ep/records.h"
#include "ep/status.h"

namespace ep::score {

struct Options {
  double threshold = 0.5;            // calibrated score at or above which a window is anomalous
  std::size_t fallback_history = 64; // windows per series the fallback keeps
  std::size_t fallback_min = 8;      // windows needed before the fallback scores
  double fallback_z = 5.0;           // robust |z| at which the fallback score is 0.5
  // Robust-z guard for model scores: score = max(forest, z^2/(z^2+guard^2)) over the
  // model features. A forest only splits inside the training range, so it ranks a value
  // far outside that range no higher than the range's edge; the guard catches those.
  // 0 = the forest alone.
  double z_guard = 6.0;
  std::size_t adapt_after = 12;      // K: anomalous windows in a row that become the new normal
  double adapt_alpha = 0.02;         // EWMA rate of the baseline on normal windows; 0 = off
  std::size_t explain = 3;           // features named in each explanation
  std::size_t event_gap = 3;         // normal windows that end an event (for "onset")
  // De-duplication: a window that repeats an ongoing event without exceeding its peak
  // score keeps "anomaly":true but reports a score just below the threshold and
  // "repeat":true, so score-threshold consumers (alert rules, NAB) see one detection
  // per event plus escalations.
  bool dedupe = false;
  std::size_t model_cache = 1024;    // models kept in memory (LRU)
  // Stream mode (surprise.h; all off by default). Per series, in memory for the run.
  std::size_t likelihood = 0;            // short window of the anomaly likelihood; 0 = off
  std::size_t likelihood_history = 8640; // windows of score history it compares against
  std::size_t likelihood_min = 100;      // windows before it scores (status "warming")
  double novelty = -1;                   // range novelty tolerance (fraction of range); < 0 off
  std::size_t novelty_after = 100;       // windows before range novelty applies
  std::size_t rest = 0;                  // windows after an onset whose detections repeat it
  // --state FILE: per-series state carried between runs ("" = in memory for the run).
  std::string state;
  // With --state: results kept per series so a window that comes again with the same
  // features gets the same score record as the first time (overlapping lookbacks).
  std::size_t state_windows = 16;
  // Reading records (stdin or files): stop after the current line once *stop is set
  // (SIGTERM; the state is saved and scores flushed as at EOF), and reload models when
  // reload() returns true (SIGHUP). Unset: never.
  const std::atomic<bool>* stop = nullptr;
  std::function<bool()> reload;
};

// Label from robust z-scores of named features (docs/architecture.md §3 labels). `baseline` holds the
// baseline value of each feature (used for the boolean "stuck").
std::string label_for(const std::vector<std::string>& names, const std::vector<double>& values,
                      const std::vector<double>& baseline, const std::vector<double>& z);

// Fallback score of a robust |z|: z^2 / (z^2 + z0^2), 0.5 at |z| = z0.
double fallback_score(double z, double z0);

// True for the features that measure spread (std, mad, range, diff_std, max_abs_diff):
// non-negative and right-skewed, so an ordinary window can sit many robust sigmas above
// the baseline.
bool is_spread_feature(std::string_view name);

// The z a single-feature score (guard, fallback) uses. For a spread feature above its
// baseline it is the z of the log ratio, ln(value / baseline) * baseline / scale: the
// same as the robust z for small moves, far less for an ordinary noisy window (twice the
// usual spread is ln 2 = 0.69 baselines of movement, not 1), and still large for a spike
// (a hundredfold spread). For missing_rate above its baseline it is the same measure on
// the share of points present, ln(usual share / share) * usual share / scale, with the
// share floored at kMinPresentShare: a window with no points at all, in a series that
// usually reports, is far past the guard. Below the baseline, and for every other
// feature, it is the robust z itself.
// For flat_surprise (decimal orders of magnitude by which the window's flat stretch is
// less likely than the series' usual flat steps allow) it is that surprise above its
// baseline itself, whatever the scale: the model's scale of a feature that is 0 in most
// windows says nothing about how rare a long run is. Never below 0: a window that is
// less flat than usual is not unusual.
inline constexpr double kMinPresentShare = 0.01;
// The flat_surprise (above its baseline) from which an anomalous window is "stuck".
inline constexpr double kStuckSurprise = 4.0;
double guard_z(std::string_view name, double value, double baseline, double z);

struct Scored {
  Score score;
  bool onset = false;   // first anomalous window of an event in this series
  bool repeat = false;  // --dedupe: an ongoing event's window, score capped
  int novel = 0;        // range novelty: +1 above, -1 below everything seen before
};

class Scorer {
 public:
  // store may be null: every series uses the fallback.
  Scorer(Options opt, const model::Source* store);
  ~Scorer();
  // Scores one window. Errors only for an unreadable model (the window is then scored
  // by the fallback and the error returned alongside in `model_error`).
  Scored score(const Window& w, Status& model_error);

  std::size_t series() const { return states_.size(); }

  // --state: what each series has learnt in this and earlier runs — baseline adaptation,
  // fallback history, event and rest state, likelihood and seen range. A missing file
  // is a fresh start; an unreadable one is moved aside to FILE.corrupt and reported
  // (kData), and scoring goes on from a fresh start. save_state() writes atomically.
  Status load_state(const std::string& path);
  Status save_state(const std::string& path) const;
  // True when --state held this series (Postgres mode then skips its history replay).
  bool has_state(const SeriesKey& k) const;
  std::int64_t model_loads() const { return loads_; }
  // Forgets every cached model and which one each series uses: the next window of a
  // series loads its latest model again (a new version restarts its adaptation).
  void reload_models();

 private:
  struct State;
  struct CachedModel {
    std::string key;
    std::shared_ptr<const model::Model> model;
  };
  std::shared_ptr<const model::Model> model_for(State& st, const Window& w, Status& err);
  std::shared_ptr<const model::Model> cache_get(const SeriesKey& k, Status& err, bool& found);
  // The window's score against the model re-centred by `offset` (v: the model features'
  // values, NaN when absent); x, base and z get the imputed values, baselines and z.
  double model_score(const model::Model& m, const std::vector<double>& offset,
                     const std::vector<double>& v, std::vector<double>& x,
                     std::vector<double>& base, std::vector<double>& z) const;
  void score_model(State& st, const model::Model& m, const Window& w, Score& out);
  void score_fallback(State& st, const Window& w, Score& out);
  // Stream mode: likelihood and range novelty on top of the model/fallback score.
  void post_process(State& st, const Window& w, Scored& s);
  bool stream_mode() const { return opt_.likelihood > 0 || opt_.novelty >= 0; }

  Options opt_;
  const model::Source* store_;
  std::unordered_map<SeriesKey, std::unique_ptr<State>, SeriesKeyHash> states_;
  std::list<CachedModel> lru_;
  std::unordered_map<std::string, std::list<CachedModel>::iterator> lru_index_;
  std::int64_t loads_ = 0;
};

struct Summary {
  std::int64_t lines = 0, windows = 0, rejected = 0, anomalies = 0, fallback = 0;
  std::int64_t model_errors = 0;
  std::int64_t reloads = 0;   // model reloads asked for (SIGHUP)
  bool interrupted = false;   // stopped by Options::stop
};

// Serialises a score record, with "onset" when set.
std::string to_record(const Scored& s);

// Receives every scored window after its record went to stdout (Postgres mode stores
// them in anomaly_scores). A non-ok status stops the run with that status.
class ScoreSink {
 public:
  virtual ~ScoreSink() = default;
  virtual Status on_score(const Scored& s) = 0;
};

// Scores one window: counts it in `summary`, reports an unreadable model, writes the
// record to `out` and hands it to `sink` (may be null). False when stdout is broken
// (stop quietly) or the sink failed (`sink_status` holds why).
bool score_window(Scorer& scorer, const Window& w, RecordWriter& out, ScoreSink* sink,
                  Summary& summary, Status& sink_status);

// The whole run: reads windows from `in`, writes score records to `out` (and to `sink`
// when given). Returns kData when some input was rejected or a model was unreadable.
Status run(const Options& opt, const model::Source* store, LineReader& in, RecordWriter& out,
           bool strict, bool progress, Summary& summary, ScoreSink* sink = nullptr);

}  // namespace ep::score
