#include "text_formats.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>

#include "ep/records.h"
#include "ep/time.h"
#include "payload.h"

namespace ep::ingest {

namespace {

Status unreadable(const char* format, size_t column, std::string_view why) {
  return Status::data(std::string(format) + ": column " + std::to_string(column) + ": " + std::string(why));
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

// A whole token as a finite or infinite double ("NaN", "+Inf" for Prometheus).
bool to_double(std::string_view s, double& v) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

// A finite number that is a plain decimal (no inf/nan words).
bool to_number(std::string_view s, double& v) {
  if (s.empty()) return false;
  char c = s.front() == '-' || s.front() == '+' ? (s.size() > 1 ? s[1] : 'x') : s.front();
  if (!((c >= '0' && c <= '9') || c == '.')) return false;
  return to_double(s, v) && std::isfinite(v);
}

// Appends s to out without the backslashes that escape one of `specials` (a backslash
// before anything else stays).
std::string_view unescape(std::string_view s, std::string_view specials, std::string& out) {
  if (s.find('\\') == std::string_view::npos) return s;
  size_t start = out.size();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && specials.find(s[i + 1]) != std::string_view::npos) ++i;
    out += s[i];
  }
  return std::string_view(out).substr(start);
}

// Characters that end Influx tokens: bit 1 ',' and ' ' (measurement, tag values), bit 2
// also '=' (keys).
constexpr std::uint8_t kStopValue = 1, kStopKey = 2;
constexpr auto kStops = [] {
  std::array<std::uint8_t, 256> t{};
  t[','] = t[' '] = kStopValue | kStopKey;
  t['='] = kStopKey;
  return t;
}();

// From i, the end of a token ended by an unescaped stop character of class `stops`.
size_t token_end(std::string_view line, size_t i, std::uint8_t stops) {
  while (i < line.size()) {
    char c = line[i];
    if (c == '\\' && i + 1 < line.size()) {
      i += 2;
      continue;
    }
    if (kStops[static_cast<unsigned char>(c)] & stops) return i;
    ++i;
  }
  return i;
}

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == ':' || c == '/' || c == '-';
}

// Appends s with every character a name may not hold replaced by '_' (as Telegraf's
// Prometheus output does).
void append_sanitized(std::string& out, std::string_view s) {
  for (char c : s) out += name_char(c) ? c : '_';
}

// s sanitized; a copy in out only when something changes.
std::string_view sanitized(std::string_view s, std::string& out) {
  if (std::all_of(s.begin(), s.end(), name_char)) return s;
  size_t start = out.size();
  append_sanitized(out, s);
  return std::string_view(out).substr(start);
}

}  // namespace

bool epoch_to_ns(std::string_view s, TimeUnit unit, TimeNs& out) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return false;
  auto ns = ep::epoch_to_ns(v, unit);
  if (ns) out = *ns;
  return ns.has_value();
}

// ---- Influx line protocol

namespace {

struct InfluxField {
  std::string_view key;
  double value;
};

bool influx_bool(std::string_view v) {
  return v == "t" || v == "T" || v == "true" || v == "True" || v == "TRUE" || v == "f" || v == "F" ||
         v == "false" || v == "False" || v == "FALSE";
}

// One field value at line[i…end): a number (float, 12i, 12u), or a boolean (skipped:
// `numeric` false). Returns "" or the reason.
const char* influx_value(std::string_view v, double& out, bool& numeric) {
  numeric = false;
  if (v.empty()) return "missing field value";
  if (influx_bool(v)) return "";
  char last = v.back();
  if (last == 'i' || last == 'u') {
    std::string_view digits = v.substr(0, v.size() - 1);
    if (last == 'i') {
      std::int64_t x = 0;
      auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), x);
      if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size())
        return "invalid integer field value";
      out = static_cast<double>(x);
    } else {
      std::uint64_t x = 0;
      auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), x);
      if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size())
        return "invalid unsigned field value";
      out = static_cast<double>(x);
    }
    numeric = true;
    return "";
  }
  if (!to_number(v, out)) return "invalid field value (not a number, 12i, 12u, boolean or \"string\")";
  numeric = true;
  return "";
}

}  // namespace

