#include "pg_io.h"

#include <charconv>
#include <cstdlib>

#include "ep/log.h"
#include "ep/progress.h"
#include "output.h"

namespace ep::features {
namespace {

constexpr int kPageRows = 50000;          // datapoints fetched per query (keyset pages)
constexpr size_t kFlushWindows = 10000;   // windows per COPY when writing to the DB

struct MetricRow {
  std::string metric_id, device, metric;
  TimeNs interval = 0;  // metrics.expected_interval, 0 = infer
};

Result<std::int64_t> parse_i64(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size())
    return Status::software("unexpected integer from Postgres: " + std::string(s));
  return v;
}

// Collects window rows and upserts them with COPY into a temporary table followed by
// INSERT … ON CONFLICT, one transaction per flush (a rerun over the same range
// replaces the rows it wrote before: idempotent).
class DbWindowSink final : public WindowSink {
 public:
  DbWindowSink(pg::Conn& c, std::string tenant_id) : c_(c), tenant_id_(std::move(tenant_id)) {}
  void set_metric(const std::string& id) { metric_id_ = id; }
  void on_window(const WindowOut& w) override {
    if (!status_.is_ok()) return;
    buf_ += tenant_id_;
    buf_ += '\t';
    buf_ += metric_id_;
    buf_ += '\t';
    buf_ += pg::format_ts_us(w.start);
    buf_ += '\t';
    buf_ += pg::format_ts_us(w.end);
    buf_ += '\t';
    buf_ += std::to_string(w.n);
    buf_ += '\t';
    buf_ += std::to_string(w.expected < 0 ? 0 : w.expected);
    buf_ += '\t';
    json_.clear();
    append_features_json(json_, w.features);
    pg::append_copy_text(buf_, json_);
    buf_ += '\n';
    if (++rows_ >= kFlushWindows) status_ = flush();
  }
  Status flush() {
    if (rows_ == 0 || !status_.is_ok()) return status_;
    pg::Transaction tx(c_);
    EP_RETURN_IF_ERROR(tx.begin());
    EP_RETURN_IF_ERROR(c_.run(
        "CREATE TEMP TABLE IF NOT EXISTS ep_features_in (LIKE features INCLUDING DEFAULTS) "
        "ON COMMIT DELETE ROWS"));
    EP_RETURN_IF_ERROR(c_.copy_start(
        "COPY ep_features_in (tenant_id, metric_id, window_start, window_end, n, expected, "
        "features) FROM STDIN"));
    EP_RETURN_IF_ERROR(c_.copy_put(buf_));
    auto copied = c_.copy_finish();
    if (!copied) return copied.status();
    EP_RETURN_IF_ERROR(c_.run(
        "INSERT INTO features (tenant_id, metric_id, window_start, window_end, n, expected, "
        "features) SELECT tenant_id, metric_id, window_start, window_end, n, expected, features "
        "FROM ep_features_in ON CONFLICT (tenant_id, metric_id, window_end, window_start) DO "
        "UPDATE SET n = excluded.n, expected = excluded.expected, features = excluded.features, "
        "created_at = now()"));
    EP_RETURN_IF_ERROR(tx.commit());
    written_ += rows_;
    rows_ = 0;
    buf_.clear();
    return Status::ok();
  }
  const Status& status() const { return status_; }
  std::uint64_t written() const { return written_; }

 private:
  pg::Conn& c_;
  std::string tenant_id_, metric_id_;
  std::string buf_, json_;
  size_t rows_ = 0;
  std::uint64_t written_ = 0;
  Status status_;
};

class NdjsonForward final : public WindowSink {
 public:
  explicit NdjsonForward(RecordWriter& out) : sink_(out) {}
  void on_window(const WindowOut& w) override { sink_.on_window(w); }
  bool broken() const { return sink_.broken(); }

