#include "train.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "ep/json.h"
#include "ep/log.h"
#include "ep/progress.h"
#include "window_reader.h"

namespace ep::train {

namespace {

constexpr std::size_t kMaxFeatureNames = 256;

// A model's summary line on stdout ("kind":"model").
std::string model_record(const model::Model& m, std::string_view path) {
  JsonWriter w;
  w.start_object();
  w.kv("kind", "model");
  w.kv("id", m.id());
  w.kv("tenant", m.tenant);
  w.kv("device", m.device);
  w.kv("metric", m.metric);
  w.kv("version", m.version);
  w.kv_time("created_at", m.created_at);
  w.kv_time("from", m.trained_from);
  w.kv_time("to", m.trained_to);
  w.kv("windows", m.windows);
  w.kv("series", m.series);
  w.kv("features", static_cast<std::int64_t>(m.features.size()));
  w.kv("threshold", m.threshold);
  if (!path.empty()) w.kv("path", path);
  w.end_object();
  return w.take();
}

}  // namespace

std::uint64_t series_seed(std::uint64_t base, const SeriesKey& key) {
  return iforest::mix64(base ^ iforest::fnv1a64(key.to_string()));
}

namespace {

// One series' training rows, row-major: row j at data + j * width; a feature at or
// beyond width, or NaN, is absent from that row.
struct RowView {
  const double* data = nullptr;
  std::size_t width = 0, count = 0;
  double at(std::size_t j, std::size_t f) const {
    return f < width ? data[j * width + f] : std::nan("");
  }
};

Result<model::Model> train_rows(const SeriesKey& key, const std::vector<std::string>& names,
                                const RowView& rows, TimeNs from, TimeNs to,
                                std::int64_t series_count, const Options& opt, TimeNs now) {
  const std::size_t n = rows.count;
  if (n < std::max<std::size_t>(opt.min_windows, 2))
    return Status::data("only " + std::to_string(n) + " windows (need " +
                        std::to_string(std::max<std::size_t>(opt.min_windows, 2)) + ")");
  model::Model m;
  m.tenant = key.tenant;
  m.device = key.device;
  m.metric = key.metric;
  m.created_at = now;
  m.trained_from = from;
  m.trained_to = to;
  m.windows = static_cast<std::int64_t>(n);
  m.series = series_count;

  // Features present in enough windows, in the global (first seen) order.
  std::vector<std::size_t> cols;
  for (std::size_t f = 0; f < names.size(); ++f) {
    std::size_t present = 0;
    for (std::size_t j = 0; j < n; ++j)
      if (std::isfinite(rows.at(j, f))) ++present;
    if (present > 0 && static_cast<double>(present) >= opt.min_presence * static_cast<double>(n))
      cols.push_back(f);
  }
  if (cols.empty()) return Status::data("no feature present in enough windows");

  arma::mat X(cols.size(), n);
  std::vector<double> values(n);
  for (std::size_t k = 0; k < cols.size(); ++k) {
    const std::size_t f = cols[k];
    for (std::size_t j = 0; j < n; ++j) values[j] = rows.at(j, f);
    model::Robust rs = model::robust_stats(values);
    rs.scale = std::max(rs.scale, model::min_feature_scale(names[f]));
    m.features.push_back(names[f]);
    m.center.push_back(rs.center);
    m.scale.push_back(rs.scale);
    for (std::size_t j = 0; j < n; ++j) {
      double x = std::isfinite(values[j]) ? values[j] : rs.center;  // impute the center
      X(k, j) = (x - rs.center) / rs.scale;
    }
  }
  m.params = opt.forest;
  m.params.seed = series_seed(opt.forest.seed, key);
  auto forest = iforest::Forest::fit(X, m.params);
  if (!forest) return forest.status();
  m.forest = std::move(forest).value();

  if (opt.threshold) {
    m.threshold = *opt.threshold;
    m.contamination = 0;
  } else {
    std::vector<double> sv(n);
    m.forest.score(X.memptr(), n, sv.data());
    m.contamination = opt.contamination;
    m.threshold = model::quantile_in_place(sv, 1.0 - opt.contamination);
  }
  m.threshold = std::clamp(m.threshold, 0.01, 0.99);
  return m;
}

}  // namespace

Result<model::Model> train_series(const SeriesKey& key, const std::vector<std::string>& names,
                                  const std::vector<std::vector<double>>& rows, TimeNs from,
                                  TimeNs to, std::int64_t series_count, const Options& opt,
                                  TimeNs now) {
  std::size_t width = 0;
  for (const auto& r : rows) width = std::max(width, r.size());
  std::vector<double> flat(rows.size() * width, std::nan(""));
  for (std::size_t j = 0; j < rows.size(); ++j)
    std::copy(rows[j].begin(), rows[j].end(), flat.begin() + static_cast<std::ptrdiff_t>(j * width));
  return train_rows(key, names, RowView{flat.data(), width, rows.size()}, from, to, series_count,
                    opt, now);
}

// ---- Trainer

struct Trainer::Buffer {
  std::size_t width = 0;       // feature columns per row
  std::vector<double> data;    // ring of rows, row-major
  std::vector<TimeNs> start, end;
  std::size_t head = 0, count = 0;
  std::unordered_set<std::string> devices;  // group models only