Status parse_influx_line(std::string_view line, TimeUnit precision, SampleSink& sink) {
  constexpr const char* kF = "influx line protocol";
  thread_local std::string store;
  thread_local std::vector<Label> tags;
  thread_local std::vector<InfluxField> fields;
  thread_local std::string name;
  store.clear();
  store.reserve(2 * line.size());  // unescaped and sanitized copies: views stay valid
  tags.clear();
  fields.clear();
  size_t i = 0;
  while (i < line.size() && is_space(line[i])) ++i;
  if (i == line.size() || line[i] == '#') return Status::ok();
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t m_end = token_end(line, i, kStopValue);
  if (m_end == i) return unreadable(kF, i + 1, "missing measurement");
  std::string_view measurement = unescape(line.substr(i, m_end - i), ", \\", store);
  i = m_end;
  while (i < line.size() && line[i] == ',') {
    size_t k = i + 1, k_end = token_end(line, k, kStopKey);
    if (k_end == k) return unreadable(kF, k + 1, "missing tag key");
    if (k_end == line.size() || line[k_end] != '=') return unreadable(kF, k_end + 1, "missing tag value (expected '=')");
    size_t v = k_end + 1, v_end = token_end(line, v, kStopValue);
    if (v_end == v) return unreadable(kF, v + 1, "missing tag value");
    std::string_view key = sanitized(unescape(line.substr(k, k_end - k), ",= \\", store), store);
    std::string_view value = unescape(line.substr(v, v_end - v), ",= \\", store);
    tags.push_back(Label{key, value});
    i = v_end;
  }
  if (i == line.size()) return unreadable(kF, i + 1, "missing fields");
  while (i < line.size() && line[i] == ' ') ++i;
  if (i == line.size()) return unreadable(kF, i + 1, "missing fields");
  for (;;) {
    size_t k = i, k_end = token_end(line, k, kStopKey);
    if (k_end == k) return unreadable(kF, k + 1, "missing field key");
    if (k_end == line.size() || line[k_end] != '=') return unreadable(kF, k_end + 1, "missing field value (expected '=')");
    std::string_view key = unescape(line.substr(k, k_end - k), ",= \\", store);
    size_t v = k_end + 1;
    if (v < line.size() && line[v] == '"') {  // a string field: skipped
      size_t e = v + 1;
      while (e < line.size() && line[e] != '"') e += line[e] == '\\' ? 2 : 1;
      if (e >= line.size()) return unreadable(kF, v + 1, "unterminated string field value");
      i = e + 1;
    } else {
      size_t v_end = token_end(line, v, kStopValue);
      double value = 0;
      bool numeric = false;
      if (const char* why = influx_value(line.substr(v, v_end - v), value, numeric); *why)
        return unreadable(kF, v + 1, why);
      if (numeric) fields.push_back(InfluxField{key, value});
      i = v_end;
    }
    if (i == line.size() || line[i] == ' ') break;
    if (line[i] != ',') return unreadable(kF, i + 1, "expected ',' or ' ' after a field");
    ++i;
  }
  TimeNs ts = sink.now();
  while (i < line.size() && is_space(line[i])) ++i;
  if (i < line.size()) {
    size_t t_end = i;
    while (t_end < line.size() && !is_space(line[t_end])) ++t_end;
    if (!epoch_to_ns(line.substr(i, t_end - i), precision, ts))
      return unreadable(kF, i + 1, "invalid timestamp (an integer in the request's precision)");
    size_t rest = t_end;
    while (rest < line.size() && is_space(line[rest])) ++rest;
    if (rest != line.size()) return unreadable(kF, rest + 1, "text after the timestamp");
  }
  for (const auto& f : fields) {
    name.clear();
    append_sanitized(name, measurement);
    name += '_';
    append_sanitized(name, f.key);
    sink.add(name, tags, ts, f.value);
  }
  return Status::ok();
}

void parse_influx_body(std::string_view body, TimeUnit precision, SampleSink& sink) {
  size_t number = 0;
  while (!body.empty()) {
    size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view{} : body.substr(nl + 1);
    ++number;
    if (Status s = parse_influx_line(line, precision, sink); !s)
      sink.reject("line " + std::to_string(number) + ": " + s.message());
  }
}

// ---- Prometheus text exposition

namespace {

bool prom_name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

}  // namespace

