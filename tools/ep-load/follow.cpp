#include "follow.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "ep/http_server.h"
#include "ep/log.h"
#include "ep/segment_log.h"

namespace ep::load {
namespace {

constexpr std::uint64_t kHeader = seglog::kActiveMagic.size();
constexpr size_t kReadBlock = 1 << 20;

struct SegKey {
  std::string tenant;
  std::int64_t day = 0;
  std::string stem;
  auto operator<=>(const SegKey&) const = default;
};

// A consumer's position in one segment (a row of archive_cursors).
struct Cursor {
  std::uint64_t records = 0;  // good records consumed from the start of the segment
  std::uint64_t end = 0;      // active file: offset after the last consumed record (0 = not known)
  std::uint32_t crc = 0, size = 0;  // the last consumed record
  bool done = false;          // sealed and read to the end
};

struct Seg {
  SegmentFile file;
  Cursor at;  // committed
  // A stretch failing its checksum in an active file, first seen at gap_since.
  std::uint64_t gap_at = UINT64_MAX;
  TimeNs gap_since = 0;
  bool tail_reported = false;
};

// The bytes of an active segment from `from` up to its end: EOF, or the first block of
// zeros (the preallocated rest; records are contiguous from the header on).
Result<std::string> read_active(const std::string& path, std::uint64_t from) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return err == ENOENT ? Status::not_found(path + ": gone") : Status::io(path + ": " + std::strerror(err));
  }
  std::string out;
  std::string block(kReadBlock, '\0');
  for (std::uint64_t off = from;;) {
    ssize_t n = ::pread(fd, block.data(), block.size(), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Status::io(path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    std::string_view got(block.data(), static_cast<size_t>(n));
    bool zeros = got.find_first_not_of('\0') == std::string_view::npos;
    out.append(got);
    off += static_cast<std::uint64_t>(n);
    if (zeros) break;
  }
  ::close(fd);
  return out;
}

// Good records of a segment file past a position: how many, and the received_at of the
// first of them. Damage is not counted (it is never loaded).
struct Head {
  std::uint64_t records = 0;  // good records in the file
  TimeNs first_unconsumed = 0;
};
Status measure(const SegmentFile& f, const Cursor& at, Head& h) {
  seglog::Visitor v;
  std::uint64_t index = 0;
  v.problem = [](const seglog::Problem&) { return true; };
  v.record = [&](const seglog::Found& r) {
    if (index == at.records) h.first_unconsumed = r.batch.received_at;
    ++index;
    return true;
  };
  if (f.sealed) {
    EP_RETURN_IF_ERROR(seglog::scan_file(f.path, v));
  } else if (at.end > 0 && at.records > 0) {
    auto bytes = read_active(f.path, at.end);
    if (!bytes) return bytes.status();
    index = at.records;
    seglog::scan_active_range(*bytes, at.end, v);
  } else {
    auto bytes = read_active(f.path, 0);
    if (!bytes) return bytes.status();
    seglog::scan_bytes(*bytes, v);
  }
  h.records = index;
  return Status::ok();
}

class Follower {
 public:
  Follower(const Options& o, const FollowOptions& f, RunContext& ctx, Summary& sum, Archive& archive)
      : o_(o), f_(f), ctx_(ctx), sum_(sum), archive_(archive), writer_(o, *ctx.reporter) {
    writer_.notice = [this](const std::string& m) {
      {
        std::lock_guard lk(mu_);
        stats_.postgres_up = false;  // a retry: the last attempt failed
      }
      if (ctx_.notice) ctx_.notice(m);
    };
    writer_.fault = ctx.fault;
    writer_.cancelled = [this] { return stopping(); };
  }

  Status run();
  FollowStats snapshot() {
    std::lock_guard lk(mu_);
    return stats_;
  }

 private:
  bool stopping() const { return ctx_.stop->load(); }
  Status load_cursors();
  Status list();
  bool consume(Seg& s);  // false: stop this pass (a failed group, or stopping)
  bool scan(Seg& s, bool& rewound);
  bool flush(Seg& s, Group& g, const Cursor& to, bool advanced);
  void take(Seg& s, const seglog::Found& r, std::uint64_t index, Group& g);
  Status write_cursor(pg::Conn& c, const Seg& s, const Cursor& to, bool advanced);
  Status report(pg::Conn& c, bool advanced, std::uint64_t consuming);
  void measure_lag();
  void lag_loop();
  void wait(TimeNs d);

  const Options& o_;
  const FollowOptions& f_;
  RunContext& ctx_;
  Summary& sum_;
  Archive& archive_;
  Writer writer_;
  std::map<SegKey, Seg> segs_;
  TimeNs reported_at_ = 0;

  std::mutex mu_;  // stats_, cursors_ (shared with the lag thread and /metrics)
  FollowStats stats_;
  std::map<SegKey, Cursor> cursors_;  // committed positions, for the lag thread
};

Status Follower::load_cursors() {
  return writer_.with_conn([&](pg::Conn& c) -> Status {
    auto r = c.exec(
        "SELECT tenant, (day - DATE '1970-01-01')::int8, segment, records, byte_offset, last_crc, last_size, done"
        " FROM archive_cursors WHERE consumer = $1",
        {f_.consumer});
    if (!r) return r.status();
    for (int i = 0; i < r->size(); ++i) {
      SegKey k{r->str(i, 0), r->get_int(i, 1), r->str(i, 2)};
      Cursor cur;
      cur.records = static_cast<std::uint64_t>(r->get_int(i, 3));
      cur.end = static_cast<std::uint64_t>(r->get_int(i, 4));
      cur.crc = static_cast<std::uint32_t>(r->get_int(i, 5));
      cur.size = static_cast<std::uint32_t>(r->get_int(i, 6));
      cur.done = r->str(i, 7) == "t";
      segs_[k].at = cur;
    }
    return Status::ok();
  });
}

Status Follower::list() {
  ArchiveFilter filter;
  filter.tenant = f_.tenant;
  std::uint64_t n = 0, done = 0;
  Status st = archive_.segments(filter, [&](const SegmentFile& file) {
    Seg& s = segs_[SegKey{file.tenant, file.day, file.stem}];
    s.file = file;
    ++n;
    if (s.at.done) ++done;
    return true;
  });
  std::lock_guard lk(mu_);
  stats_.segments = n;
  stats_.segments_done = done;
  return st;
}

// One pass: every segment not done, in (tenant, day, stem) order, up to what is there.
Status Follower::run() {
  {
    Status s = writer_.open();
    if (!s) return stopping() ? Status::ok() : s;
  }
  if (Status s = load_cursors(); !s) return stopping() ? Status::ok() : s;
  {
    std::lock_guard lk(mu_);
    stats_.postgres_up = true;
    for (const auto& [k, s] : segs_) cursors_[k] = s.at;
  }
  std::thread lag([this] { lag_loop(); });
  Status result;
  while (!stopping()) {
    if (Status s = list(); !s) log::error(s);
    bool ok = true;
    for (auto& [k, s] : segs_) {
      if (s.at.done || s.file.path.empty()) continue;
      if (!consume(s)) {
        ok = false;
        break;
      }
    }
    if (stopping()) break;
    if (ok && monotonic_ns() - reported_at_ >= f_.report_interval) {
      Status s = writer_.with_conn([&](pg::Conn& c) { return report(c, false, 0); });
      if (s) {
        reported_at_ = monotonic_ns();
        std::lock_guard lk(mu_);
        stats_.postgres_up = true;
      }
    }
    wait(ok ? f_.poll_interval : std::max<TimeNs>(f_.poll_interval, kNsPerSec));
  }
  lag.join();
  sum_.write = writer_.stats();
  return result;
}

void Follower::wait(TimeNs d) {
  for (TimeNs left = d; left > 0 && !stopping(); left -= 50 * kNsPerMs)
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<TimeNs>(left, 50 * kNsPerMs)));
}

