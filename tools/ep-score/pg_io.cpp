#include "pg_io.h"

#include <poll.h>

#include <algorithm>
#include <memory>
#include <unordered_set>
#include <vector>

#include "ep/crypto.h"
#include "ep/json.h"
#include "ep/log.h"
#include "ep/progress.h"
#include "ep/records.h"

namespace ep::score {
namespace {

constexpr const char* kCursorName = "ep-score";
constexpr int kPageRows = 5000;  // features rows per page (one transaction each)

std::string series_key(std::string_view tenant, std::string_view device, std::string_view metric) {
  std::string k;
  k.reserve(tenant.size() + device.size() + metric.size() + 2);
  k.append(tenant).push_back('\x1f');
  k.append(device).push_back('\x1f');
  k.append(metric);
  return k;
}

void append_explanation_json(std::string& out, const std::vector<Explanation>& ex) {
  JsonWriter w;
  write_explanation(w, ex);
  out.append(w.view());
}

}  // namespace

bool stdin_idle() {
  pollfd p{0, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

Result<pg::Conn> connect(const DbOptions& db) { return pg::Conn::connect(db.url, "ep-score"); }

void DbScoreSink::remember(const Window& w, const std::string& tenant_id,
                           const std::string& metric_id) {
  ids_[series_key(w.tenant, w.device, w.metric)] = Ids{true, tenant_id, metric_id};
}

Result<const DbScoreSink::Ids*> DbScoreSink::ids_for(const Score& s) {
  std::string k = series_key(s.tenant, s.device, s.metric);
  if (auto it = ids_.find(k); it != ids_.end()) return &it->second;
  auto rows = c_.exec(
      "SELECT t.tenant_id, m.metric_id FROM tenants t "
      "JOIN devices d ON d.tenant_id = t.tenant_id AND d.external_id = $2 "
      "JOIN metrics m ON m.tenant_id = t.tenant_id AND m.device_id = d.device_id AND m.name = $3 "
      "WHERE t.slug = $1",
      {s.tenant, s.device, s.metric});
  if (!rows) return rows.status().with_context("resolving series ids");
  Ids ids;
  if (!rows->empty()) ids = Ids{true, rows->str(0, 0), rows->str(0, 1)};
  if (!ids.found)
    log::emit(log::Level::kWarn, SeriesKey{s.tenant, s.device, s.metric}.to_string(),
              "unknown tenant, device or metric in Postgres: its scores are not stored");
  return &(ids_[k] = std::move(ids));
}

Status DbScoreSink::on_score(const Scored& sc) {
  if (!deferred_.is_ok()) return deferred_;
  const Score& s = sc.score;
  auto ids = ids_for(s);
  if (!ids) return ids.status();
  if (!(*ids)->found) {
    ++unknown_;
    return Status::ok();
  }
  buf_ += std::to_string(++seq_);
  buf_ += '\t';
  buf_ += (*ids)->tenant_id;
  buf_ += '\t';
  buf_ += (*ids)->metric_id;
  buf_ += '\t';
  buf_ += pg::format_ts_us(s.start);
  buf_ += '\t';
  buf_ += pg::format_ts_us(s.end);
  buf_ += '\t';
  buf_ += pg::Param(std::clamp(s.score, 0.0, 1.0)).value().value_or("0");
  buf_ += s.anomaly ? "\tt\t" : "\tf\t";
  pg::append_copy_text(buf_, s.label);
  buf_ += '\t';
  pg::append_copy_text(buf_, s.model);
  buf_ += '\t';
  pg::append_copy_text(buf_, s.status);
  buf_ += '\t';
  json_.clear();
  append_explanation_json(json_, s.explanation);
  pg::append_copy_text(buf_, json_);
  buf_ += '\n';
  if (++rows_ >= batch_rows_) return flush();
  return Status::ok();
}

void DbScoreSink::flush_idle() {
  if (deferred_.is_ok() && rows_ > 0) deferred_ = flush();
}

Status DbScoreSink::flush(const std::function<Status()>& in_tx) {
  if (!deferred_.is_ok()) return deferred_;
  if (rows_ == 0 && !in_tx) return Status::ok();
  pg::Transaction tx(c_);
  EP_RETURN_IF_ERROR(tx.begin());
  if (rows_ > 0) {
    EP_RETURN_IF_ERROR(c_.run(
        "CREATE TEMP TABLE IF NOT EXISTS ep_scores_in (seq int8, tenant_id uuid, metric_id uuid, "
        "window_start timestamptz, window_end timestamptz, score float8, anomaly bool, label text, "
        "model text, status text, explanation jsonb) ON COMMIT DELETE ROWS"));
    EP_RETURN_IF_ERROR(c_.copy_start(
        "COPY ep_scores_in (seq, tenant_id, metric_id, window_start, window_end, score, anomaly, "
        "label, model, status, explanation) FROM STDIN"));
    EP_RETURN_IF_ERROR(c_.copy_put(buf_));
    auto copied = c_.copy_finish();
    if (!copied) return copied.status().with_context("anomaly_scores");
    // The same window twice in one batch: the last score wins (ON CONFLICT cannot
    // touch a row twice in one statement). New rows (xmax = 0) count as usage.
    auto rows = c_.exec(
        "WITH up AS ("
        "  INSERT INTO anomaly_scores AS a (tenant_id, metric_id, window_start, window_end, score, "
        "    anomaly, label, model, status, explanation) "
        "  SELECT DISTINCT ON (tenant_id, metric_id, window_end, window_start) tenant_id, metric_id, "
        "    window_start, window_end, score, anomaly, label, model, status, explanation "
        "  FROM ep_scores_in ORDER BY tenant_id, metric_id, window_end, window_start, seq DESC "
        "  ON CONFLICT (tenant_id, metric_id, window_end, window_start) DO UPDATE SET "
        "    score = excluded.score, anomaly = excluded.anomaly, label = excluded.label, "
        "    model = excluded.model, status = excluded.status, explanation = excluded.explanation, "
        "    scored_at = now() "
        "  RETURNING a.tenant_id, (a.xmax = 0) AS inserted), "
        "usage AS ("
        "  INSERT INTO usage_daily AS u (tenant_id, day, windows_scored) "
        "  SELECT tenant_id, (now() AT TIME ZONE 'UTC')::date, count(*) FROM up WHERE inserted "
        "  GROUP BY tenant_id "
        "  ON CONFLICT (tenant_id, day) DO UPDATE SET windows_scored = u.windows_scored + "
        "    excluded.windows_scored) "
        "SELECT count(*), count(*) FILTER (WHERE inserted) FROM up");
    if (!rows) return rows.status().with_context("anomaly_scores");
    if (in_tx) EP_RETURN_IF_ERROR(in_tx());
    EP_RETURN_IF_ERROR(tx.commit());
    stored_ += rows->get_int(0, 0);
    inserted_ += rows->get_int(0, 1);
  } else {
    EP_RETURN_IF_ERROR(in_tx());
    EP_RETURN_IF_ERROR(tx.commit());
  }
  rows_ = 0;
  buf_.clear();
  return Status::ok();
}

Result<const DbModelSource::Tenant*> DbModelSource::tenant(const std::string& slug) const {
  if (auto it = tenants_.find(slug); it != tenants_.end()) return &it->second;
  // d/m resolve the row's metric_id; NULL when it is NULL (group models) or unknown.
  auto rows = c_.exec(
      "SELECT t.tenant_id, mo.name, mo.version, d.external_id, m.name "
      "FROM tenants t LEFT JOIN models mo ON mo.tenant_id = t.tenant_id AND mo.active "
      "LEFT JOIN metrics m ON m.tenant_id = mo.tenant_id AND m.metric_id = mo.metric_id "
      "LEFT JOIN devices d ON d.tenant_id = m.tenant_id AND d.device_id = m.device_id "
      "WHERE t.slug = $1 ORDER BY mo.name, mo.version DESC",
      {slug});
  if (!rows) return rows.status().with_context("models table");
  Tenant t;
  for (int i = 0; i < rows->size(); ++i) {
    t.exists = true;
    t.tenant_id = rows->str(i, 0);
    if (rows->is_null(i, 1)) continue;  // a tenant without active models
    Row r;
    r.version = static_cast<int>(rows->get_int(i, 2));
    r.has_series = !rows->is_null(i, 3);
    if (r.has_series) {
      r.device = rows->str(i, 3);
      r.metric = rows->str(i, 4);
    }
    t.active[rows->str(i, 1)].push_back(std::move(r));
  }
  return &(tenants_[slug] = std::move(t));
}

Result<model::Model> DbModelSource::fetch(const Tenant& t, const SeriesKey& k,
                                          int version) const {
  const std::string id = k.to_string() + "@" + std::to_string(version);
  if (auto it = broken_.find(id); it != broken_.end()) return it->second;
  auto rows = c_.exec(
      "SELECT encode(artefact, 'hex'), lower(sha256) FROM models "
      "WHERE tenant_id = $1 AND name = $2 AND version = $3",
      {t.tenant_id, k.device + "/" + k.metric, version});
  if (!rows) return rows.status().with_context("models table " + id);
  if (rows->empty()) return Status::not_found(id + ": not in the models table");
  ++reads_;
  const std::string where = "models table " + id;
  auto checked = [&]() -> Result<model::Model> {
    auto bytes = crypto::unhex(rows->get(0, 0));
    if (!bytes) return Status::data(where + ": artefact is not readable bytes");
    if (!crypto::equal_ct(crypto::sha256_hex(*bytes), rows->get(0, 1)))
      return Status::data(where +
                          ": artefact does not match the row's sha256 (row corrupted or edited)");
    return model::parse_as(*bytes, where, k, version);
  }();
  if (!checked && checked.status().code() == Code::kData) broken_.emplace(id, checked.status());
  return checked;
}

Result<model::Model> DbModelSource::load(const SeriesKey& k, int version) const {
  auto t = tenant(k.tenant);
  if (!t) return t.status();
  if (!(*t)->exists) return Status::not_found(k.tenant + ": no such tenant in Postgres");
  if (version == 0) {
    auto it = (*t)->active.find(k.device + "/" + k.metric);
    if (it != (*t)->active.end()) {
      for (const Row& r : it->second) {
        if (!r.has_series || (r.device == k.device && r.metric == k.metric)) {
          version = r.version;
          break;
        }
      }
    }
    if (version == 0) return Status::not_found(k.to_string() + ": no active model in the models table");
  }
  return fetch(**t, k, version);
}

namespace {

struct Cursor {
  bool set = false;
  std::string created, metric_id, window_end, window_start;  // µs since the epoch / uuid
};

Result<Cursor> load_cursor(pg::Conn& c, const std::string& tenant_id) {
  // position_text is "metric_id window_end_us window_start_us" (the casts check it).
  auto rows = c.exec(
      "SELECT (extract(epoch FROM position) * 1000000)::int8, split_part(position_text, ' ', 1)::uuid, "
      "split_part(position_text, ' ', 2)::int8, split_part(position_text, ' ', 3)::int8 "
      "FROM cursors WHERE tenant_id = $1 AND name = $2 AND scope = '' AND position IS NOT NULL",
      {tenant_id, kCursorName});
  if (!rows) return rows.status().with_context("cursors (name 'ep-score')");
  Cursor cur;
  if (rows->empty()) return cur;
  cur.set = true;
  cur.created = rows->str(0, 0);
  cur.metric_id = rows->str(0, 1);
  cur.window_end = rows->str(0, 2);
  cur.window_start = rows->str(0, 3);
  return cur;
}

Status save_cursor(pg::Conn& c, const std::string& tenant_id, const Cursor& cur) {
  return c.run(
      "INSERT INTO cursors (tenant_id, name, scope, position, position_text, updated_at) "
      "VALUES ($1, $2, '', (timestamptz 'epoch' + $3::int8 * interval '1 microsecond'), $4, now()) "
      "ON CONFLICT (tenant_id, name, scope) DO UPDATE SET position = excluded.position, "
      "position_text = excluded.position_text, updated_at = now()",
      {tenant_id, kCursorName, cur.created,
       cur.metric_id + " " + cur.window_end + " " + cur.window_start});
}

// The window record of a features row, built by Postgres.
constexpr const char* kRecordSql =
    "jsonb_build_object('kind', 'window', 'tenant', $1::text, 'device', d.external_id, "
    "'metric', m.name, 'start', f.window_start, 'end', f.window_end, 'n', f.n, "
    "'expected', f.expected, 'features', f.features)::text";

Status parse_window(std::string_view text, rapidjson::Document& doc, Window& w) {
  EP_RETURN_IF_ERROR(parse_json(text, doc));
  return parse_record(doc, w);
}

}  // namespace

Status run_since_last(const Options& opt, const model::Source* store, pg::Conn& c,
                      const DbOptions& db, RecordWriter& out, Summary& summary,
                      DbScoreSink& sink) {
  auto t = c.exec("SELECT tenant_id FROM tenants WHERE slug = $1", {db.tenant});
  if (!t) return t.status().with_context("tenants");
  if (t->empty()) return Status::not_found("--tenant: no tenant '" + db.tenant + "'");
  const std::string tenant_id = t->str(0, 0);
  // One run at a time per tenant: a second concurrent run would score the same page.
  auto locked = c.try_advisory_lock(pg::lock_key("ep-score --since-last " + tenant_id));
  if (!locked) return locked.status();
  if (!*locked)
    return Status::temporary("another ep-score --since-last is running for tenant '" + db.tenant + "'");

  // Rows written by transactions still running elsewhere carry created_at >= their
  // start: stop before the oldest such start so none is skipped when it commits.
  // least() ignores the NULL of "no such transaction".
  auto h = c.exec(
      "SELECT (extract(epoch FROM least(now(), min(xact_start))) * 1000000)::int8, "
      "extract(epoch FROM now() - least(now(), min(xact_start)))::float8 "
      "FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' "
      "AND datname = current_database() AND xact_start IS NOT NULL");
  if (!h) return h.status().with_context("pg_stat_activity");
  const std::string horizon = h->str(0, 0);
  if (double behind = h->get_double(0, 1); behind > 600)
    log::warn("a transaction open for " + std::to_string(static_cast<long>(behind)) +
              " s holds --since-last back to its start (see pg_stat_activity); rows written "
              "after it are scored once it ends");

  auto cur = load_cursor(c, tenant_id);
  if (!cur) return cur.status();
  Scorer scorer(opt, store);
  Status state_status;
  if (!opt.state.empty()) {
    state_status = scorer.load_state(opt.state);
    if (!state_status.is_ok() && state_status.code() != Code::kData) return state_status;
    if (!state_status.is_ok()) log::error(state_status);
  }
  Progress prog(db.progress, "windows scored");
  std::unordered_set<std::string> primed;  // metric ids whose history was replayed
  const int history = static_cast<int>(std::max(opt.fallback_history, opt.adapt_after));
  rapidjson::Document doc;
  Window w;
  Status sink_status;
  const std::string select =
      std::string("SELECT f.metric_id, (extract(epoch FROM f.created_at) * 1000000)::int8, "
                  "(extract(epoch FROM f.window_end) * 1000000)::int8, "
                  "(extract(epoch FROM f.window_start) * 1000000)::int8, ") +
      kRecordSql +
      " FROM features f JOIN metrics m ON m.tenant_id = f.tenant_id AND m.metric_id = f.metric_id "
      "JOIN devices d ON d.tenant_id = m.tenant_id AND d.device_id = m.device_id "
      "WHERE f.tenant_id = $2 AND f.created_at < (timestamptz 'epoch' + $3::int8 * interval '1 microsecond') "
      "  AND ($4::int8 IS NULL OR (f.created_at, f.metric_id, f.window_end, f.window_start) > "
      "       ((timestamptz 'epoch' + $4::int8 * interval '1 microsecond'), $5::uuid, (timestamptz 'epoch' + $6::int8 * interval '1 microsecond'), "
      "        (timestamptz 'epoch' + $7::int8 * interval '1 microsecond'))) "
      "ORDER BY f.created_at, f.metric_id, f.window_end, f.window_start LIMIT $8";
  for (;;) {
    auto rows = cur->set
                    ? c.exec(select, {db.tenant, tenant_id, horizon, cur->created, cur->metric_id,
                                      cur->window_end, cur->window_start, kPageRows})
                    : c.exec(select, {db.tenant, tenant_id, horizon, nullptr, nullptr, nullptr,
                                      nullptr, kPageRows});
    if (!rows) return rows.status().with_context("features");
    const int n = rows->size();
    for (int i = 0; i < n; ++i) {
      ++summary.lines;
      std::string metric_id = rows->str(i, 0);
      if (Status p = parse_window(rows->get(i, 4), doc, w); !p) {
        ++summary.rejected;
        log::emit(log::Level::kError, "features " + metric_id + " " + rows->str(i, 2),
                  p.message());
        continue;
      }
      if (primed.insert(metric_id).second) {
        if (!scorer.has_state(SeriesKey{w.tenant, w.device, w.metric})) {
          // Replay the series' preceding windows (output discarded) so the fallback's
          // history, drift adaptation and event state carry over between runs (with
          // --state they are in the state file instead).
          auto prev = c.exec(std::string("SELECT r FROM (SELECT ") + kRecordSql +
                                 " AS r, f.window_end FROM features f "
                                 "JOIN metrics m ON m.tenant_id = f.tenant_id AND m.metric_id = f.metric_id "
                                 "JOIN devices d ON d.tenant_id = m.tenant_id AND d.device_id = m.device_id "
                                 "WHERE f.tenant_id = $2 AND f.metric_id = $3 AND f.window_end < "
                                 "(timestamptz 'epoch' + $4::int8 * interval '1 microsecond') "
                                 "ORDER BY f.window_end DESC LIMIT $5) x ORDER BY window_end",
                             {db.tenant, tenant_id, metric_id, rows->str(i, 3), history});
          if (!prev) return prev.status().with_context("features (history)");
          Window pw;
          for (int j = 0; j < prev->size(); ++j) {
            if (!parse_window(prev->get(j, 0), doc, pw).is_ok()) continue;
            // The series' model is looked up here, on its first window: report a model
            // that cannot be used as score_window() would (the replay's output is not).
            Status model_error;
            (void)scorer.score(pw, model_error);
            if (!model_error.is_ok()) {
              ++summary.model_errors;
              log::emit(log::Level::kError, SeriesKey{pw.tenant, pw.device, pw.metric}.to_string(),
                        model_error.message() + " (scored by the fallback)", -1,
                        model_error.code());
            }
          }
        }
        sink.remember(w, tenant_id, metric_id);
      }
      if (!score_window(scorer, w, out, &sink, summary, sink_status)) {
        if (!sink_status.is_ok()) return sink_status;
        return Status::ok();  // stdout closed: nothing of this page is committed
      }
    }
    if (n > 0) {
      cur->set = true;
      cur->created = rows->str(n - 1, 1);
      cur->metric_id = rows->str(n - 1, 0);
      cur->window_end = rows->str(n - 1, 2);
      cur->window_start = rows->str(n - 1, 3);
      const Cursor next = *cur;
      EP_RETURN_IF_ERROR(sink.flush([&] { return save_cursor(c, tenant_id, next); }));
      out.flush();
    }
    prog.update(static_cast<std::uint64_t>(summary.windows), 0);
    if (n < kPageRows) break;
  }
  prog.finish();
  // Saved only once every page's scores and cursor are committed: a failed run leaves
  // the state matching the cursor, and the next run scores the same windows from it.
  if (!opt.state.empty()) EP_RETURN_IF_ERROR(scorer.save_state(opt.state));
  if (summary.rejected > 0 || summary.model_errors > 0)
    return Status::data(std::to_string(summary.rejected) + " features rows rejected, " +
                        std::to_string(summary.model_errors) + " unreadable models");
  return state_status;
}

}  // namespace ep::score