Status parse_prom_line(std::string_view line, SampleSink& sink) {
  constexpr const char* kF = "prometheus text";
  thread_local std::string store;
  thread_local std::vector<Label> labels;
  store.clear();
  store.reserve(line.size());
  labels.clear();
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t i = 0;
  while (i < line.size() && is_space(line[i])) ++i;
  if (i == line.size() || line[i] == '#') return Status::ok();
  size_t n = i;
  while (n < line.size() && prom_name_char(line[n], n == i)) ++n;
  if (n == i) return unreadable(kF, i + 1, "expected a metric name");
  std::string_view name = line.substr(i, n - i);
  i = n;
  if (i < line.size() && line[i] == '{') {
    ++i;
    for (;;) {
      while (i < line.size() && is_space(line[i])) ++i;
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      size_t k = i;
      while (k < line.size() && prom_name_char(line[k], k == i)) ++k;
      if (k == i) return unreadable(kF, i + 1, "expected a label name or '}'");
      std::string_view key = line.substr(i, k - i);
      i = k;
      while (i < line.size() && is_space(line[i])) ++i;
      if (i == line.size() || line[i] != '=') return unreadable(kF, i + 1, "expected '=' after a label name");
      ++i;
      while (i < line.size() && is_space(line[i])) ++i;
      if (i == line.size() || line[i] != '"') return unreadable(kF, i + 1, "expected a quoted label value");
      size_t start = store.size(), open = i;
      ++i;
      for (;;) {
        if (i >= line.size()) return unreadable(kF, open + 1, "unterminated label value");
        char c = line[i];
        if (c == '"') break;
        if (c == '\\') {
          if (i + 1 >= line.size()) return unreadable(kF, i + 1, "unterminated label value");
          char e = line[i + 1];
          if (e == 'n') store += '\n';
          else if (e == '\\' || e == '"') store += e;
          else return unreadable(kF, i + 1, "invalid escape in a label value (\\\\, \\\" or \\n)");
          i += 2;
          continue;
        }
        store += c;
        ++i;
      }
      ++i;
      labels.push_back(Label{key, std::string_view(store).substr(start)});
      while (i < line.size() && is_space(line[i])) ++i;
      if (i < line.size() && line[i] == ',') {
        ++i;
        continue;
      }
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      return unreadable(kF, i + 1, "expected ',' or '}' after a label");
    }
  }
  if (i == line.size() || !is_space(line[i])) return unreadable(kF, i + 1, "expected a space and a value");
  while (i < line.size() && is_space(line[i])) ++i;
  size_t v_end = i;
  while (v_end < line.size() && !is_space(line[v_end])) ++v_end;
  double value = 0;
  if (!to_double(line.substr(i, v_end - i), value)) return unreadable(kF, i + 1, "invalid value");
  i = v_end;
  while (i < line.size() && is_space(line[i])) ++i;
  TimeNs ts = sink.now();
  if (i < line.size()) {
    size_t t_end = i;
    while (t_end < line.size() && !is_space(line[t_end])) ++t_end;
    if (!epoch_to_ns(line.substr(i, t_end - i), 1000000, ts))
      return unreadable(kF, i + 1, "invalid timestamp (integer milliseconds)");
    i = t_end;
    while (i < line.size() && is_space(line[i])) ++i;
    if (i != line.size()) return unreadable(kF, i + 1, "text after the timestamp");
  }
  sink.add(name, labels, ts, value);
  return Status::ok();
}

// ---- logfmt and syslog