bool Follower::consume(Seg& s) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool rewound = false;
    bool ok = scan(s, rewound);
    if (!rewound) return ok;
    // The segment changed under us: read it again from its start.
    {
      std::lock_guard lk(mu_);
      stats_.rewinds++;
    }
    log::warn(s.file.rel_day + "/" + s.file.stem + ": the record at the cursor (record " +
              std::to_string(s.at.records) + ") is not the one consumed; reading the segment again from its start "
              "(batches already loaded are skipped)");
    s.at = Cursor{};
  }
  return true;
}

// Adds one record to the group (or reports why it cannot be loaded).
void Follower::take(Seg& s, const seglog::Found& r, std::uint64_t index, Group& g) {
  std::string stream = s.file.rel_day + "/" + s.file.stem + (s.file.sealed ? ".seg" : ".wal");
  ++g.lines;
  ++sum_.read.lines;
  auto reject = [&](const std::string& why) {
    ++sum_.read.rejected;
    ctx_.reporter->reject(stream, static_cast<std::int64_t>(index + 1), why);
    std::lock_guard lk(mu_);
    stats_.records_rejected++;
  };
  if (r.batch.tenant != s.file.tenant || day_of(r.batch.received_at) != s.file.day)
    return reject("tenant or day does not match the directory " + s.file.rel_day);
  size_t before = g.points.size();
  Status p = parse_line(r.batch.line, stream, static_cast<std::int64_t>(index + 1), g);
  if (!p) {
    g.points.resize(before);
    return reject(p.message());
  }
  if (g.entries.back().tenant != s.file.tenant) {
    std::string tenant = g.entries.back().tenant;
    g.entries.pop_back();
    g.points.resize(before);
    return reject("tenant: '" + tenant + "' in a segment of tenant '" + s.file.tenant + "'");
  }
  ++sum_.read.records;
  if (g.entries.back().is_batch) ++sum_.read.batches;
  sum_.read.points += g.entries.back().count;
}

