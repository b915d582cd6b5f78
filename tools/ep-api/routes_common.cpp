// Helpers every route uses: typed query parameters, cursors, uuids, page JSON.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "ep/crypto.h"
#include "routes.h"

namespace ep::api {

std::optional<std::string> q_str(const Ctx& c, const char* name) {
  auto it = c.query.find(name);
  if (it == c.query.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

Status q_only(const Ctx& c, std::initializer_list<const char*> known) {
  for (const auto& [k, v] : c.query) {
    bool ok = false;
    for (const char* n : known) ok = ok || k == n;
    if (!ok) return Status::usage(k + ": unknown query parameter");
  }
  return Status::ok();
}

bool is_uuid(std::string_view s) {
  unsigned char b[16];
  return s.size() == 36 && pg::parse_uuid(s, b);
}

Status path_uuid(const std::string& id, const char* what) {
  if (!is_uuid(id)) return Status::not_found(std::string(what) + " " + id + " not found");
  return Status::ok();
}

Result<std::optional<std::string>> q_uuid(const Ctx& c, const char* name) {
  auto v = q_str(c, name);
  if (!v) return std::optional<std::string>();
  if (!is_uuid(*v)) return Status::usage(std::string(name) + ": not a UUID");
  return v;
}

Result<std::optional<TimeNs>> q_time(const Ctx& c, const char* name) {
  auto v = q_str(c, name);
  if (!v) return std::optional<TimeNs>();
  if (auto t = parse_rfc3339(*v)) return std::optional<TimeNs>(*t);
  // Relative: "24h" means now - 24h.
  if (auto d = parse_duration(*v)) return std::optional<TimeNs>(c.now - *d);
  return Status::usage(std::string(name) + ": not an RFC 3339 time or a duration");
}

Result<std::optional<double>> q_number(const Ctx& c, const char* name, double lo, double hi) {
  auto v = q_str(c, name);
  if (!v) return std::optional<double>();
  char* end = nullptr;
  double d = std::strtod(v->c_str(), &end);
  if (end == v->c_str() || *end != '\0' || !std::isfinite(d))
    return Status::usage(std::string(name) + ": not a number");
  if (d < lo || d > hi)
    return Status::usage(std::string(name) + ": out of range [" + std::to_string(lo) + ", " +
                         std::to_string(hi) + "]");
  return std::optional<double>(d);
}

Result<int> q_limit(const Ctx& c) {
  auto n = q_number(c, "limit", 1, c.opts.max_limit);
  if (!n) return n.status();
  if (!*n) return c.opts.default_limit;
  if (**n != std::floor(**n)) return Status::usage("limit: not an integer");
  return static_cast<int>(**n);
}

std::string encode_cursor(std::initializer_list<std::string> fields) {
  std::string joined;
  for (const auto& f : fields) {
    if (!joined.empty()) joined += '\n';
    joined += f;
  }
  std::string b = crypto::base64(joined);
  // URL-safe alphabet, no padding: the cursor goes into a query string as is.
  for (char& ch : b) ch = ch == '+' ? '-' : ch == '/' ? '_' : ch;
  while (!b.empty() && b.back() == '=') b.pop_back();
  return b;
}

Result<std::vector<std::string>> decode_cursor(std::string_view cursor, size_t nfields) {
  std::string b(cursor);
  for (char& ch : b) ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
  while (b.size() % 4) b += '=';
  auto raw = crypto::unbase64(b);
  if (!raw) return Status::usage("cursor: malformed");
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    auto nl = raw->find('\n', start);
    out.push_back(raw->substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  if (out.size() != nfields) return Status::usage("cursor: malformed");
  return out;
}

Response page_response(const pg::Rows& rows, int limit,
                       const std::function<void(JsonWriter&, int)>& item,
                       const std::function<std::string(int)>& cursor_of) {
  JsonWriter w;
  w.start_array();
  int n = std::min(rows.size(), limit);
  for (int i = 0; i < n; ++i) item(w, i);
  w.end_array();
  std::optional<std::string> next;
  if (rows.size() > limit) next = cursor_of(n - 1);
  return json_response(200, page_json(w.take(), next));
}

std::string page_json(const std::string& items_array, const std::optional<std::string>& next) {
  std::string out = "{\"items\":";
  out += items_array;
  out += ",\"next_cursor\":";
  if (next) {
    out += '"';
    out += *next;  // base64url: nothing to escape
    out += '"';
  } else {
    out += "null";
  }
  out += '}';
  return out;
}

}  // namespace ep::api