namespace {

struct Pair {
  std::string_view key, value;
  bool has_value;
};

// Reads logfmt pairs from line[i…] into pairs (quoted values unescaped into store).
// `column_base` is added to columns in errors (syslog: the message's offset).
Status read_logfmt(std::string_view line, size_t column_base, std::vector<Pair>& pairs, std::string& store) {
  constexpr const char* kF = "logfmt";
  size_t i = 0;
  for (;;) {
    while (i < line.size() && (is_space(line[i]) || line[i] == '\r')) ++i;
    if (i == line.size()) return Status::ok();
    size_t k = i;
    while (k < line.size() && !is_space(line[k]) && line[k] != '=' && line[k] != '"') ++k;
    if (k == i) {
      if (line[k] == '"') return unreadable(kF, column_base + k + 1, "a quoted value needs a key (key=\"…\")");
      return unreadable(kF, column_base + k + 1, "'=' without a key");
    }
    std::string_view key = line.substr(i, k - i);
    if (k == line.size() || line[k] != '=') {
      if (k < line.size() && line[k] == '"') return unreadable(kF, column_base + k + 1, "quote inside a key");
      pairs.push_back(Pair{key, {}, false});
      i = k;
      continue;
    }
    size_t v = k + 1;
    if (v < line.size() && line[v] == '"') {
      size_t start = store.size(), e = v + 1;
      for (;;) {
        if (e >= line.size()) return unreadable(kF, column_base + v + 1, "unterminated quoted value");
        char c = line[e];
        if (c == '"') break;
        if (c == '\\' && e + 1 < line.size()) {
          char x = line[e + 1];
          store += x == 'n' ? '\n' : x == 't' ? '\t' : x;
          e += 2;
          continue;
        }
        store += c;
        ++e;
      }
      pairs.push_back(Pair{key, std::string_view(store).substr(start), true});
      i = e + 1;
      if (i < line.size() && !is_space(line[i]) && line[i] != '\r')
        return unreadable(kF, column_base + i + 1, "text after a closing quote");
      continue;
    }
    size_t e = v;
    while (e < line.size() && !is_space(line[e])) ++e;
    std::string_view value = line.substr(v, e - v);
    if (value.find('"') != std::string_view::npos)
      return unreadable(kF, column_base + v + value.find('"') + 1, "quote inside an unquoted value");
    pairs.push_back(Pair{key, value, true});
    i = e;
  }
}

// The pairs of the line being read, and the bytes of their unescaped values (reserved
// for the whole line so the views stay valid).
std::pair<std::vector<Pair>&, std::string&> pair_buffers(size_t line_size) {
  thread_local std::vector<Pair> pairs;
  thread_local std::string store;
  pairs.clear();
  store.clear();
  store.reserve(line_size);
  return {pairs, store};
}

const Pair* find_pair(const std::vector<Pair>& pairs, std::string_view key) {
  for (const auto& p : pairs)
    if (p.has_value && p.key == key) return &p;
  return nullptr;
}

// Parses a time value: epoch in unit, else RFC 3339.
bool read_time(std::string_view v, TimeUnit unit, TimeNs& ts) {
  if (unit > 0) return epoch_to_ns(v, unit, ts);
  auto t = parse_rfc3339(v, ParseTimeOptions{.assume_utc = true});
  if (!t) return false;
  ts = *t;
  return true;
}

// Maps the pairs of one line to samples. device: "" = from the pairs (opts.device_key
// or --device-label) or --default-device; ts: when has_ts, unless opts.time_key names a
// present key.
Status samples_from_pairs(const char* format, const std::vector<Pair>& pairs, const KeyValueOptions& opts,
                          std::string_view device, bool has_ts, TimeNs ts, SampleSink& sink) {
  std::string_view device_key;
  if (!opts.device_key.empty()) {
    if (const Pair* p = find_pair(pairs, opts.device_key)) device = p->value, device_key = p->key;
  } else if (device.empty()) {
    for (const auto& want : sink.mapping().device_labels)
      if (const Pair* p = find_pair(pairs, want); p && !p->value.empty()) {
        device = p->value;
        device_key = p->key;
        break;
      }
  }
  if (device.empty()) device = sink.mapping().default_device;
  if (device.empty())
    return Status::data(std::string(format) + ": no device (" +
                        (opts.device_key.empty() ? std::string("none of --device-label present")
                                                 : "no key " + opts.device_key) +
                        "; set --default-device)");
  std::string_view time_key;
  const Pair* tp = nullptr;
  if (!opts.time_key.empty()) {
    tp = find_pair(pairs, opts.time_key);
  } else if (!has_ts) {
    for (const char* k : {"ts", "time", "timestamp"})
      if ((tp = find_pair(pairs, k))) break;
  }
  if (tp) {
    time_key = tp->key;
    if (!read_time(tp->value, opts.time_unit, ts))
      return Status::data(std::string(format) + ": " + std::string(tp->key) + "=" + std::string(tp->value) + ": " +
                          (opts.time_unit ? "not an integer epoch in --time-precision" : "not an RFC 3339 time"));
  } else if (!has_ts) {
    ts = sink.now();
  }
  if (!opts.metric_key.empty()) {
    const Pair* m = find_pair(pairs, opts.metric_key);
    const Pair* v = find_pair(pairs, opts.value_key);
    if (!m || !v) return Status::data(std::string(format) + ": needs " + opts.metric_key + "= and " + opts.value_key + "=");
    double value = 0;
    if (!to_number(v->value, value))
      return Status::data(std::string(format) + ": " + opts.value_key + "=" + std::string(v->value) + ": not a number");
    const Pair* u = opts.unit_key.empty() ? nullptr : find_pair(pairs, opts.unit_key);
    sink.add_point(device, m->value, ts, value, u ? u->value : std::string_view{});
    return Status::ok();
  }
  size_t added = 0;
  for (const auto& p : pairs) {
    double value = 0;
    if (!p.has_value || p.key == device_key || p.key == time_key || !to_number(p.value, value)) continue;
    sink.add_point(device, p.key, ts, value);
    ++added;
  }
  if (added == 0) return Status::data(std::string(format) + ": no numeric key=value pair (nothing to store)");
  return Status::ok();
}

}  // namespace

