#include "writer.h"

#include <algorithm>
#include <map>
#include <set>

#include "ep/schema.h"
#include "rollup.h"

namespace ep::load {

namespace {

constexpr size_t kCopyChunk = 1 << 20;

std::string key_of(const Uuid& id, std::string_view name) {
  std::string k(reinterpret_cast<const char*>(id.b.data()), 16);
  k.append(name);
  return k;
}

Uuid uuid_or_zero(std::string_view s) { return Uuid::parse(s).value_or(Uuid{}); }

std::int64_t us_of(TimeNs t) {
  std::int64_t q = t / 1000;
  if (t % 1000 != 0 && t < 0) --q;
  return q;
}

// Builds "{a,b,c}" array literals.
class ArrayText {
 public:
  void add(std::string_view s) {
    sep();
    append_array_elem(s_, s);
  }
  void add_raw(std::string_view s) {
    sep();
    s_.append(s);
  }
  void add_null() {
    sep();
    s_ += "NULL";
  }
  std::string str() const { return "{" + s_ + "}"; }

 private:
  void sep() {
    if (!first_) s_ += ',';
    first_ = false;
  }
  std::string s_;
  bool first_ = true;
};

}  // namespace

void append_array_elem(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

Writer::Writer(const Options& o, Reporter& rep) : o_(o), rep_(rep) {}

Status Writer::hook(const char* step) { return fault ? fault(step) : Status::ok(); }

Status Writer::connect_once() {
  auto c = pg::Conn::connect(pg::resolve_url(o_.db), "ep-load");
  if (!c) return c.status();
  conn_ = std::move(*c);
  int need = o_.rollups ? std::max(o_.schema_version, kRollupSchemaVersion) : o_.schema_version;
  if (Status s = schema::require(conn_, need); !s) {
    // Not retryable: the database answered, it just has no (current) schema.
    return conn_.connected() ? Status::software(s.message()) : s;
  }
  if (o_.rollups) EP_RETURN_IF_ERROR(create_rollup_stage(conn_));
  // Staging table for groups whose points may already exist (see writer.h). Rows vanish
  // at commit; the table lives as long as the session.
  return conn_.run(
      "CREATE TEMP TABLE IF NOT EXISTS ep_load_stage"
      " (tenant_id uuid, metric_id uuid, ts timestamptz, value double precision) ON COMMIT DELETE ROWS");
}

pg::RetryPolicy Writer::policy() const {
  pg::RetryPolicy p;
  p.max_wait = o_.max_wait;
  return p;
}

pg::RetryHooks Writer::hooks() {
  pg::RetryHooks h;
  h.on_retry = [this](const Status& s, int attempt, TimeNs wait) {
    if (notice)
      notice("postgres: " + s.message() + "; retry " + std::to_string(attempt) + " in " +
             std::to_string(wait / kNsPerMs) + " ms");
  };
  h.cancelled = cancelled;
  return h;
}

Status Writer::open() {
  Status s = pg::retry(policy(), [&](int) { return connect_once(); }, hooks());
  if (s.code() == Code::kSoftware) return Status::unavailable(s.message());
  return s;
}

Status Writer::with_conn(const std::function<Status(pg::Conn&)>& fn) {
  return pg::retry(
      policy(),
      [&](int) -> Status {
        EP_RETURN_IF_ERROR(ensure_connected());
        Status s = fn(conn_);
        if (!s && conn_.connected() && conn_.in_transaction()) (void)conn_.rollback();
        return s;
      },
      hooks());
}

Status Writer::ensure_connected() {
  if (conn_.connected()) return Status::ok();
  Status s = connect_once();
  if (s.code() == Code::kSoftware) return Status::unavailable(s.message());
  return s;
}

// ---- ids ----

Status Writer::resolve_tenants(Group& g) {
  std::set<std::string> missing;
  for (auto& e : g.entries)
    if (!e.rejected && !tenants_.count(e.tenant)) missing.insert(e.tenant);
  if (!missing.empty()) {
    ArrayText slugs;
    for (const auto& s : missing) slugs.add(s);
    if (o_.create_tenants) {
      EP_RETURN_IF_ERROR(conn_.run(
          "INSERT INTO tenants (slug) SELECT unnest($1::text[]) ORDER BY 1 ON CONFLICT (slug) DO NOTHING",
          {slugs.str()}));
    }
    auto r = conn_.exec("SELECT slug, tenant_id FROM tenants WHERE slug = ANY($1::text[])", {slugs.str()});
    if (!r) return r.status();
    for (int i = 0; i < r->size(); ++i) tenants_[r->str(i, 0)] = {uuid_or_zero(r->get(i, 1)), true};
  }
  for (auto& e : g.entries) {
    if (e.rejected) continue;
    auto it = tenants_.find(e.tenant);
    if (it == tenants_.end()) {
      // Unknown tenants are not cached: `ep-admin tenant add` during a run takes effect.
      e.rejected = true;
      ++stats_.rejected;
      rep_.reject(e.stream, e.line,
                  "tenant: unknown tenant '" + e.tenant + "' (create it with 'ep-admin tenant add " +
                      e.tenant + "', or run ep-load with --create-tenants)");
      continue;
    }
    e.tenant_id = it->second.first;
  }
  return Status::ok();
}

Status Writer::resolve_devices(Group& g) {
  std::map<std::string, std::pair<Uuid, std::string>> missing;  // key -> (tenant, device)
  for (auto& e : g.entries) {
    if (e.rejected) continue;
    std::string k = key_of(e.tenant_id, e.device);
    if (!devices_.count(k)) missing.emplace(k, std::make_pair(e.tenant_id, e.device));
  }
  if (!missing.empty()) {
    ArrayText tids, names;
    for (const auto& [k, v] : missing) {
      tids.add_raw(v.first.str());
      names.add(v.second);
    }
    auto ins = conn_.exec(
        "INSERT INTO devices (tenant_id, external_id) SELECT * FROM unnest($1::uuid[], $2::text[])"
        " ON CONFLICT (tenant_id, external_id) DO NOTHING",
        {tids.str(), names.str()});
    if (!ins) return ins.status();
    stats_.devices_created += static_cast<std::uint64_t>(ins->affected());
    auto r = conn_.exec(
        "SELECT d.tenant_id, d.external_id, d.device_id FROM devices d"
        " JOIN unnest($1::uuid[], $2::text[]) AS u(t, e) ON d.tenant_id = u.t AND d.external_id = u.e",
        {tids.str(), names.str()});
    if (!r) return r.status();
    for (int i = 0; i < r->size(); ++i)
      devices_[key_of(uuid_or_zero(r->get(i, 0)), r->get(i, 1))] = uuid_or_zero(r->get(i, 2));
  }
  for (auto& e : g.entries) {
    if (e.rejected) continue;
    auto it = devices_.find(key_of(e.tenant_id, e.device));
    if (it == devices_.end()) return Status::software("device '" + e.device + "' was not created");
    e.device_id = it->second;
  }
  return Status::ok();
}

Status Writer::resolve_metrics(Group& g) {
  struct Want {
    Uuid tenant, device;
    std::string name, unit;
  };
  std::map<std::string, Want> missing;
  for (auto& p : g.points) {
    const Entry& e = g.entries[p.entry];
    if (e.rejected) continue;
    std::string k = key_of(e.device_id, p.metric);
    if (!metrics_.count(k) && !missing.count(k)) missing.emplace(k, Want{e.tenant_id, e.device_id, p.metric, p.unit});
  }
  if (!missing.empty()) {
    ArrayText tids, dids, names, units;
    for (const auto& [k, w] : missing) {
      tids.add_raw(w.tenant.str());
      dids.add_raw(w.device.str());
      names.add(w.name);
      units.add(w.unit);
    }
    auto ins = conn_.exec(
        "INSERT INTO metrics (tenant_id, device_id, name, unit)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[])"
        " ON CONFLICT (tenant_id, device_id, name) DO NOTHING",
        {tids.str(), dids.str(), names.str(), units.str()});
    if (!ins) return ins.status();
    stats_.metrics_created += static_cast<std::uint64_t>(ins->affected());
    auto r = conn_.exec(
        "SELECT m.device_id, m.name, m.metric_id FROM metrics m"
        " JOIN unnest($1::uuid[], $2::uuid[], $3::text[]) AS u(t, d, n)"
        " ON m.tenant_id = u.t AND m.device_id = u.d AND m.name = u.n",
        {tids.str(), dids.str(), names.str()});
    if (!r) return r.status();
    for (int i = 0; i < r->size(); ++i)
      metrics_[key_of(uuid_or_zero(r->get(i, 0)), r->get(i, 1))] = uuid_or_zero(r->get(i, 2));
  }
  for (auto& p : g.points) {
    const Entry& e = g.entries[p.entry];
    if (e.rejected) continue;
    auto it = metrics_.find(key_of(e.device_id, p.metric));
    if (it == metrics_.end()) return Status::software("metric '" + p.metric + "' was not created");
    p.metric_id = it->second;
  }
  return Status::ok();
}

// datapoints is partitioned by UTC day (migration 0002). Partitions for the days of
// the group are created before the data transaction, in their own statement: creating
// one locks the parent briefly, and must not sit inside a long COPY transaction.
// Days far in the past or future go to datapoints_default instead of making
// thousands of partitions for stray timestamps.
Status Writer::ensure_partitions(const Group& g) {
  const std::int32_t today = day_of(now_ns());
  std::set<std::int32_t> want;
  for (const auto& p : g.points) {
    if (g.entries[p.entry].rejected) continue;
    std::int32_t d = day_of(p.ts);
    if (d < today - kPartitionPastDays || d > today + kPartitionFutureDays) continue;
    if (!days_known_.count(d)) want.insert(d);
  }
  if (want.empty()) return Status::ok();
  ArrayText days;
  for (auto d : want) days.add_raw(format_date(d));
  auto r = conn_.exec("SELECT edgepulse_ensure_day_partition(d) FROM unnest($1::date[]) AS d ORDER BY d",
                      {days.str()});
  if (!r) return r.status();
  days_known_.insert(want.begin(), want.end());
  return Status::ok();
}

Status Writer::resolve(Group& g) {
  for (auto& e : g.entries)
    if (e.is_batch && !e.rejected) e.batch_uuid = uuid_or_zero(e.batch_id);
  EP_RETURN_IF_ERROR(resolve_tenants(g));
  EP_RETURN_IF_ERROR(resolve_devices(g));
  EP_RETURN_IF_ERROR(resolve_metrics(g));
  return ensure_partitions(g);
}

// ---- loading ----

Status Writer::copy_rows(const std::vector<Row>& rows, const char* table) {
  EP_RETURN_IF_ERROR(conn_.copy_start(std::string("COPY ") + table +
                                      " (tenant_id, metric_id, ts, value) FROM STDIN (FORMAT binary)"));
  pg::CopyBinary enc;
  enc.header();
  for (const Row& r : rows) {
    enc.row(4);
    enc.uuid_bytes(r.tenant.b.data());
    enc.uuid_bytes(r.metric.b.data());
    enc.timestamptz(r.ts_us * 1000);
    enc.float8(r.value);
    if (enc.size() >= kCopyChunk) {
      if (Status s = conn_.copy_put(enc.data()); !s) {
        conn_.copy_abort("client error");
        return s;
      }
      enc.clear();
    }
  }
  enc.trailer();
  if (Status s = conn_.copy_put(enc.data()); !s) {
    conn_.copy_abort("client error");
    return s;
  }
  return conn_.copy_finish().status();
}

Status Writer::load_once(Group& g, Pending& pend, bool& commit_sent, std::string& txid) {
  pend = Pending{};
  new_batches_.clear();
  for (auto& p : g.points) p.inserted = false;
  const TimeNs now = now_ns();

  auto begin = conn_.exec("BEGIN; SELECT pg_current_xact_id()::text");
  if (!begin) return begin.status();
  txid = begin->str(0, 0);
  std::map<Uuid, std::int64_t> cutoffs;
  if (o_.rollups) EP_RETURN_IF_ERROR(lock_rollups(g, cutoffs));

  // Batches: which of them are not loaded yet? Duplicates within the group count once.
  std::vector<std::uint32_t> batch_idx;
  for (std::uint32_t i = 0; i < g.entries.size(); ++i)
    if (g.entries[i].is_batch && !g.entries[i].rejected) batch_idx.push_back(i);
  std::sort(batch_idx.begin(), batch_idx.end(), [&](std::uint32_t a, std::uint32_t b) {
    const Entry& x = g.entries[a];
    const Entry& y = g.entries[b];
    if (!(x.tenant_id == y.tenant_id)) return x.tenant_id < y.tenant_id;
    if (!(x.batch_uuid == y.batch_uuid)) return x.batch_uuid < y.batch_uuid;
    return a < b;
  });
  std::vector<char> selected(g.entries.size(), 0);
  for (std::uint32_t i = 0; i < g.entries.size(); ++i)
    if (!g.entries[i].is_batch && !g.entries[i].rejected) selected[i] = 1;
  if (!batch_idx.empty()) {
    std::vector<std::uint32_t> uniq;
    for (auto i : batch_idx) {
      if (!uniq.empty() && g.entries[uniq.back()].tenant_id == g.entries[i].tenant_id &&
          g.entries[uniq.back()].batch_uuid == g.entries[i].batch_uuid) {
        ++pend.batches_skipped;
        pend.points_skipped += g.entries[i].count;
        continue;
      }
      uniq.push_back(i);
    }
    // Pre-filter batches already loaded (no row locks, cheap on replay).
    ArrayText t_all, b_all;
    for (auto i : uniq) {
      t_all.add_raw(g.entries[i].tenant_id.str());
      b_all.add_raw(g.entries[i].batch_id);
    }
    auto loaded = conn_.exec(
        "SELECT b.tenant_id, b.batch_id FROM ingest_batches b"
        " JOIN unnest($1::uuid[], $2::uuid[]) AS u(t, id) ON b.tenant_id = u.t AND b.batch_id = u.id"
        " WHERE b.status = 'loaded'",
        {t_all.str(), b_all.str()});
    if (!loaded) return loaded.status();
    std::set<std::string> done;
    for (int i = 0; i < loaded->size(); ++i)
      done.insert(uuid_or_zero(loaded->get(i, 0)).str() + "/" + uuid_or_zero(loaded->get(i, 1)).str());
    ArrayText tids, bids, dids, recv, src, sha, npts, arch;
    int candidates = 0;
    for (auto i : uniq) {
      const Entry& e = g.entries[i];
      if (done.count(e.tenant_id.str() + "/" + e.batch_uuid.str())) {
        ++pend.batches_skipped;
        pend.points_skipped += e.count;
        continue;
      }
      ++candidates;
      tids.add_raw(e.tenant_id.str());
      bids.add_raw(e.batch_uuid.str());
      dids.add_raw(e.device_id.str());
      recv.add(pg::format_ts_us(e.received_at));
      src.add(e.source);
      sha.add(e.sha256);
      npts.add_raw(std::to_string(e.count));
      if (e.archive) arch.add(*e.archive);
      else arch.add_null();
    }
    if (candidates > 0) {
      // Rows another loader holds (uncommitted) make us wait; once it commits they are
      // 'loaded' and the WHERE keeps them out of RETURNING.
      auto ins = conn_.exec(
          "INSERT INTO ingest_batches AS b (tenant_id, batch_id, device_id, received_at, source, sha256,"
          " points, archive, status, loaded_at)"
          " SELECT t, id, d, r, s, h, n, a, 'loaded', now()"
          " FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::text[], $6::text[],"
          " $7::int[], $8::text[]) AS u(t, id, d, r, s, h, n, a)"
          " ON CONFLICT (tenant_id, batch_id) DO UPDATE SET status = 'loaded', loaded_at = now(),"
          " error = NULL, points = EXCLUDED.points, device_id = EXCLUDED.device_id,"
          " archive = coalesce(EXCLUDED.archive, b.archive)"
          " WHERE b.status <> 'loaded' RETURNING b.tenant_id, b.batch_id",
          {tids.str(), bids.str(), dids.str(), recv.str(), src.str(), sha.str(), npts.str(), arch.str()});
      if (!ins) return ins.status();
      std::set<std::string> fresh;
      for (int i = 0; i < ins->size(); ++i) {
        std::string k = uuid_or_zero(ins->get(i, 0)).str() + "/" + uuid_or_zero(ins->get(i, 1)).str();
        fresh.insert(k);
        new_batches_.push_back(k);
      }
      for (auto i : uniq) {
        const Entry& e = g.entries[i];
        if (done.count(e.tenant_id.str() + "/" + e.batch_uuid.str())) continue;
        if (fresh.count(e.tenant_id.str() + "/" + e.batch_uuid.str())) {
          selected[i] = 1;
          ++pend.batches_loaded;
        } else {
          ++pend.batches_skipped;  // loaded concurrently by another loader
          pend.points_skipped += e.count;
        }
      }
    }
  }

  // Points of the selected entries, in primary-key order, without in-group duplicates.
  std::vector<Row> rows;
  rows.reserve(g.points.size());
  for (std::uint32_t i = 0; i < g.points.size(); ++i) {
    const InPoint& p = g.points[i];
    if (!selected[p.entry]) continue;
    rows.push_back(Row{g.entries[p.entry].tenant_id, p.metric_id, us_of(p.ts), p.value, i});
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (!(a.tenant == b.tenant)) return a.tenant < b.tenant;
    if (!(a.metric == b.metric)) return a.metric < b.metric;
    if (a.ts_us != b.ts_us) return a.ts_us < b.ts_us;
    return a.point < b.point;
  });
  size_t before = rows.size();
  rows.erase(std::unique(rows.begin(), rows.end(),
                         [](const Row& a, const Row& b) {
                           return a.tenant == b.tenant && a.metric == b.metric && a.ts_us == b.ts_us;
                         }),
             rows.end());
  pend.points_skipped += before - rows.size();

  if (!rows.empty()) {
    bool direct = o_.copy_mode == "direct" || (o_.copy_mode == "auto" && direct_cooldown_ == 0);
    if (direct) {
      EP_RETURN_IF_ERROR(conn_.run("SAVEPOINT ep_load_direct"));
      Status s = copy_rows(rows, "datapoints");
      if (s) s = hook("after_copy");
      if (s) {
        for (const Row& r : rows) g.points[r.point].inserted = true;
        pend.points_inserted += rows.size();
      } else if (s.code() == Code::kConflict && o_.copy_mode == "auto" && conn_.connected()) {
        // Some point already exists: fall back to the staging path for this group and
        // the next few (a replay of point records conflicts on every group).
        EP_RETURN_IF_ERROR(conn_.run("ROLLBACK TO SAVEPOINT ep_load_direct"));
        direct = false;
        direct_cooldown_ = 8;
        ++pend.staging_fallbacks;
      } else {
        return s;
      }
    } else if (direct_cooldown_ > 0) {
      --direct_cooldown_;
    }
    if (!direct) {
      EP_RETURN_IF_ERROR(copy_rows(rows, "ep_load_stage"));
      auto ins = conn_.exec(
          "INSERT INTO datapoints (tenant_id, metric_id, ts, value)"
          " SELECT tenant_id, metric_id, ts, value FROM ep_load_stage"
          " ON CONFLICT (tenant_id, metric_id, ts) DO NOTHING"
          " RETURNING tenant_id, metric_id, (extract(epoch FROM ts) * 1000000)::int8");
      if (!ins) return ins.status();
      EP_RETURN_IF_ERROR(conn_.run("TRUNCATE ep_load_stage"));
      for (int i = 0; i < ins->size(); ++i) {
        Row key{uuid_or_zero(ins->get(i, 0)), uuid_or_zero(ins->get(i, 1)), ins->get_int(i, 2), 0, 0};
        auto it = std::lower_bound(rows.begin(), rows.end(), key, [](const Row& a, const Row& b) {
          if (!(a.tenant == b.tenant)) return a.tenant < b.tenant;
          if (!(a.metric == b.metric)) return a.metric < b.metric;
          return a.ts_us < b.ts_us;
        });
        if (it != rows.end() && it->tenant == key.tenant && it->metric == key.metric && it->ts_us == key.ts_us)
          g.points[it->point].inserted = true;
      }
      pend.points_inserted += static_cast<std::uint64_t>(ins->size());
      pend.points_skipped += rows.size() - static_cast<size_t>(ins->size());
    }
  }

  if (o_.rollups) EP_RETURN_IF_ERROR(update_rollups(g, rows, cutoffs));

  // usage_daily: what this transaction actually added, per tenant and UTC day (the day
  // the batch was received; for point records, the day it was loaded).
  std::map<std::pair<Uuid, std::int32_t>, std::pair<std::int64_t, std::int64_t>> usage;
  for (const auto& p : g.points) {
    if (!p.inserted) continue;
    const Entry& e = g.entries[p.entry];
    usage[{e.tenant_id, day_of(e.is_batch ? e.received_at : now)}].first++;
  }
  for (std::uint32_t i = 0; i < g.entries.size(); ++i)
    if (selected[i] && g.entries[i].is_batch)
      usage[{g.entries[i].tenant_id, day_of(g.entries[i].received_at)}].second++;
  if (!usage.empty()) {
    ArrayText tids, days, pts, bts;
    for (const auto& [k, v] : usage) {
      tids.add_raw(k.first.str());
      days.add_raw(format_date(k.second));
      pts.add_raw(std::to_string(v.first));
      bts.add_raw(std::to_string(v.second));
    }
    EP_RETURN_IF_ERROR(conn_.run(
        "INSERT INTO usage_daily AS u (tenant_id, day, points_ingested, batches)"
        " SELECT * FROM unnest($1::uuid[], $2::date[], $3::int8[], $4::int8[])"
        " ON CONFLICT (tenant_id, day) DO UPDATE SET points_ingested = u.points_ingested + EXCLUDED.points_ingested,"
        " batches = u.batches + EXCLUDED.batches",
        {tids.str(), days.str(), pts.str(), bts.str()}));
  }

  if (g.before_commit) EP_RETURN_IF_ERROR(g.before_commit(conn_));
  EP_RETURN_IF_ERROR(hook("before_commit"));
  commit_sent = true;
  if (Status s = hook("commit_lost"); !s) {
    conn_ = pg::Conn();  // the connection dies with COMMIT unsent: server aborts
    return s;
  }
  EP_RETURN_IF_ERROR(conn_.commit());
  if (Status s = hook("after_commit"); !s) {
    conn_ = pg::Conn();  // committed, but the client never heard back
    return s;
  }
  commit_sent = false;
  return Status::ok();
}

Status Writer::lock_rollups(const Group& g, std::map<Uuid, std::int64_t>& cutoffs) {
  std::set<Uuid> tenants;
  for (const auto& e : g.entries)
    if (!e.rejected) tenants.insert(e.tenant_id);
  if (tenants.empty()) return Status::ok();
  ArrayText ids;
  for (const auto& t : tenants) ids.add_raw(t.str());
  auto r = conn_.exec(
      "SELECT t.tenant_id, pg_advisory_xact_lock_shared($2::int, hashtext(t.tenant_id::text)),"
      " (extract(epoch FROM now() - make_interval(days => p.retention_days)) * 1000000)::int8"
      " FROM tenants t JOIN plans p ON p.name = t.plan WHERE t.tenant_id = ANY($1::uuid[]) ORDER BY t.tenant_id",
      {ids.str(), schema::kRollupLockClass});
  if (!r) return r.status();
  for (int i = 0; i < r->size(); ++i) cutoffs[uuid_or_zero(r->get(i, 0))] = r->get_int(i, 2);
  return Status::ok();
}

// Only points this transaction inserted count, and only those within the tenant's raw
// retention: an older point may be one that retention removed from datapoints after it
// was counted (a replay of an old archive), and counting it again would double it.
Status Writer::update_rollups(const Group& g, const std::vector<Row>& rows,
                              const std::map<Uuid, std::int64_t>& cutoffs) {
  std::vector<RollupPoint> pts;
  pts.reserve(rows.size());
  auto cut = cutoffs.end();
  for (const Row& r : rows) {
    if (!g.points[r.point].inserted) continue;
    if (cut == cutoffs.end() || !(cut->first == r.tenant)) cut = cutoffs.find(r.tenant);
    if (cut == cutoffs.end() || r.ts_us < cut->second) continue;
    pts.push_back(RollupPoint{r.tenant, r.metric, r.ts_us, r.value});
  }
  return write_rollups(conn_, aggregate(pts));
}

Result<Writer::Outcome> Writer::resolve_in_doubt(const std::string& txid, bool by_xact) {
  // The batches tell only whether *some* loader committed them; a group that carries
  // more (a --follow cursor) asks about its own transaction.
  if (!new_batches_.empty() && !(by_xact && !txid.empty())) {
    ArrayText tids, bids;
    for (const auto& k : new_batches_) {
      tids.add_raw(k.substr(0, 36));
      bids.add_raw(k.substr(37));
    }
    auto r = conn_.exec(
        "SELECT count(*) FROM ingest_batches b JOIN unnest($1::uuid[], $2::uuid[]) AS u(t, id)"
        " ON b.tenant_id = u.t AND b.batch_id = u.id WHERE b.status = 'loaded'",
        {tids.str(), bids.str()});
    if (!r) return r.status();
    auto n = static_cast<size_t>(r->get_int(0, 0));
    if (n == new_batches_.size()) return Outcome::kCommitted;
    if (n == 0) return Outcome::kNotCommitted;
    // Some were loaded by another loader since: ours did not commit; a redo skips them.
    return Outcome::kNotCommitted;
  }
  if (txid.empty()) return Outcome::kNotCommitted;
  auto r = conn_.exec("SELECT pg_xact_status($1::xid8)", {txid});
  if (!r) return r.status();
  auto st = r->opt(0, 0);
  if (st && *st == "committed") return Outcome::kCommitted;
  if (st && *st == "in progress")
    return Status::temporary("transaction " + txid + " still in progress after the connection was lost");
  return Outcome::kNotCommitted;
}

Status Writer::write(Group& g) {
  ++stats_.groups;
  bool resolved = false, commit_sent = false;
  std::string txid;
  Pending pend;
  Status s = pg::retry(
      policy(),
      [&](int attempt) -> Status {
        if (attempt > 1) ++stats_.retries;
        EP_RETURN_IF_ERROR(ensure_connected());
        if (commit_sent) {
          ++stats_.in_doubt;
          auto out = resolve_in_doubt(txid, static_cast<bool>(g.before_commit));
          if (!out) return out.status();
          commit_sent = false;
          if (*out == Outcome::kCommitted) {
            if (notice) notice("in-doubt COMMIT resolved: the transaction was committed");
            return Status::ok();
          }
          if (notice) notice("in-doubt COMMIT resolved: not committed; loading the group again");
        }
        if (!resolved) {
          EP_RETURN_IF_ERROR(resolve(g));
          resolved = true;
        }
        Status r = load_once(g, pend, commit_sent, txid);
        if (!r) {
          if (conn_.connected()) {
            commit_sent = false;  // the server answered: the transaction is not committed
            if (conn_.in_transaction()) (void)conn_.rollback();
          }
        }
        return r;
      },
      hooks());
  if (!s) {
    for (auto& p : g.points) p.inserted = false;
    return s;
  }
  ++stats_.transactions;
  stats_.batches_loaded += pend.batches_loaded;
  stats_.batches_skipped += pend.batches_skipped;
  stats_.points_inserted += pend.points_inserted;
  stats_.points_skipped += pend.points_skipped;
  stats_.staging_fallbacks += pend.staging_fallbacks;
  return Status::ok();
}

}  // namespace ep::load
