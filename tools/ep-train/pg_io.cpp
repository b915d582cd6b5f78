#include "pg_io.h"

#include <unordered_map>

#include "ep/crypto.h"
#include "ep/fsutil.h"
#include "ep/json.h"
#include "ep/log.h"
#include "ep/pg.h"
#include "ep/progress.h"
#include "ep/records.h"

namespace ep::train {
namespace {

constexpr int kPageRows = 20000;  // features rows per keyset page

// Training range and the "not flagged anomalous" filter, on features f ($1 tenant id,
// $2/$3 range bounds in µs since the epoch or NULL).
constexpr const char* kTrainingRows =
    "FROM features f "
    "WHERE f.tenant_id = $1 "
    "  AND ($2::int8 IS NULL OR f.window_start >= timestamptz 'epoch' + $2::int8 * interval '1 microsecond') "
    "  AND ($3::int8 IS NULL OR f.window_end <= timestamptz 'epoch' + $3::int8 * interval '1 microsecond') ";
constexpr const char* kFlagged =
    "EXISTS (SELECT 1 FROM anomaly_scores a WHERE a.tenant_id = f.tenant_id "
    "AND a.metric_id = f.metric_id AND a.window_end = f.window_end "
    "AND a.window_start = f.window_start AND a.anomaly)";

pg::Param us_param(const std::optional<TimeNs>& t) {
  if (!t) return nullptr;
  return static_cast<std::int64_t>(*t / 1000);
}

std::string meta_json(const model::Model& m) {
  JsonWriter w;
  w.start_object();
  w.kv("trees", static_cast<std::int64_t>(m.params.trees));
  w.kv("sample", static_cast<std::int64_t>(m.params.sample));
  w.kv("seed", static_cast<std::int64_t>(m.params.seed));
  w.kv("contamination", m.contamination);
  w.kv("scaling", m.scaling);
  w.kv("windows", m.windows);
  w.kv("series", m.series);
  w.kv_time("trained_from", m.trained_from);
  w.kv_time("trained_to", m.trained_to);
  w.key("features");
  w.start_array();
  for (const auto& f : m.features) w.str(f);
  w.end_array();
  w.end_object();
  return w.take();
}

}  // namespace

Status run_db(const Options& opt, const DbOptions& db, RecordWriter& out,
              const model::Store& store, const Clock& clock, Summary& summary,
              std::int64_t& excluded) {
  auto conn = pg::Conn::connect(db.url, "ep-train");
  if (!conn) return conn.status();
  pg::Conn& c = *conn;
  auto t = c.exec("SELECT tenant_id FROM tenants WHERE slug = $1", {db.tenant});
  if (!t) return t.status().with_context("tenants");
  if (t->empty()) return Status::not_found("--tenant: no tenant '" + db.tenant + "'");
  const std::string tenant_id = t->str(0, 0);
  const pg::Param from = us_param(opt.from), to = us_param(opt.to);

  auto ex = c.exec(std::string("SELECT count(*) ") + kTrainingRows + "AND " + kFlagged,
                   {tenant_id, from, to});
  if (!ex) return ex.status().with_context("anomaly_scores");
  excluded = ex->get_int(0, 0);

  // Series ids by (device, metric), for the models table.
  std::unordered_map<std::string, std::string> metric_ids;
  Trainer trainer(opt);
  Progress prog(db.progress, "windows");
  rapidjson::Document doc;
  Window w;
  std::int64_t lines = 0, rejected = 0;
  const std::string select =
      std::string(
          "SELECT f.metric_id, (extract(epoch FROM f.window_end) * 1000000)::int8, "
          "(extract(epoch FROM f.window_start) * 1000000)::int8, "
          "jsonb_build_object('kind', 'window', 'tenant', $4::text, 'device', d.external_id, "
          "'metric', m.name, 'start', f.window_start, 'end', f.window_end, 'n', f.n, "
          "'expected', f.expected, 'features', f.features)::text, d.external_id, m.name ") +
      kTrainingRows + "AND NOT " + kFlagged +
      " AND ($5::uuid IS NULL OR (f.metric_id, f.window_end, f.window_start) > ($5::uuid, "
      "timestamptz 'epoch' + $6::int8 * interval '1 microsecond', "
      "timestamptz 'epoch' + $7::int8 * interval '1 microsecond')) "
      "ORDER BY f.metric_id, f.window_end, f.window_start LIMIT $8";
  // The joins are written into the FROM clause through this replacement so that the
  // range/flag fragments stay shared with the count above.
  std::string sql = select;
  sql.replace(sql.find("FROM features f "), 16,
              "FROM features f JOIN metrics m ON m.tenant_id = f.tenant_id AND m.metric_id = "
              "f.metric_id JOIN devices d ON d.tenant_id = m.tenant_id AND d.device_id = "
              "m.device_id ");
  pg::Param after_metric = nullptr, after_end = nullptr, after_start = nullptr;
  for (;;) {
    auto rows = c.exec(sql, {tenant_id, from, to, db.tenant, after_metric, after_end,
                             after_start, kPageRows});
    if (!rows) return rows.status().with_context("features");
    const int n = rows->size();
    for (int i = 0; i < n; ++i) {
      ++lines;
      // Empty the document's pool first: it would otherwise keep every row parsed.
      doc.SetNull();
      doc.GetAllocator().Clear();
      Status p = parse_json(rows->get(i, 3), doc);
      if (p.is_ok()) p = parse_record(doc, w);
      if (!p) {
        ++rejected;
        log::emit(log::Level::kError, "features " + rows->str(i, 0) + " " + rows->str(i, 1),
                  p.message());
        if (opt.strict) return Status::data("stopped at the first rejected row (--strict)");
        continue;
      }
      metric_ids.try_emplace(rows->str(i, 4) + '\x1f' + rows->str(i, 5), rows->str(i, 0));
      trainer.add(w);
    }
    if (n > 0) {
      after_metric = rows->str(n - 1, 0);
      after_end = rows->str(n - 1, 1);
      after_start = rows->str(n - 1, 2);
    }
    prog.update(static_cast<std::uint64_t>(lines), 0);
    if (n < kPageRows) break;
  }
  prog.finish();

  // Versions continue from the models table: a trainer host whose --models directory
  // is new (or behind) must not reuse a number another host has recorded.
  auto recorded = c.exec("SELECT name, max(version) FROM models WHERE tenant_id = $1 GROUP BY name",
                         {tenant_id});
  if (!recorded) return recorded.status().with_context("models (latest versions)");
  std::unordered_map<std::string, int> latest_recorded;
  for (int i = 0; i < recorded->size(); ++i)
    latest_recorded.emplace(recorded->str(i, 0), static_cast<int>(recorded->get_int(i, 1)));
  trainer.set_version_floor([&latest_recorded](const SeriesKey& k) {
    auto it = latest_recorded.find(k.device + "/" + k.metric);  // read-only: thread-safe
    return it == latest_recorded.end() ? 1 : it->second + 1;
  });

  auto on_model = [&](const Outcome& o) -> Status {
    auto text = fs::read_file(o.path);
    if (!text) return text.status().with_context(o.path);
    auto m = model::parse(*text, o.path);
    if (!m) return m.status();
    pg::Param metric_id = nullptr;
    if (o.key.device != model::kGroupDevice) {
      auto it = metric_ids.find(o.key.device + '\x1f' + o.key.metric);
      if (it != metric_ids.end()) metric_id = it->second;
    }
    std::string name = o.key.device + "/" + o.key.metric;
    // The version is above every one recorded (the floor above); a row of the same
    // version can only come from a concurrent trainer, and the artefact in the store
    // ep-score reads wins.
    return c.run(
        "INSERT INTO models (tenant_id, name, version, metric_id, kind, artefact, sha256, "
        "threshold, meta, trained_at, active) "
        "VALUES ($1, $2, $3, $4, 'iforest', convert_to($5, 'UTF8'), $6, $7, $8::jsonb, now(), true) "
        "ON CONFLICT (tenant_id, name, version) DO UPDATE SET metric_id = excluded.metric_id, "
        "artefact = excluded.artefact, sha256 = excluded.sha256, threshold = excluded.threshold, "
        "meta = excluded.meta, trained_at = excluded.trained_at, active = true",
        {tenant_id, name, o.version, metric_id, *text, crypto::sha256_hex(*text),
         m->threshold, meta_json(*m)});
  };
  Status s = train_and_report(trainer, out, store, clock, db.progress, summary, on_model);
  if (s.is_ok()) {
    // Older versions of the series stop being active once a newer one is recorded.
    auto r = c.run(
        "UPDATE models o SET active = false FROM models n WHERE o.tenant_id = $1 "
        "AND n.tenant_id = o.tenant_id AND n.name = o.name AND n.version > o.version AND o.active",
        {tenant_id});
    if (!r) s = r;
  }
  summary.lines = lines;
  summary.rejected = rejected;
  if (!s) return s;
  if (rejected > 0) return Status::data(std::to_string(rejected) + " features rows rejected");
  return Status::ok();
}

}  // namespace ep::train