  void widen(std::size_t w) {
    std::vector<double> d(count * w, std::nan(""));
    for (std::size_t r = 0; r < count; ++r)
      std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(r * width), width,
                  d.begin() + static_cast<std::ptrdiff_t>(r * w));
    data.swap(d);
    width = w;
  }

  void push(const std::vector<double>& row, TimeNs s, TimeNs e, std::size_t cap) {
    if (row.size() > width) widen(row.size());
    std::size_t slot;
    if (count < cap) {
      slot = count++;
      data.resize(count * width, std::nan(""));
      start.push_back(s);
      end.push_back(e);
    } else {
      slot = head;
      head = (head + 1) % cap;
      start[slot] = s;
      end[slot] = e;
    }
    std::fill_n(data.begin() + static_cast<std::ptrdiff_t>(slot * width), width, std::nan(""));
    std::copy(row.begin(), row.end(), data.begin() + static_cast<std::ptrdiff_t>(slot * width));
  }

  // The rows in storage order (the order training has always used).
  RowView view() const { return RowView{data.data(), width, count}; }
};

Trainer::Trainer(Options opt) : opt_(std::move(opt)) {
  for (const auto& f : opt_.features)
    if (!name_index_.count(f)) add_name(f);
}

Trainer::~Trainer() = default;

std::size_t Trainer::series() const { return buffers_.size(); }

std::size_t Trainer::feature_index(const std::string& name) {
  auto it = name_index_.find(name);
  if (it != name_index_.end()) return it->second;
  // With --features only the named ones are kept; otherwise the first kMaxFeatureNames.
  if (!opt_.features.empty() || names_.size() >= kMaxFeatureNames) return kNoFeature;
  return add_name(name);
}

std::size_t Trainer::add_name(const std::string& name) {
  const std::size_t idx = names_.size();
  name_index_.emplace(name, idx);
  names_.push_back(name);
  if (name == "n") n_index_ = idx;
  if (name == "expected") expected_index_ = idx;
  return idx;
}