bool Follower::scan(Seg& s, bool& rewound) {
  const bool sealed = s.file.sealed;
  const std::string where = s.file.rel_day + "/" + s.file.stem + (sealed ? ".seg" : ".wal");
  // Where to start: an active file at the last consumed record (checked), else the start.
  const bool from_record = !sealed && s.at.end > 0 && s.at.records > 0 && s.at.end >= s.at.size;
  std::uint64_t from = from_record ? s.at.end - s.at.size : 0;
  std::uint64_t index = from_record ? s.at.records - 1 : 0;
  Cursor pending = s.at;
  Group g;
  bool ok = true, stopped_early = false;
  const TimeNs now = monotonic_ns();
  seglog::Visitor v;
  v.record = [&](const seglog::Found& r) {
    if (index < s.at.records) {
      if (index + 1 == s.at.records && (r.crc != s.at.crc || (from_record && r.offset != from))) {
        rewound = true;
        return false;
      }
      ++index;
      return true;
    }
    take(s, r, index, g);
    ++index;
    pending.records = index;
    pending.end = sealed ? 0 : r.offset + r.size;
    pending.crc = r.crc;
    pending.size = r.size;
    if (static_cast<std::int64_t>(g.entries.size()) >= o_.batch_size ||
        static_cast<std::int64_t>(g.points.size()) >= o_.max_points) {
      if (!flush(s, g, pending, true)) return ok = false;
      g = Group();
    }
    return !stopping();
  };
  v.problem = [&](const seglog::Problem& p) {
    if (index < s.at.records) return true;  // before the cursor: consumed past it already
    if (sealed) {
      log::emit(log::Level::kError, where + "@" + std::to_string(p.offset),
                "skipped, never loaded" + (p.batch_id.empty() ? std::string() : " (batch " + p.batch_id + ")") +
                    ": " + p.reason,
                -1, Code::kData);
      std::lock_guard lk(mu_);
      stats_.records_damaged++;
      return true;
    }
    if (p.torn) {
      // A group being written, or a tail a crash cut: wait (the writer's recovery or a
      // seal removes it); say so once if it stays.
      if (s.gap_at != p.offset) {
        s.gap_at = p.offset;
        s.gap_since = now;
        s.tail_reported = false;
      } else if (!s.tail_reported && now - s.gap_since >= 10 * f_.damage_confirm) {
        s.tail_reported = true;
        log::warn(where + "@" + std::to_string(p.offset) + ": " + p.reason +
                  "; not loaded, waiting for the writer to complete or cut it");
      }
      stopped_early = true;
      return false;
    }
    if (s.gap_at != p.offset) {
      s.gap_at = p.offset;
      s.gap_since = now;
      stopped_early = true;
      return false;  // maybe a group in the middle of its write: look again later
    }
    if (now - s.gap_since < f_.damage_confirm) {
      stopped_early = true;
      return false;
    }
    log::emit(log::Level::kError, where + "@" + std::to_string(p.offset), "skipped, never loaded: " + p.reason, -1,
              Code::kData);
    s.gap_at = UINT64_MAX;
    std::lock_guard lk(mu_);
    stats_.records_damaged++;
    return true;
  };
  Status st;
  if (sealed) {
    st = seglog::scan_file(s.file.path, v);
  } else {
    auto bytes = read_active(s.file.path, from);
    if (!bytes) st = bytes.status();
    else if (from == 0) seglog::scan_bytes(*bytes, v);
    else seglog::scan_active_range(*bytes, from, v);
  }
  if (!st) {
    // Sealed or pruned between listing and reading: the next pass lists it again.
    if (st.code() != Code::kNotFound && ::access(s.file.path.c_str(), F_OK) == 0) log::error(st);
    s.file.path.clear();
    return ok;
  }
  if (rewound || !ok) return ok;
  if (!stopped_early && !stopping() && index < s.at.records) {
    // The file holds fewer good records than the cursor counts.
    rewound = true;
    return true;
  }
  pending.done = sealed && !stopped_early && !stopping();
  if (g.entries.empty() && g.lines == 0 && pending.done == s.at.done && pending.records == s.at.records) return true;
  return flush(s, g, pending, pending.records != s.at.records);
}

