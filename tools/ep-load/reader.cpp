#include "reader.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>

#include "ep/json.h"
#include "ep/pg.h"
#include "ep/records.h"

namespace ep::load {

std::string Uuid::str() const { return pg::format_uuid(b.data()); }

std::optional<Uuid> Uuid::parse(std::string_view s) {
  Uuid u;
  if (!pg::parse_uuid(s, u.b.data())) return std::nullopt;
  return u;
}

bool GroupQueue::push(Group&& g) {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return q_.size() < cap_ || closed_; });
  if (closed_) return false;
  q_.push_back(std::move(g));
  cv_.notify_all();
  return true;
}

bool GroupQueue::pop(Group& g) {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return !q_.empty() || finished_ || closed_; });
  if (q_.empty() || closed_) return false;
  g = std::move(q_.front());
  q_.pop_front();
  cv_.notify_all();
  return true;
}

void GroupQueue::finish() {
  std::lock_guard lk(mu_);
  finished_ = true;
  cv_.notify_all();
}

void GroupQueue::close() {
  std::lock_guard lk(mu_);
  closed_ = true;
  cv_.notify_all();
}

bool GroupQueue::closed() const {
  std::lock_guard lk(mu_);
  return closed_;
}

namespace {

Status check_point(std::string_view where, const std::string& metric, double value) {
  if (const char* why = metric_problem(metric); *why) return Status::data(std::string(where) + "metric: " + why);
  if (!std::isfinite(value)) return Status::data(std::string(where) + "value: not a finite number");
  return Status::ok();
}

}  // namespace

Status parse_line(std::string_view text, std::string_view stream, std::int64_t line, Group& g) {
  rapidjson::Document d;
  EP_RETURN_IF_ERROR(parse_json(text, d));
  if (!d.IsObject()) return Status::data("not a JSON object");
  Entry e;
  e.stream = std::string(stream);
  e.line = line;
  e.first = static_cast<std::uint32_t>(g.points.size());
  switch (kind_of(d)) {
    case Kind::kBatch: {
      Batch b;
      EP_RETURN_IF_ERROR(parse_record(d, b));
      if (!Uuid::parse(b.batch_id)) return Status::data("batch_id: not a UUID");
      if (!valid_tenant(b.tenant)) return Status::data(std::string("tenant: ") + kInvalidTenant);
      if (!valid_name(b.device)) return Status::data("device: not a valid name");
      for (size_t i = 0; i < b.points.size(); ++i)
        EP_RETURN_IF_ERROR(check_point("points[" + std::to_string(i) + "].", b.points[i].metric, b.points[i].value));
      e.is_batch = true;
      e.tenant = std::move(b.tenant);
      e.device = std::move(b.device);
      e.batch_id = std::move(b.batch_id);
      e.source = std::move(b.source);
      e.sha256 = std::move(b.sha256);
      e.archive = std::move(b.archive);
      e.received_at = b.received_at;
      std::uint32_t idx = static_cast<std::uint32_t>(g.entries.size());
      for (auto& p : b.points) {
        InPoint ip;
        ip.entry = idx;
        ip.metric = std::move(p.metric);
        ip.unit = std::move(p.unit);
        ip.ts = p.ts;
        ip.value = p.value;
        g.points.push_back(std::move(ip));
      }
      break;
    }
    case Kind::kPoint: {
      Point p;
      EP_RETURN_IF_ERROR(parse_record(d, p));
      if (!valid_tenant(p.tenant)) return Status::data(std::string("tenant: ") + kInvalidTenant);
      if (!valid_name(p.device)) return Status::data("device: not a valid name");
      EP_RETURN_IF_ERROR(check_point("", p.metric, p.value));
      e.tenant = std::move(p.tenant);
      e.device = std::move(p.device);
      e.batch_id = std::move(p.batch_id);
      InPoint ip;
      ip.entry = static_cast<std::uint32_t>(g.entries.size());
      ip.metric = std::move(p.metric);
      ip.unit = std::move(p.unit);
      ip.ts = p.ts;
      ip.value = p.value;
      g.points.push_back(std::move(ip));
      break;
    }
    default: {
      auto k = d.FindMember("kind");
      std::string name = (k != d.MemberEnd() && k->value.IsString()) ? k->value.GetString() : "";
      if (name.empty()) return Status::data("kind: missing (expected \"batch\" or \"point\")");
      return Status::data("kind: '" + name + "' is not loaded by ep-load (expected \"batch\" or \"point\")");
    }
  }
  e.count = static_cast<std::uint32_t>(g.points.size()) - e.first;
  g.entries.push_back(std::move(e));
  return Status::ok();
}

Status read_groups(const Options& o, LineReader& reader, GroupQueue& queue, Reporter& rep,
                   std::atomic<bool>& stop, ReadStats& stats) {
  Group g;
  TimeNs group_started = 0;
  bool from_stdin = o.inputs.empty() || (o.inputs.size() == 1 && o.inputs[0] == "-");
  bool queue_open = true;
  auto hand_over = [&] {
    if (g.empty() && g.lines == 0) return;
    if (!queue.push(std::move(g))) queue_open = false;
    g = Group();
    group_started = 0;
  };
  // Before a read that may block: if the input is idle, hand over the partial group
  // once it is --flush-interval old, so a trickle is loaded promptly.
  reader.set_before_read([&] {
    if (!from_stdin) return;
    for (;;) {
      if (stop.load()) {
        // Make the next read(2) see end of input instead of blocking on the pipe.
        int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull >= 0) {
          ::dup2(devnull, 0);
          ::close(devnull);
        }
        return;
      }
      int wait_ms = 250;
      if (!g.empty()) {
        TimeNs left = group_started + o.flush_interval - monotonic_ns();
        if (left <= 0) {
          hand_over();
          continue;
        }
        wait_ms = static_cast<int>(std::min<TimeNs>(left / kNsPerMs + 1, 250));
      }
      struct pollfd p{0, POLLIN, 0};
      int r = ::poll(&p, 1, wait_ms);
      if (r < 0 && errno == EINTR) continue;  // e.g. SIGTERM: look at `stop` again
      if (r != 0) return;  // readable, hung up, or error: let read() tell
    }
  });
  Line line;
  // On stdin, `stop` takes effect in the before-read hook (end of input at the next
  // read), so lines already read from the pipe are still loaded; files stop at once.
  while (queue_open && !(stop.load() && !from_stdin) && reader.next(line)) {
    ++stats.lines;
    ++g.lines;
    if (line.too_long) {
      ++stats.rejected;
      rep.reject(line.stream, line.number, "line longer than --max-line-bytes");
      if (o.strict) break;
      continue;
    }
    if (line.text.find_first_not_of(" \t") == std::string_view::npos) continue;
    size_t before_points = g.points.size();
    Status s = parse_line(line.text, line.stream, line.number, g);
    if (!s) {
      g.points.resize(before_points);
      ++stats.rejected;
      rep.reject(line.stream, line.number, s.message());
      if (o.strict) break;
      continue;
    }
    ++stats.records;
    if (g.entries.back().is_batch) ++stats.batches;
    stats.points += g.entries.back().count;
    if (group_started == 0) group_started = monotonic_ns();
    if (static_cast<std::int64_t>(g.entries.size()) >= o.batch_size ||
        static_cast<std::int64_t>(g.points.size()) >= o.max_points)
      hand_over();
  }
  if (queue_open) hand_over();
  queue.finish();
  return reader.status();
}

}  // namespace ep::load
