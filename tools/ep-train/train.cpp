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

Result<model::Model> train_series(const SeriesKey& key, const std::vector<std::string>& names,
                                  const std::vector<std::vector<double>>& rows, TimeNs from,
                                  TimeNs to, std::int64_t series_count, const Options& opt,
                                  TimeNs now) {
  const std::size_t n = rows.size();
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
    for (const auto& r : rows)
      if (f < r.size() && std::isfinite(r[f])) ++present;
    if (present > 0 && static_cast<double>(present) >= opt.min_presence * static_cast<double>(n))
      cols.push_back(f);
  }
  if (cols.empty()) return Status::data("no feature present in enough windows");

  arma::mat X(cols.size(), n);
  std::vector<double> values(n);
  for (std::size_t k = 0; k < cols.size(); ++k) {
    const std::size_t f = cols[k];
    for (std::size_t j = 0; j < n; ++j) values[j] = f < rows[j].size() ? rows[j][f] : std::nan("");
    model::Robust rs = model::robust_stats(values);
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
    arma::vec s = m.forest.score(X);
    std::vector<double> sv(s.begin(), s.end());
    m.contamination = opt.contamination;
    m.threshold = model::quantile_in_place(sv, 1.0 - opt.contamination);
  }
  m.threshold = std::clamp(m.threshold, 0.01, 0.99);
  return m;
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

  std::vector<std::vector<double>> rows() const {
    std::vector<std::vector<double>> out(count);
    for (std::size_t r = 0; r < count; ++r)
      out[r].assign(data.begin() + static_cast<std::ptrdiff_t>(r * width),
                    data.begin() + static_cast<std::ptrdiff_t>((r + 1) * width));
    return out;
  }
};

Trainer::Trainer(Options opt) : opt_(std::move(opt)) {
  for (const auto& f : opt_.features) {
    if (name_index_.emplace(f, names_.size()).second) names_.push_back(f);
  }
}

Trainer::~Trainer() = default;

std::size_t Trainer::series() const { return buffers_.size(); }

void Trainer::add(const Window& w) {
  if ((opt_.from && w.start < *opt_.from) || (opt_.to && w.end > *opt_.to)) {
    ++summary_.out_of_range;
    return;
  }
  std::vector<double> row(names_.size(), std::nan(""));
  auto put = [&](const std::string& name, double v) {
    auto it = name_index_.find(name);
    std::size_t idx;
    if (it != name_index_.end()) {
      idx = it->second;
    } else {
      if (!opt_.features.empty() || names_.size() >= kMaxFeatureNames) return;
      idx = names_.size();
      name_index_.emplace(name, idx);
      names_.push_back(name);
    }
    if (idx >= row.size()) row.resize(idx + 1, std::nan(""));
    row[idx] = v;
  };
  for (const auto& f : w.features) put(f.name, f.value);
  if (name_index_.count("n")) put("n", static_cast<double>(w.n));
  if (name_index_.count("expected") && w.expected > 0)
    put("expected", static_cast<double>(w.expected));
  SeriesKey key{w.tenant, opt_.group_by == GroupBy::kMetric ? model::kGroupDevice : w.device,
                w.metric};
  auto& buf = buffers_[key];
  if (!buf) buf = std::make_unique<Buffer>();
  buf->push(row, w.start, w.end, std::max<std::size_t>(opt_.max_windows, 1));
  if (opt_.group_by == GroupBy::kMetric && buf->devices.size() < 1000000)
    buf->devices.insert(w.device);
  ++summary_.windows;
}

Status Trainer::finish(const model::Store& store, const Clock& clock,
                       const std::function<void(const Outcome&)>& on_outcome) {
  std::vector<std::pair<SeriesKey, Buffer*>> jobs;
  jobs.reserve(buffers_.size());
  for (auto& [k, b] : buffers_) jobs.emplace_back(k, b.get());
  std::sort(jobs.begin(), jobs.end(), [](const auto& a, const auto& b) {
    return a.first.to_string() < b.first.to_string();
  });
  const TimeNs now = clock.now();
  struct Done {
    Status status;
    std::string record, path;
    int version = 0;
  };
  std::vector<Done> done(jobs.size());
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < jobs.size();) {
      auto& [key, buf] = jobs[i];
      TimeNs from = buf->count ? *std::min_element(buf->start.begin(), buf->start.end()) : 0;
      TimeNs to = buf->count ? *std::max_element(buf->end.begin(), buf->end.end()) : 0;
      std::int64_t nseries =
          opt_.group_by == GroupBy::kMetric ? static_cast<std::int64_t>(buf->devices.size()) : 1;
      auto m = train_series(key, names_, buf->rows(), from, to, nseries, opt_, now);
      // Free the buffer as soon as the series is done: memory falls as training proceeds.
      *buf = Buffer{};
      if (!m) {
        done[i].status = m.status();
        continue;
      }
      Status s = store.save(*m);
      if (!s) {
        done[i].status = s;
        continue;
      }
      done[i].version = m->version;
      done[i].path = store.series_dir(key) + "/" + std::to_string(m->version) + ".json";
      done[i].record = model_record(*m, done[i].path);
    }
  };
  int threads = std::clamp(opt_.threads, 1, 64);
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();

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
  Progress prog(progress, "windows");
  Line line;
  rapidjson::Document doc;
  Window w;
  std::int64_t rejected = 0, lines = 0;
  auto reject = [&](const Line& l, std::string_view reason) {
    ++rejected;
    log::reject(l.stream, l.number, reason);
  };
  while (in.next(line)) {
    ++lines;
    if (line.too_long) {
      reject(line, "line longer than the maximum line length");
    } else if (line.text.empty()) {
      continue;
    } else if (Status s = parse_json(line.text, doc); !s) {
      reject(line, s.message());
    } else if (kind_of(doc) != Kind::kWindow) {
      reject(line, "kind: expected \"window\"");
    } else if (Status p = parse_record(doc, w); !p) {
      reject(line, p.message());
    } else {
      trainer.add(w);
    }
    if (rejected > 0 && opt.strict) break;
    if ((lines & 1023) == 0) prog.update(static_cast<std::uint64_t>(lines), 0);
  }
  prog.finish();
  if (!in.status().is_ok()) return in.status();
  summary = trainer.summary();
  summary.lines = lines;
  summary.rejected = rejected;
  if (rejected > 0 && opt.strict)
    return Status::data("stopped at the first rejected record (--strict)");
  EP_RETURN_IF_ERROR(train_and_report(trainer, out, store, clock, progress, summary));
  if (rejected > 0) return Status::data(std::to_string(rejected) + " input records rejected");
  return Status::ok();
}

Status train_and_report(Trainer& trainer, RecordWriter& out, const model::Store& store,
                        const Clock& clock, bool progress, Summary& summary,
                        const std::function<Status(const Outcome&)>& on_model) {
  Progress tprog(progress, "series trained");
  std::uint64_t reported = 0;
  Status hook;
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
    tprog.update(++reported, 0);
  });
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