// Loads the group and moves the segment's cursor to `to` in the same transaction.
bool Follower::flush(Seg& s, Group& g, const Cursor& to, bool advanced) {
  const SegKey key{s.file.tenant, s.file.day, s.file.stem};
  g.before_commit = [&](pg::Conn& c) -> Status {
    EP_RETURN_IF_ERROR(write_cursor(c, s, to, advanced));
    return report(c, advanced, to.records - std::min(to.records, s.at.records));
  };
  const WriteStats before = writer_.stats();
  Status st = writer_.write(g);
  const WriteStats& after = writer_.stats();
  std::lock_guard lk(mu_);
  stats_.retries = after.retries;
  if (!st) {
    stats_.postgres_up = false;
    if (!stopping()) log::error(st.with_context("loading " + s.file.rel_day + "/" + s.file.stem));
    return false;
  }
  stats_.postgres_up = true;
  stats_.commits++;
  stats_.batches_loaded += after.batches_loaded - before.batches_loaded;
  stats_.batches_skipped += after.batches_skipped - before.batches_skipped;
  stats_.points_loaded += after.points_inserted - before.points_inserted;
  s.at = to;
  cursors_[key] = to;
  if (to.done) stats_.segments_done++;
  reported_at_ = monotonic_ns();
  return true;
}

Status Follower::write_cursor(pg::Conn& c, const Seg& s, const Cursor& to, bool advanced) {
  (void)advanced;
  return c.run(
      "INSERT INTO archive_cursors (consumer, tenant, day, segment, records, byte_offset, last_crc, last_size, done)"
      " VALUES ($1, $2, $3::date, $4, $5, $6, $7, $8, $9)"
      " ON CONFLICT (consumer, tenant, day, segment) DO UPDATE SET records = EXCLUDED.records,"
      " byte_offset = EXCLUDED.byte_offset, last_crc = EXCLUDED.last_crc, last_size = EXCLUDED.last_size,"
      " done = EXCLUDED.done, updated_at = now()",
      {f_.consumer, s.file.tenant, format_date(s.file.day), s.file.stem, static_cast<std::int64_t>(to.records),
       static_cast<std::int64_t>(to.end), static_cast<std::int64_t>(to.crc), static_cast<std::int64_t>(to.size),
       to.done});
}

