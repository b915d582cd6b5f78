// Archive: URI dispatch, the object key layout shared by the backends, put validation.
#include "ep/archive.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "archive_internal.h"
#include "ep/records.h"

namespace ep {
namespace archive_detail {
namespace {
void append_2(std::string& out, unsigned v) {
  out.push_back(static_cast<char>('0' + v / 10));
  out.push_back(static_cast<char>('0' + v % 10));
}
bool all_digits(std::string_view s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}
unsigned to_uint(std::string_view s) {
  unsigned v = 0;
  for (char c : s) v = v * 10 + static_cast<unsigned>(c - '0');
  return v;
}
bool valid_batch_id(std::string_view s) {
  if (s.empty() || s.size() > 64 || s.front() == '-') return false;
  for (char c : s) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}
}  // namespace

std::string day_prefix(std::string_view tenant, TimeNs received_at) {
  std::int64_t y;
  unsigned m, d;
  civil_from_days(day_of(received_at), y, m, d);
  std::string out;
  out.reserve(tenant.size() + 12);
  out.append(tenant);
  char year[16];
  std::snprintf(year, sizeof year, "/%04lld/", static_cast<long long>(y));
  out.append(year);
  append_2(out, m);
  out.push_back('/');
  append_2(out, d);
  out.push_back('/');
  return out;
}

std::string object_key(std::string_view tenant, TimeNs received_at, std::string_view batch_id) {
  std::string key = day_prefix(tenant, received_at);
  key.append(batch_id);
  key.append(".json");
  return key;
}

std::optional<KeyParts> parse_key(std::string_view key) {
  // tenant / yyyy / mm / dd / id.json — the tenant itself never contains '/'.
  std::string_view parts[5];
  size_t n = 0, start = 0;
  for (size_t i = 0; i <= key.size(); ++i) {
    if (i == key.size() || key[i] == '/') {
      if (n == 5) return std::nullopt;
      parts[n++] = key.substr(start, i - start);
      start = i + 1;
    }
  }
  if (n != 5) return std::nullopt;
  if (!all_digits(parts[1], 4) || !all_digits(parts[2], 2) || !all_digits(parts[3], 2))
    return std::nullopt;
  std::string_view file = parts[4];
  if (file.size() <= 5 || file.substr(file.size() - 5) != ".json") return std::nullopt;
  std::string_view id = file.substr(0, file.size() - 5);
  if (!valid_batch_id(id) || parts[0].empty() || parts[0].front() == '.') return std::nullopt;
  unsigned y = to_uint(parts[1]), m = to_uint(parts[2]), d = to_uint(parts[3]);
  // Days whose start is representable as TimeNs (int64 ns: up to 2262-04-11).
  if (y < 1970 || y > 2261 || m < 1 || m > 12 || d < 1 || d > 31) return std::nullopt;
  KeyParts kp;
  kp.tenant = std::string(parts[0]);
  kp.batch_id = std::string(id);
  kp.day = days_from_civil(y, m, d);
  std::int64_t cy;
  unsigned cm, cd;
  civil_from_days(kp.day, cy, cm, cd);
  if (cm != m || cd != d) return std::nullopt;  // 2026/02/31 is not a day
  return kp;
}

std::string list_start_after(const ArchiveFilter& f) {
  if (f.tenant.empty() || f.from == INT64_MIN) return {};
  std::string day = day_prefix(f.tenant, std::max<TimeNs>(f.from, 0));
  day.pop_back();
  return day;
}

bool day_matches(std::int64_t day, const ArchiveFilter& f) {
  TimeNs start = day_start(day);
  TimeNs last = start + (kNsPerDay - 1);
  return start <= f.to && last >= f.from;
}

Status validate_put(const ArchivePut& p) {
  if (!valid_tenant(p.tenant))
    return Status::data(std::string("tenant: ") + kInvalidTenant + ": \"" + p.tenant + "\"");
  if (!valid_batch_id(p.batch_id))
    return Status::data("batch_id: not a valid batch id: \"" + p.batch_id + "\"");
  if (p.bytes.empty()) return Status::data("batch " + p.batch_id + ": empty object");
  std::int64_t y;
  unsigned m, d;
  civil_from_days(day_of(p.received_at), y, m, d);
  if (y < 1970) return Status::data("received_at: before 1970, out of range for the archive");
  // parse_key reads years up to 2261 (days whose start is a TimeNs): a later object
  // could be written but never listed, replayed or pruned.
  if (y > 2261) return Status::data("received_at: after 2261, out of range for the archive");
  return Status::ok();
}

std::string object_bytes(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + 1);
  out.append(bytes);
  if (out.empty() || out.back() != '\n') out.push_back('\n');
  return out;
}

}  // namespace archive_detail

Result<std::unique_ptr<Archive>> Archive::open(const std::string& uri, const ArchiveOptions& opts) {
  constexpr std::string_view kFile = "file://", kS3 = "s3://";
  std::string_view u = uri;
  if (u.starts_with(kFile)) {
    std::string root(u.substr(kFile.size()));
    if (root.empty() || root.front() != '/')
      return Status::usage("--archive " + uri + ": a file:// URI needs an absolute path (file:///var/lib/...)");
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    return archive_detail::open_file("file://" + root, root, opts);
  }
  if (u.starts_with(kS3)) {
    std::string_view rest = u.substr(kS3.size());
    size_t slash = rest.find('/');
    std::string bucket(rest.substr(0, slash));
    std::string prefix(slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1));
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    if (bucket.empty()) return Status::usage("--archive " + uri + ": no bucket in s3://bucket/prefix");
    std::string norm = "s3://" + bucket + (prefix.empty() ? "" : "/" + prefix);
    return archive_detail::open_s3(norm, bucket, prefix, opts);
  }
  return Status::usage("--archive " + uri + ": unsupported URI (use file:///path or s3://bucket/prefix)");
}

Result<std::string> Archive::put(const ArchivePut& p) {
  std::vector<Result<std::string>> out;
  EP_RETURN_IF_ERROR(put_many(std::span<const ArchivePut>(&p, 1), out));
  if (out.empty()) return Status::software("archive put: no result");
  return std::move(out.front());
}

Status Archive::scan(const ArchiveFilter& f, const ScanFn& fn) {
  Status fatal;
  Status st = list(f, [&](const ArchiveObject& o) {
    auto bytes = get(o);
    if (bytes) return fn(o, *bytes, Status::ok());
    if (bytes.status().code() == Code::kNotFound) return true;  // removed meanwhile
    if (bytes.status().code() != Code::kData) {
      fatal = bytes.status();
      return false;
    }
    return fn(o, {}, bytes.status());
  });
  if (!st) return st;
  return fatal;
}

ArchiveObject Archive::locate(const std::string& tenant, const std::string& batch_id,
                              TimeNs received_at) const {
  ArchiveObject o;
  o.tenant = tenant;
  o.batch_id = batch_id;
  o.received_at = received_at;
  o.key = archive_detail::object_key(tenant, received_at, batch_id);
  o.uri = uri() + "/" + o.key;
  return o;
}

}  // namespace ep