void Trainer::add(const Window& w) {
  if ((opt_.from && w.start < *opt_.from) || (opt_.to && w.end > *opt_.to)) {
    ++summary_.out_of_range;
    return;
  }
  row_.assign(names_.size(), std::nan(""));
  auto put = [&](std::size_t idx, double v) {
    if (idx >= row_.size()) row_.resize(idx + 1, std::nan(""));
    row_[idx] = v;
  };
  // Windows of one input mostly carry the same features in the same order: the name at
  // each position is compared with the previous window's before any hash lookup.
  for (std::size_t i = 0; i < w.features.size(); ++i) {
    const Feature& f = w.features[i];
    if (i >= recent_names_.size()) {
      recent_names_.resize(i + 1);
      recent_index_.resize(i + 1, kNoFeature);
      recent_names_[i] = f.name;
      recent_index_[i] = feature_index(f.name);
    } else if (recent_names_[i] != f.name) {
      recent_names_[i] = f.name;
      recent_index_[i] = feature_index(f.name);
    }
    if (recent_index_[i] != kNoFeature) put(recent_index_[i], f.value);
  }
  if (n_index_ != kNoFeature) put(n_index_, static_cast<double>(w.n));
  if (expected_index_ != kNoFeature && w.expected > 0)
    put(expected_index_, static_cast<double>(w.expected));
  // Consecutive windows are often of one series: reuse its buffer without hashing.
  const std::string_view device = opt_.group_by == GroupBy::kMetric
                                      ? std::string_view(model::kGroupDevice)
                                      : std::string_view(w.device);
  if (!recent_buffer_ || recent_key_.metric != w.metric || recent_key_.device != device ||
      recent_key_.tenant != w.tenant) {
    recent_key_ = SeriesKey{w.tenant, std::string(device), w.metric};
    auto& buf = buffers_[recent_key_];
    if (!buf) buf = std::make_unique<Buffer>();
    recent_buffer_ = buf.get();
  }
  Buffer& buf = *recent_buffer_;
  buf.push(row_, w.start, w.end, std::max<std::size_t>(opt_.max_windows, 1));
  if (opt_.group_by == GroupBy::kMetric && buf.devices.size() < 1000000)
    buf.devices.insert(w.device);
  ++summary_.windows;
}

Status Trainer::finish(const model::Store& store, const Clock& clock,
                       const std::function<void(const Outcome&)>& on_outcome,
                       const std::function<void(std::size_t, std::size_t)>& on_progress) {
  recent_buffer_ = nullptr;
  std::vector<std::pair<SeriesKey, Buffer*>> jobs;
  jobs.reserve(buffers_.size());
  for (auto& [k, b] : buffers_) jobs.emplace_back(k, b.get());
  std::sort(jobs.begin(), jobs.end(), [](const auto& a, const auto& b) {
    return a.first.to_string() < b.first.to_string();
  });
  const TimeNs now = clock.now();
  struct Done {
    Status status;
    std::string record;  // built with the staged version; rebuilt if commit changes it
    int version = 0;
    std::string path;
  };
  std::vector<Done> done(jobs.size());
  std::vector<std::size_t> committed_ids;

  // Artefacts are staged (written, not yet synced) by the workers and committed in
  // batches: two file system syncs per batch instead of two fsyncs per artefact.
  std::mutex batch_mu;
  std::vector<model::Store::Staged> batch;
  std::vector<std::size_t> batch_ids;
  auto commit = [&](std::vector<model::Store::Staged> staged, std::vector<std::size_t> ids) {
    (void)store.commit(staged);  // sets every entry's status, read below
    for (std::size_t k = 0; k < staged.size(); ++k) {
      Done& d = done[ids[k]];
      d.status = staged[k].status;
      if (!d.status.is_ok()) continue;
      if (staged[k].version != d.version) {
        // Saved under a later version than staged (a concurrent writer): describe that one.
        auto m = store.load(staged[k].key, staged[k].version);
        if (!m) {
          d.status = m.status();
          continue;
        }
        d.version = staged[k].version;
        d.path = staged[k].path;
        d.record = model_record(*m, d.path);
      }
    }
  };

  std::atomic<std::size_t> next{0}, finished{0};
  auto worker = [&](bool reports) {
    for (std::size_t i; (i = next.fetch_add(1)) < jobs.size();) {
      auto& [key, buf] = jobs[i];
      TimeNs from = buf->count ? *std::min_element(buf->start.begin(), buf->start.end()) : 0;
      TimeNs to = buf->count ? *std::max_element(buf->end.begin(), buf->end.end()) : 0;
      std::int64_t nseries =
          opt_.group_by == GroupBy::kMetric ? static_cast<std::int64_t>(buf->devices.size()) : 1;
      auto m = train_rows(key, names_, buf->view(), from, to, nseries, opt_, now);
      // Free the buffer as soon as the series is done: memory falls as training proceeds.
      *buf = Buffer{};
      if (!m) {
        done[i].status = m.status();
      } else if (auto st = store.stage(*m, floor_ ? floor_(key) : 1); !st) {
        done[i].status = st.status();
      } else {
        done[i].version = m->version;
        done[i].path = st->path;
        done[i].record = model_record(*m, st->path);
        std::vector<model::Store::Staged> full;
        std::vector<std::size_t> full_ids;
        {
          std::lock_guard lock(batch_mu);
          batch.push_back(std::move(st).value());
          batch_ids.push_back(i);
          if (batch.size() >= kCommitBatch) {
            full.swap(batch);
            full_ids.swap(batch_ids);
          }
        }
        if (!full.empty()) commit(std::move(full), std::move(full_ids));
      }
      finished.fetch_add(1);
      if (reports && on_progress) on_progress(finished.load(), jobs.size());
    }
  };
  int threads = std::clamp(opt_.threads, 1, 64);
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker, false);
  worker(true);
  for (auto& t : pool) t.join();
  commit(std::move(batch), std::move(batch_ids));

  Status first_io;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    Outcome o;
    o.key = jobs[i].first;
    o.status = done[i].status;
    if (o.status.is_ok()) {
      ++summary_.trained;
      o.record = std::move(done[i].record);
      o.version = done[i].version;
      o.path = std::move(done[i].path);
    } else if (o.status.code() == Code::kData) {
      ++summary_.too_few;
    } else {
      ++summary_.failed;
      if (first_io.is_ok()) first_io = o.status.with_context(o.key.to_string());
    }
    on_outcome(o);
  }
  buffers_.clear();
  return first_io;
}