Status Follower::report(pg::Conn& c, bool advanced, std::uint64_t consuming) {
  FollowStats st = snapshot();
  st.lag_batches -= std::min(st.lag_batches, consuming);  // as it will be once this commits
  if (st.lag_batches == 0) st.lag_seconds = 0;
  return c.run(
      "INSERT INTO archive_consumers AS a (consumer, archive, tenant, lag_batches, lag_seconds, head_batches,"
      " loaded_batches, advanced_at, reported_at)"
      " VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $8 THEN now() END, now())"
      " ON CONFLICT (consumer) DO UPDATE SET archive = EXCLUDED.archive, tenant = EXCLUDED.tenant,"
      " lag_batches = EXCLUDED.lag_batches, lag_seconds = EXCLUDED.lag_seconds,"
      " head_batches = EXCLUDED.head_batches, loaded_batches = EXCLUDED.loaded_batches,"
      " advanced_at = CASE WHEN $8 THEN now() ELSE a.advanced_at END, reported_at = now()",
      {f_.consumer, archive_.uri(), f_.tenant, static_cast<std::int64_t>(st.lag_batches), st.lag_seconds,
       static_cast<std::int64_t>(st.head_batches), static_cast<std::int64_t>(st.batches_loaded), advanced});
}

// The head of the log against the committed cursors: batches not yet consumed, and the
// age of the oldest of them. Runs on its own thread, so the lag keeps growing on
// /metrics while the loader waits for Postgres.
void Follower::measure_lag() {
  ArchiveFilter filter;
  filter.tenant = f_.tenant;
  std::map<SegKey, Cursor> cursors;
  {
    std::lock_guard lk(mu_);
    cursors = cursors_;
  }
  std::uint64_t lag = 0, head = 0;
  TimeNs oldest = 0;
  bool ok = true;
  Status st = archive_.segments(filter, [&](const SegmentFile& file) {
    auto it = cursors.find(SegKey{file.tenant, file.day, file.stem});
    Cursor at = it == cursors.end() ? Cursor{} : it->second;
    if (at.done) {
      head += at.records;
      return !stopping();
    }
    Head h;
    Status m = measure(file, at, h);
    if (!m) {
      if (::access(file.path.c_str(), F_OK) == 0) ok = false;  // else sealed meanwhile: next time
      return !stopping();
    }
    head += h.records;
    if (h.records > at.records) {
      lag += h.records - at.records;
      if (h.first_unconsumed != 0 && (oldest == 0 || h.first_unconsumed < oldest)) oldest = h.first_unconsumed;
    }
    return !stopping();
  });
  if (!st || !ok) return;
  std::lock_guard lk(mu_);
  stats_.lag_batches = lag;
  stats_.head_batches = head;
  stats_.lag_known = true;
  stats_.lag_seconds = lag == 0 || oldest == 0 ? 0.0 : std::max<double>(0.0, static_cast<double>(now_ns() - oldest) / 1e9);
}

void Follower::lag_loop() {
  while (!stopping()) {
    measure_lag();
    wait(f_.lag_interval);
  }
}

void metric(std::string& out, const char* name, const char* help, const char* type, const std::string& consumer,
           double v) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  out += std::string(name) + "{consumer=\"" + consumer + "\"} " + buf + "\n";
}

std::string label_escape(std::string_view s) {
  std::string o;
  for (char ch : s) {
    if (ch == '\\' || ch == '"') o += '\\';
    if (ch == '\n') {
      o += "\\n";
      continue;
    }
    o += ch;
  }
  return o;
}

}  // namespace