Status parse_logfmt_line(std::string_view line, const KeyValueOptions& opts, SampleSink& sink) {
  auto [pairs, store] = pair_buffers(line.size());
  EP_RETURN_IF_ERROR(read_logfmt(line, 0, pairs, store));
  if (pairs.empty()) return Status::ok();
  return samples_from_pairs("logfmt", pairs, opts, {}, false, 0, sink);
}

namespace {

constexpr const char* kSyslog = "syslog";

// The next space-delimited header field from i (i moves past it and one space).
std::string_view header_field(std::string_view line, size_t& i) {
  size_t e = line.find(' ', i);
  if (e == std::string_view::npos) e = line.size();
  std::string_view f = line.substr(i, e - i);
  i = e < line.size() ? e + 1 : e;
  return f;
}

// RFC 5424 structured data from i: - or [id k="v" …]…; params appended to pairs.
Status read_structured_data(std::string_view line, size_t& i, std::vector<Pair>& pairs, std::string& store) {
  if (i < line.size() && line[i] == '-') {
    ++i;
    return Status::ok();
  }
  if (i >= line.size() || line[i] != '[') return unreadable(kSyslog, i + 1, "expected structured data ('-' or '[')");
  while (i < line.size() && line[i] == '[') {
    size_t e = i + 1;
    while (e < line.size() && line[e] != ' ' && line[e] != ']') ++e;
    if (e == i + 1) return unreadable(kSyslog, i + 2, "missing SD-ID");
    i = e;
    while (i < line.size() && line[i] == ' ') {
      size_t k = i + 1, k_end = k;
      while (k_end < line.size() && line[k_end] != '=' && line[k_end] != ' ' && line[k_end] != ']') ++k_end;
      if (k_end == k || k_end + 1 >= line.size() || line[k_end] != '=' || line[k_end + 1] != '"')
        return unreadable(kSyslog, k + 1, "expected PARAM-NAME=\"value\"");
      size_t start = store.size(), v = k_end + 2;
      for (;;) {
        if (v >= line.size()) return unreadable(kSyslog, k_end + 2, "unterminated structured data value");
        if (line[v] == '"') break;
        if (line[v] == '\\' && v + 1 < line.size() && (line[v + 1] == '"' || line[v + 1] == '\\' || line[v + 1] == ']'))
          ++v;
        store += line[v++];
      }
      pairs.push_back(Pair{line.substr(k, k_end - k), std::string_view(store).substr(start), true});
      i = v + 1;
    }
    if (i >= line.size() || line[i] != ']') return unreadable(kSyslog, i + 1, "expected ']' closing an SD element");
    ++i;
  }
  return Status::ok();
}

constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";

// "Mmm dd hh:mm:ss" (RFC 3164): the year is the one that puts it nearest before now+1d.
bool bsd_time(std::string_view s, TimeNs now, TimeNs& ts) {
  if (s.size() != 15 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':') return false;
  size_t m = kMonths.find(s.substr(0, 3));
  if (m == std::string_view::npos || m % 3 != 0) return false;
  auto num = [&](size_t at) -> int {
    char a = s[at] == ' ' ? '0' : s[at], b = s[at + 1];
    if (a < '0' || a > '9' || b < '0' || b > '9') return -1;
    return (a - '0') * 10 + (b - '0');
  };
  int day = num(4), hh = num(7), mm = num(10), ss = num(13);
  if (day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60) return false;
  std::string year = format_rfc3339(now).substr(0, 4);
  for (int back = 0; back < 2; ++back) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02zu-%02dT%02d:%02d:%02dZ", std::stoi(year) - back, m / 3 + 1, day, hh, mm,
                  ss);
    auto t = parse_rfc3339(buf);
    if (!t) return false;
    ts = *t;
    if (ts <= now + 24 * 3600 * kNsPerSec) return true;
  }
  return true;
}

}  // namespace