Status run(const Options& opt, LineReader& in, RecordWriter& out, const model::Store& store,
           const Clock& clock, bool progress, Summary& summary) {
  Trainer trainer(opt);
  ReadStats read;
  {
    Progress prog(progress, "windows");
    EP_RETURN_IF_ERROR(read_windows(
        in, ReadOptions{.threads = opt.threads, .strict = opt.strict},
        [&trainer](const Window& w) { trainer.add(w); },
        [&prog](std::int64_t lines) { prog.update(static_cast<std::uint64_t>(lines), 0); }, read));
  }
  summary = trainer.summary();
  summary.lines = read.lines;
  summary.rejected = read.rejected;
  if (read.rejected > 0 && opt.strict)
    return Status::data("stopped at the first rejected record (--strict)");
  EP_RETURN_IF_ERROR(train_and_report(trainer, out, store, clock, progress, summary));
  if (read.rejected > 0)
    return Status::data(std::to_string(read.rejected) + " input records rejected");
  return Status::ok();
}

Status train_and_report(Trainer& trainer, RecordWriter& out, const model::Store& store,
                        const Clock& clock, bool progress, Summary& summary,
                        const std::function<Status(const Outcome&)>& on_model) {
  Progress tprog(progress, "series trained");
  Status hook;
  auto on_progress = [&](std::size_t done, std::size_t total) { tprog.update(done, total); };
  Status io = trainer.finish(store, clock, [&](const Outcome& o) {
    if (o.status.is_ok()) {
      if (on_model && hook.is_ok()) hook = on_model(o);
      out.write(o.record);
    } else if (o.status.code() == Code::kData) {
      log::emit(log::Level::kInfo, o.key.to_string(),
                "no model: " + o.status.message() + "; ep-score keeps using its fallback");
    } else {
      log::emit(log::Level::kError, o.key.to_string(), o.status.message(), -1, o.status.code());
    }
  }, on_progress);
  tprog.finish();
  const Summary& t = trainer.summary();
  summary.trained = t.trained;
  summary.too_few = t.too_few;
  summary.failed = t.failed;
  summary.windows = t.windows;
  summary.out_of_range = t.out_of_range;
  if (!io) return io;
  return hook;
}

Status list_models(const model::Store& store, RecordWriter& out) {
  auto entries = store.list();
  if (!entries) return entries.status();
  Status first;
  for (const auto& e : *entries) {
    auto m = store.load(e.key, e.version);
    if (!m) {
      log::error(m.status());
      if (first.is_ok()) first = m.status();
      continue;
    }
    out.write(model_record(*m, e.path));
  }
  return first;
}

Status show_model(const model::Store& store, std::string_view ref_text, RecordWriter& out) {
  auto ref = model::parse_series_ref(ref_text);
  if (!ref) return ref.status();
  auto m = store.load(ref->key, ref->version);
  if (!m) return m.status();
  std::string text = model::serialize(*m);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  out.write(text);
  return Status::ok();
}

}  // namespace ep::train