void render_follow_metrics(const FollowStats& st, const std::string& consumer, std::string& out) {
  const std::string c = label_escape(consumer);
  auto d = [](std::uint64_t v) { return static_cast<double>(v); };
  metric(out, "ep_load_follow_lag_batches", "Batches in the archive log this consumer has not loaded yet.", "gauge", c,
        d(st.lag_batches));
  metric(out, "ep_load_follow_lag_seconds", "Age of the oldest batch in the log this consumer has not loaded (0 when none).",
        "gauge", c, st.lag_seconds);
  metric(out, "ep_load_follow_head_batches", "Good batch records in the followed log.", "gauge", c, d(st.head_batches));
  metric(out, "ep_load_follow_lag_known", "1 once the head of the log has been measured.", "gauge", c,
        st.lag_known ? 1 : 0);
  metric(out, "ep_load_follow_batches_loaded_total", "Batches loaded into Postgres.", "counter", c,
        d(st.batches_loaded));
  metric(out, "ep_load_follow_batches_skipped_total", "Batches read that were already loaded.", "counter", c,
        d(st.batches_skipped));
  metric(out, "ep_load_follow_points_loaded_total", "Points inserted into datapoints.", "counter", c,
        d(st.points_loaded));
  metric(out, "ep_load_follow_records_damaged_total", "Damaged records reported and skipped.", "counter", c,
        d(st.records_damaged));
  metric(out, "ep_load_follow_records_rejected_total", "Records rejected (bad record, unknown tenant).", "counter", c,
        d(st.records_rejected));
  metric(out, "ep_load_follow_rewinds_total", "Segments read again from their start (the record at the cursor changed).",
        "counter", c, d(st.rewinds));
  metric(out, "ep_load_follow_commits_total", "Transactions committed (rows and cursor together).", "counter", c,
        d(st.commits));
  metric(out, "ep_load_follow_retries_total", "Postgres attempts retried.", "counter", c, d(st.retries));
  metric(out, "ep_load_follow_segments", "Segment files in the followed log.", "gauge", c, d(st.segments));
  metric(out, "ep_load_follow_segments_done", "Sealed segments read to the end.", "gauge", c, d(st.segments_done));
  metric(out, "ep_load_follow_postgres_up", "1 when the last transaction committed, 0 while Postgres fails.", "gauge", c,
        st.postgres_up ? 1 : 0);
}

Status follow(const Options& o, const FollowOptions& f, RunContext& ctx, Summary& summary) {
  ArchiveOptions ao;
  ao.create = false;
  auto archive = Archive::open(f.archive, ao);
  if (!archive) return archive.status().with_context("--follow");
  if ((*archive)->format() != 2)
    return Status::usage("--follow " + f.archive + ": not a segment log (archive format 2; see ep-archive compact)");
  Follower follower(o, f, ctx, summary, **archive);

  std::unique_ptr<http::Server> server;
  std::thread server_thread;
  http::Server* srv = nullptr;  // for the handler, which outlives this block
  if (!f.metrics_listen.empty()) {
    http::ServerOptions so;
    so.listen = f.metrics_listen;
    so.max_body_bytes = 0;
    auto s = http::Server::listen(so, [&](http::Request&& req, http::Respond respond) {
      namespace bhttp = boost::beast::http;
      if (req.target() != "/metrics") {
        respond(http::json_error(req, 404, "not_found", "no such endpoint: " + std::string(req.target())));
        return;
      }
      if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
        respond(http::json_error(req, 405, "method_not_allowed", "use GET"));
        return;
      }
      http::Response res{bhttp::status::ok, req.version()};
      res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res.keep_alive(req.keep_alive());
      std::string body;
      render_follow_metrics(follower.snapshot(), f.consumer, body);
      if (srv) http::render_metrics(srv->stats(), "ep_load_http", body);
      res.body() = std::move(body);
      res.prepare_payload();
      respond(std::move(res));
    });
    if (!s) return s.status().with_context("--metrics-listen");
    server = std::move(*s);
    srv = server.get();
    server_thread = std::thread([&] { server->run(); });
    log::info("metrics on " + server->url() + "/metrics");
  }
  log::info("following " + (*archive)->uri() + " as consumer '" + f.consumer + "'" +
            (f.tenant.empty() ? "" : " (tenant " + f.tenant + ")"));
  Status st = follower.run();
  if (server) {
    server->stop();
    server_thread.join();
  }
  return st;
}

}  // namespace ep::load