Status parse_syslog_line(std::string_view line, const KeyValueOptions& opts, SampleSink& sink) {
  auto [pairs, store] = pair_buffers(line.size());
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return Status::ok();
  size_t i = 0;
  if (line[0] == '<') {
    size_t e = 1;
    while (e < line.size() && e < 5 && line[e] >= '0' && line[e] <= '9') ++e;
    if (e == 1 || e >= line.size() || line[e] != '>') return unreadable(kSyslog, e + 1, "invalid <PRI>");
    i = e + 1;
  }
  TimeNs ts = 0;
  bool has_ts = false;
  std::string_view host;
  size_t msg_at;
  if (line.substr(i, 2) == "1 ") {  // RFC 5424
    i += 2;
    size_t at = i;
    std::string_view t = header_field(line, i);
    if (t != "-") {
      auto p = parse_rfc3339(t);
      if (!p) return unreadable(kSyslog, at + 1, "invalid RFC 5424 TIMESTAMP");
      ts = *p;
      has_ts = true;
    }
    host = header_field(line, i);
    if (host == "-") host = {};
    header_field(line, i);  // APP-NAME
    header_field(line, i);  // PROCID
    size_t before_msgid = i;
    header_field(line, i);  // MSGID
    if (i == line.size() || i == before_msgid) return unreadable(kSyslog, i + 1, "RFC 5424 header: missing fields");
    EP_RETURN_IF_ERROR(read_structured_data(line, i, pairs, store));
    msg_at = i;
  } else {  // RFC 3164, or a traditional line with an RFC 3339 time (rsyslog)
    size_t at = i;
    if (i + 15 <= line.size() && bsd_time(line.substr(i, 15), sink.now(), ts)) {
      i += 15;
      if (i < line.size() && line[i] == ' ') ++i;
    } else {
      std::string_view t = header_field(line, i);
      auto p = parse_rfc3339(t);
      if (!p) return unreadable(kSyslog, at + 1, "expected a timestamp (Mmm dd hh:mm:ss, or RFC 3339)");
      ts = *p;
    }
    has_ts = true;
    size_t h = i;
    host = header_field(line, i);
    if (host.empty()) return unreadable(kSyslog, h + 1, "missing HOSTNAME");
    msg_at = i;
  }
  std::string_view msg = line.substr(std::min(msg_at, line.size()));
  if (msg.starts_with("\xEF\xBB\xBF")) msg.remove_prefix(3), msg_at += 3;
  // The tag ("app[123]:") and other words without '=' are read as bare keys and ignored.
  EP_RETURN_IF_ERROR(read_logfmt(msg, msg_at, pairs, store));
  return samples_from_pairs(kSyslog, pairs, opts, opts.device_key.empty() ? host : std::string_view{}, has_ts, ts,
                            sink);
}

// ---- CSV with a header

namespace {

int column_role(std::string_view name) {
  std::string n;
  for (char c : name) n += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (n == "device" || n == "device_external_id" || n == "host") return 0;
  if (n == "metric" || n == "name") return 1;
  if (n == "ts" || n == "timestamp" || n == "time") return 2;
  if (n == "value") return 3;
  if (n == "unit") return 4;
  return -1;
}

}  // namespace

