// GET /v1/series: one series' values and scores for a chart, downsampled on the server
// (LTTB) so the browser draws at most max_points however many points lie behind, with
// the extremes of every anomalous window kept.
#include <algorithm>

#include "ep/json.h"
#include "lttb.h"
#include "routes.h"
#include "util.h"

namespace ep::api {

Result<Response> get_series(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {"metric_id", "from", "to", "max_points"}));
  EP_TRY(metric_id, q_uuid(c, "metric_id"));
  if (!metric_id) return Status::usage("metric_id: required");
  EP_TRY(from_q, q_time(c, "from"));
  EP_TRY(to_q, q_time(c, "to"));
  EP_TRY(maxp, q_number(c, "max_points", 3, c.opts.max_series_points));
  size_t max_points = maxp ? static_cast<size_t>(*maxp) : c.opts.default_series_points;

  auto meta = c.db.exec(
      "SELECT m.name, m.unit, d.external_id, d.device_id::text, "
      "  (SELECT max(ts) FROM datapoints p WHERE p.tenant_id = m.tenant_id AND p.metric_id = "
      "m.metric_id), "
      "  (SELECT min(ts) FROM datapoints p WHERE p.tenant_id = m.tenant_id AND p.metric_id = "
      "m.metric_id) "
      "FROM metrics m JOIN devices d ON d.tenant_id = m.tenant_id AND d.device_id = m.device_id "
      "WHERE m.tenant_id = $1 AND m.metric_id = $2",
      {c.tenant.id, *metric_id});
  if (!meta) return meta.status();
  // Another tenant's metric is as absent as a deleted one.
  if (meta->empty()) return Status::not_found("metric " + *metric_id + " not found");
  // Default range: the day up to the last point (or now when the series is empty),
  // starting no earlier than the first point.
  TimeNs to = to_q ? *to_q : meta->is_null(0, 4) ? c.now : meta->get_ts(0, 4) + 1000;
  // A young series starts at its first point rather than a mostly empty day.
  TimeNs from = from_q ? *from_q : to - c.opts.default_series_range;
  if (!from_q && !meta->is_null(0, 5)) from = std::max(from, meta->get_ts(0, 5));
  if (from >= to) return Status::usage("from: must be before to");

  auto scores = c.db.exec(
      "SELECT window_start, window_end, score, anomaly, label, model, explanation::text "
      "FROM anomaly_scores WHERE tenant_id = $1 AND metric_id = $2 "
      "  AND window_end > $3::timestamptz AND window_start < $4::timestamptz "
      "ORDER BY window_end, window_start LIMIT 100000",
      {c.tenant.id, *metric_id, pg::ts_param(from), pg::ts_param(to)});
  if (!scores) return scores.status();
  std::vector<std::pair<TimeNs, TimeNs>> flagged;
  for (int i = 0; i < scores->size(); ++i)
    if (scores->get_bool(i, 3)) flagged.emplace_back(scores->get_ts(i, 0), scores->get_ts(i, 1));

  // Epoch microseconds and value; at most max_range_points + 1 rows, so one request's
  // memory is bounded by configuration, not by the range asked for.
  auto rows = c.db.exec(
      "SELECT (extract(epoch FROM ts) * 1000000)::bigint, value FROM datapoints "
      "WHERE tenant_id = $1 AND metric_id = $2 AND ts >= $3::timestamptz AND ts < $4::timestamptz "
      "ORDER BY ts LIMIT $5",
      {c.tenant.id, *metric_id, pg::ts_param(from), pg::ts_param(to),
       static_cast<std::int64_t>(c.opts.max_range_points) + 1});
  if (!rows) return rows.status();
  if (rows->size() > c.opts.max_range_points)
    return Status::usage("from: the range holds more than " + std::to_string(c.opts.max_range_points) +
                         " points; narrow from/to");
  std::vector<XY> pts(static_cast<size_t>(rows->size()));
  for (int i = 0; i < rows->size(); ++i)
    pts[static_cast<size_t>(i)] = {rows->get_int(i, 0) * 1000, rows->get_double(i, 1)};
  std::vector<size_t> keep = downsample_keeping(pts, max_points, flagged);

  JsonWriter w;
  w.start_object();
  w.kv("metric_id", *metric_id);
  w.kv("device_id", meta->str(0, 3));
  w.kv("device", meta->str(0, 2));
  w.kv("metric", meta->str(0, 0));
  w.kv("unit", meta->str(0, 1));
  w.kv_time("from", from);
  w.kv_time("to", to);
  w.kv("total_points", static_cast<std::int64_t>(pts.size()));
  w.kv("downsampled", keep.size() < pts.size());
  // [[t, v], ...] with t in ms since the epoch: compact for 20,000 points.
  w.key("points");
  w.start_array();
  for (size_t i : keep) {
    w.start_array();
    w.num(static_cast<std::int64_t>(pts[i].t / kNsPerMs));
    w.num(pts[i].v);
    w.end_array();
  }
  w.end_array();
  w.key("scores");
  w.start_array();
  for (int i = 0; i < scores->size(); ++i) {
    w.start_object();
    w.kv_time("start", scores->get_ts(i, 0));
    w.kv_time("end", scores->get_ts(i, 1));
    w.kv("score", scores->get_double(i, 2));
    w.kv("anomaly", scores->get_bool(i, 3));
    w.kv("label", scores->str(i, 4));
    w.kv("model", scores->str(i, 5));
    w.key("explanation");
    w.raw(scores->get(i, 6));
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return json_response(200, w.take());
}

}  // namespace ep::api