 private:
  NdjsonWindowSink sink_;
};

Result<std::string> tenant_id_of(pg::Conn& c, const std::string& slug) {
  auto rows = c.exec("SELECT tenant_id FROM tenants WHERE slug = $1", {slug});
  if (!rows) return rows.status().with_context("tenants");
  if (rows->empty()) return Status::not_found("--tenant: no tenant '" + slug + "'");
  return rows->str(0, 0);
}

Result<std::vector<MetricRow>> metrics_of(pg::Conn& c, const std::string& tenant_id,
                                          const DbOptions& db) {
  auto rows = c.exec(
      "SELECT m.metric_id, d.external_id, m.name, "
      "       COALESCE((extract(epoch FROM m.expected_interval) * 1000000)::int8, 0) "
      "FROM metrics m JOIN devices d ON d.tenant_id = m.tenant_id AND d.device_id = m.device_id "
      "WHERE m.tenant_id = $1 AND ($2::text IS NULL OR d.external_id = $2) "
      "  AND ($3::text IS NULL OR m.name = $3) "
      "ORDER BY d.external_id, m.name",
      {tenant_id, db.device.empty() ? pg::Param(nullptr) : pg::Param(db.device),
       db.metric.empty() ? pg::Param(nullptr) : pg::Param(db.metric)});
  if (!rows) return rows.status().with_context("metrics");
  std::vector<MetricRow> out;
  out.reserve(static_cast<size_t>(rows->size()));
  for (int i = 0; i < rows->size(); ++i)
    out.push_back({rows->str(i, 0), rows->str(i, 1), rows->str(i, 2), rows->get_int(i, 3) * 1000});
  return out;
}

// Season history before `from`: per-bucket sums computed by Postgres, so only
// period/bucket rows per series cross the wire.
Status prime_season(pg::Conn& c, const Options& opts, const std::string& tenant_id,
                    const MetricRow& m, TimeNs from, Extractor& x, Extractor::SeriesHandle h) {
  if (opts.season == Season::kOff) return Status::ok();
  const TimeNs period = (opts.season == Season::kWeek ? 7 : 1) * 86400 * kNsPerSec;
  const TimeNs span = opts.count_mode() ? 0 : opts.window.duration;
  const std::int64_t bucket_us = opts.season_bucket / 1000;
  auto rows = c.exec(
      "SELECT (floor(extract(epoch FROM ts) * 1000000 / $4) * $4)::int8, sum(value), count(*) "
      "FROM datapoints WHERE tenant_id = $1 AND metric_id = $2 AND ts >= $3 AND ts < $5 "
      "GROUP BY 1 ORDER BY 1",
      {tenant_id, m.metric_id, pg::ts_param(from - period - span), bucket_us, pg::ts_param(from)});
  if (!rows) return rows.status().with_context("datapoints (season history)");
  for (int i = 0; i < rows->size(); ++i)
    x.prime_season(h, rows->get_int(i, 0) * 1000, rows->get_double(i, 1),
                   static_cast<std::uint32_t>(rows->get_int(i, 2)));
  return Status::ok();
}

// Streams one series' points in [from, to) through the extractor, a page at a time.
Status feed_series(pg::Conn& c, const std::string& tenant_id, const MetricRow& m, TimeNs from,
                   TimeNs to, Extractor& x, Extractor::SeriesHandle h, RunSummary& summary) {
  TimeNs after = from - 1;  // keyset: ts > after (µs resolution in Postgres)
  for (;;) {
    auto rows = c.exec(
        "SELECT (extract(epoch FROM ts) * 1000000)::int8, value FROM datapoints "
        "WHERE tenant_id = $1 AND metric_id = $2 AND ts > $3 AND ts < $4 ORDER BY ts LIMIT $5",
        {tenant_id, m.metric_id, pg::ts_param(after), pg::ts_param(to), kPageRows});
    if (!rows) return rows.status().with_context("datapoints");
    const int n = rows->size();
    for (int i = 0; i < n; ++i) {
      auto us = parse_i64(rows->get(i, 0));
      if (!us) return us.status();
      TimeNs ts = *us * 1000;
      x.add(h, ts, rows->get_double(i, 1));
      after = ts;
    }
    summary.lines += static_cast<std::uint64_t>(n);
    if (n < kPageRows) return Status::ok();
  }
}

}  // namespace

Status run_db(const Options& opts, const DbOptions& db, RecordWriter& out, RunSummary& summary) {
  summary.from_db = true;
  auto conn = pg::Conn::connect(db.url, "ep-features");
  if (!conn) return conn.status();
  pg::Conn& c = *conn;
  auto tenant_id = tenant_id_of(c, db.tenant);
  if (!tenant_id) return tenant_id.status();
  EP_RETURN_IF_ERROR(c.set_tenant(*tenant_id));
  auto metrics = metrics_of(c, *tenant_id, db);
  if (!metrics) return metrics.status();

  NdjsonForward stdout_sink(out);
  DbWindowSink db_sink(c, *tenant_id);
  WindowSink& sink = db.write_db ? static_cast<WindowSink&>(db_sink) : stdout_sink;
  Extractor x(opts, sink);
  Progress progress(db.progress, "series");
  Status result;
  std::uint64_t done = 0;
  for (const MetricRow& m : *metrics) {
    progress.update(done++, metrics->size());
    auto h = x.series(db.tenant, m.device, m.metric);
    if (m.interval > 0) x.set_interval(h, m.interval);
    db_sink.set_metric(m.metric_id);
    result = prime_season(c, opts, *tenant_id, m, db.from, x, h);
    if (result.is_ok()) result = feed_series(c, *tenant_id, m, db.from, db.to, x, h, summary);
    if (result.is_ok()) x.finish_series(h);
    if (result.is_ok()) result = db_sink.status();
    if (!result.is_ok() || stdout_sink.broken()) break;
  }
  progress.finish();
  if (result.is_ok() && db.write_db) result = db_sink.flush();
  summary.stats = x.stats();
  summary.broken_pipe = stdout_sink.broken();
  if (result.is_ok() && db.write_db)
    log::info("wrote " + std::to_string(db_sink.written()) + " windows to the features table");
  return result;
}

}  // namespace ep::features