Result<bool> read_csv_header(std::string_view line, char delimiter, CsvLayout& layout) {
  if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
  thread_local std::vector<std::string_view> f;
  std::string storage, err;
  int n = split_csv(line, delimiter, f, 1025, storage, err);
  if (n < 0 || n > 1024) return false;
  CsvLayout l;
  l.delimiter = delimiter;
  l.device = l.metric = l.ts = l.value = l.unit = -1;
  l.names.assign(f.size(), {});
  bool any_role = false;
  for (size_t c = 0; c < f.size(); ++c) {
    int role = column_role(f[c]);
    int* slot[] = {&l.device, &l.metric, &l.ts, &l.value, &l.unit};
    if (role >= 0) {
      if (*slot[role] >= 0) return Status::data("CSV header: column " + std::to_string(c + 1) + ": " + std::string(f[c]) + " named twice");
      *slot[role] = static_cast<int>(c);
      any_role = true;
    } else {
      l.names[c] = std::string(f[c]);
    }
  }
  if (!any_role || l.ts < 0) return false;  // data, not a header
  l.wide = l.metric < 0 && l.value < 0;
  if (!l.wide) {
    if (l.metric < 0 || l.value < 0) return Status::data("CSV header: names metric or value but not both");
    for (size_t c = 0; c < f.size(); ++c)
      if (!l.names[c].empty())
        return Status::data("CSV header: column " + std::to_string(c + 1) + ": unknown column " + l.names[c] +
                            " (device, metric, ts/timestamp/time, value, unit; or a wide layout without metric and value)");
  } else {
    for (size_t c = 0; c < f.size(); ++c)
      if (!l.names[c].empty() && !valid_name(l.names[c]))
        return Status::data("CSV header: column " + std::to_string(c + 1) + ": " + l.names[c] + ": not a valid metric name");
  }
  l.min_fields = l.max_fields = f.size();
  if (l.unit >= 0 && static_cast<size_t>(l.unit) + 1 == f.size()) l.min_fields--;  // a trailing unit may be left out
  layout = std::move(l);
  return true;
}

Status parse_csv_record(std::string_view line, const CsvLayout& layout, TimeUnit time_unit, SampleSink& sink) {
  thread_local std::vector<std::string_view> f;
  thread_local std::string storage;
  std::string err;
  if (!valid_utf8(line)) return Status::data("csv: invalid UTF-8");
  int n = split_csv(line, layout.delimiter, f, layout.max_fields + 1, storage, err);
  if (n < 0) return Status::data("csv: " + err);
  if (static_cast<size_t>(n) < layout.min_fields || static_cast<size_t>(n) > layout.max_fields)
    return Status::data("csv: expected " + std::to_string(layout.min_fields) +
                        (layout.min_fields == layout.max_fields ? "" : " or " + std::to_string(layout.max_fields)) +
                        " fields" + (layout.names.empty() ? " (device,metric,ts,value[,unit])" : "") + ", got " +
                        (static_cast<size_t>(n) > layout.max_fields ? "more" : std::to_string(n)));
  auto at = [&](int c) { return c >= 0 && c < n ? f[static_cast<size_t>(c)] : std::string_view{}; };
  std::string_view device = layout.device >= 0 ? at(layout.device) : std::string_view(sink.mapping().default_device);
  if (device.empty()) return Status::data("csv: field " + std::to_string(layout.device + 1) + " (device): empty");
  TimeNs ts = 0;
  if (!read_time(at(layout.ts), time_unit, ts))
    return Status::data("csv: field " + std::to_string(layout.ts + 1) + " (ts): " +
                        (time_unit ? "not an integer epoch in --time-precision" : "not an RFC 3339 timestamp"));
  auto number = [&](int c, double& v) -> Status {
    std::string_view s = at(c);
    if (!to_double(s, v))
      return Status::data("csv: field " + std::to_string(c + 1) + " (" +
                          (layout.wide ? layout.names[static_cast<size_t>(c)] : std::string("value")) + "): not a number");
    return Status::ok();
  };
  if (!layout.wide) {
    double v = 0;
    EP_RETURN_IF_ERROR(number(layout.value, v));
    sink.add_point(device, at(layout.metric), ts, v, at(layout.unit));
    return Status::ok();
  }
  // Wide: check every cell first so a bad one rejects the whole row.
  thread_local std::vector<double> values;
  values.assign(static_cast<size_t>(n), 0);
  for (int c = 0; c < n; ++c)
    if (!layout.names[static_cast<size_t>(c)].empty() && !at(c).empty())
      EP_RETURN_IF_ERROR(number(c, values[static_cast<size_t>(c)]));
  for (int c = 0; c < n; ++c)
    if (!layout.names[static_cast<size_t>(c)].empty() && !at(c).empty())
      sink.add_point(device, layout.names[static_cast<size_t>(c)], ts, values[static_cast<size_t>(c)],
                     at(layout.unit));
  return Status::ok();
}

}  // namespace ep::ingest
