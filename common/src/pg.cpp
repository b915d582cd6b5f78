#include "ep/pg.h"

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include "ep/crypto.h"

namespace ep::pg {

namespace {

// Microseconds between 1970-01-01 and 2000-01-01 (the Postgres binary epoch).
constexpr std::int64_t kPgEpochUs = 946684800LL * 1000000LL;

std::string one_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

std::string resolve_url(std::string_view flag_value) {
  if (!flag_value.empty()) return std::string(flag_value);
  if (const char* env = std::getenv("DATABASE_URL"); env && *env) return env;
  return {};
}

std::string redact_url(std::string_view url) {
  std::string s(url);
  // postgresql://user:secret@host -> postgresql://user:***@host
  auto scheme = s.find("://");
  if (scheme != std::string::npos) {
    auto at = s.find('@', scheme + 3);
    auto colon = s.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at)
      s.replace(colon + 1, at - colon - 1, "***");
  }
  // key=value form: password=secret
  auto pw = s.find("password=");
  if (pw != std::string::npos) {
    auto end = s.find(' ', pw);
    s.replace(pw + 9, (end == std::string::npos ? s.size() : end) - pw - 9, "***");
  }
  return s.empty() ? std::string("(libpq environment)") : s;
}

Code classify_sqlstate(std::string_view st) {
  if (st.size() != 5) return Code::kUnavailable;  // no server answer: connection problem
  if (st.substr(0, 2) == "08") return Code::kUnavailable;
  if (st == "57P01" || st == "57P02" || st == "57P03") return Code::kUnavailable;
  if (st == "40001" || st == "40P01" || st == "55P03") return Code::kTemporary;
  if (st.substr(0, 2) == "53") return Code::kTemporary;  // insufficient resources
  if (st == "23505") return Code::kConflict;
  if (st.substr(0, 2) == "22" || st.substr(0, 2) == "23") return Code::kData;
  return Code::kSoftware;
}

Param::Param(double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  v_ = std::string(buf, r.ptr);
}

std::string format_ts_us(TimeNs t) {
  std::int64_t us = floor_div(t, 1000);
  std::int64_t secs = floor_div(us, 1000000);
  int frac = static_cast<int>(us - secs * 1000000);
  std::int64_t days = floor_div(secs, 86400);
  int sod = static_cast<int>(secs - days * 86400);
  std::int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d.%06dZ", static_cast<long long>(y),
                m, d, sod / 3600, sod / 60 % 60, sod % 60, frac);
  return buf;
}

Param ts_param(TimeNs t) { return Param(format_ts_us(t)); }

std::optional<TimeNs> parse_pg_ts(std::string_view s) {
  // "2026-01-05 10:00:00.123+00" (TimeZone=UTC); also accept "+00:00" and 'T'.
  std::string buf(s);
  if (buf.size() >= 3 && (buf.compare(buf.size() - 3, 3, "+00") == 0))
    buf.replace(buf.size() - 3, 3, "Z");
  return parse_rfc3339(buf, ParseTimeOptions{.assume_utc = true, .allow_date_only = true});
}

// ---- Rows ----

std::string_view Rows::get(int row, int col) const {
  return std::string_view(PQgetvalue(res_.get(), row, col),
                          static_cast<size_t>(PQgetlength(res_.get(), row, col)));
}

std::optional<std::string> Rows::opt(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return str(row, col);
}

std::int64_t Rows::get_int(int row, int col) const {
  if (is_null(row, col)) return 0;
  auto v = get(row, col);
  std::int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

double Rows::get_double(int row, int col) const {
  if (is_null(row, col)) return 0;
  return std::strtod(PQgetvalue(res_.get(), row, col), nullptr);
}

bool Rows::get_bool(int row, int col) const { return !is_null(row, col) && get(row, col) == "t"; }

TimeNs Rows::get_ts(int row, int col) const { return opt_ts(row, col).value_or(0); }

std::optional<TimeNs> Rows::opt_ts(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return parse_pg_ts(get(row, col));
}

std::int64_t Rows::affected() const {
  if (!res_) return 0;
  const char* n = PQcmdTuples(res_.get());
  return (n && *n) ? std::strtoll(n, nullptr, 10) : 0;
}

// ---- Conn ----

Conn::~Conn() {
  if (conn_) PQfinish(conn_);
}
Conn::Conn(Conn&& o) noexcept : conn_(o.conn_), sqlstate_(std::move(o.sqlstate_)) {
  o.conn_ = nullptr;
}
Conn& Conn::operator=(Conn&& o) noexcept {
  if (this != &o) {
    if (conn_) PQfinish(conn_);
    conn_ = o.conn_;
    o.conn_ = nullptr;
    sqlstate_ = std::move(o.sqlstate_);
  }
  return *this;
}

ep::Result<Conn> Conn::connect(std::string_view url, std::string_view application_name) {
  ConnectOptions o;
  o.url = std::string(url);
  o.application_name = std::string(application_name);
  return connect(o);
}

ep::Result<Conn> Conn::connect(const ConnectOptions& opts) {
  std::string timeout = std::to_string(opts.connect_timeout_s);
  // expand_dbname=1: the "dbname" value may itself be a URL or key=value string,
  // so these keywords override only what it does not set.
  std::vector<const char*> keys, vals;
  keys.push_back("dbname");
  vals.push_back(opts.url.empty() ? nullptr : opts.url.c_str());
  keys.push_back("connect_timeout");
  vals.push_back(timeout.c_str());
  if (!opts.application_name.empty()) {
    keys.push_back("fallback_application_name");
    vals.push_back(opts.application_name.c_str());
  }
  keys.push_back(nullptr);
  vals.push_back(nullptr);
  if (!opts.url.empty()) {
    char* err = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(opts.url.c_str(), &err);
    if (!parsed) {
      std::string msg = err ? one_line(err) : "cannot parse";
      PQfreemem(err);
      return Status::usage("--db " + redact_url(opts.url) + ": " + msg);
    }
    PQconninfoFree(parsed);
  }
  PGconn* c = PQconnectdbParams(keys.data(), vals.data(), 1);
  if (!c) return Status::unavailable("postgres: out of memory connecting");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = one_line(PQerrorMessage(c));
    PQfinish(c);
    return Status::unavailable("postgres " + redact_url(opts.url) + ": " + msg);
  }
  Conn conn(c);
  PQsetClientEncoding(c, "UTF8");
  EP_RETURN_IF_ERROR(conn.exec("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'").status());
  return conn;
}

bool Conn::connected() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }
bool Conn::broken() const { return !connected(); }

bool Conn::server_is_superuser() const {
  const char* v = conn_ ? PQparameterStatus(conn_, "is_superuser") : nullptr;
  return v && std::strcmp(v, "on") == 0;
}

std::string Conn::error_message() const {
  return conn_ ? one_line(PQerrorMessage(conn_)) : std::string("not connected");
}

Status Conn::fail(PGresult* res, std::string_view what) {
  const char* st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  sqlstate_ = st ? st : "";
  std::string msg;
  if (res && PQresultErrorMessage(res) && *PQresultErrorMessage(res)) {
    const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    msg = primary ? primary : one_line(PQresultErrorMessage(res));
    if (const char* detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL))
      msg += std::string(" (") + detail + ")";
  } else {
    msg = error_message();
  }
  Code code = classify_sqlstate(sqlstate_);
  if (!connected()) code = Code::kUnavailable;
  if (res) PQclear(res);
  std::string text = "postgres: ";
  if (!what.empty()) text.append(what).append(": ");
  text += msg;
  if (!sqlstate_.empty()) text += " [SQLSTATE " + sqlstate_ + "]";
  return Status(code, text);
}

ep::Result<Rows> Conn::check(PGresult* res, std::string_view sql) {
  if (!res) return fail(nullptr, {});
  auto st = PQresultStatus(res);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY ||
      st == PGRES_COPY_IN) {
    sqlstate_.clear();
    return Rows(res);
  }
  (void)sql;
  return fail(res, {});
}

ep::Result<Rows> Conn::exec(std::string_view sql) {
  if (!conn_) return Status::unavailable("postgres: not connected");
  std::string s(sql);
  return check(PQexec(conn_, s.c_str()), sql);
}

ep::Result<Rows> Conn::exec(std::string_view sql, const std::vector<Param>& params) {
  if (!conn_) return Status::unavailable("postgres: not connected");
  std::string s(sql);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.value() ? p.value()->c_str() : nullptr);
  return check(PQexecParams(conn_, s.c_str(), static_cast<int>(values.size()), nullptr,
                            values.data(), nullptr, nullptr, 0),
               sql);
}

ep::Result<Rows> Conn::exec(std::string_view sql, std::initializer_list<Param> params) {
  return exec(sql, std::vector<Param>(params));
}

Status Conn::run(std::string_view sql, std::initializer_list<Param> params) {
  if (params.size() == 0) return exec(sql).status();  // simple protocol: several statements allowed
  return exec(sql, params).status();
}

Status Conn::begin(std::string_view mode) {
  std::string sql = "BEGIN";
  if (!mode.empty()) sql.append(" ").append(mode);
  return exec(sql).status();
}
Status Conn::commit() { return exec("COMMIT").status(); }
Status Conn::rollback() { return exec("ROLLBACK").status(); }
bool Conn::in_transaction() const {
  return conn_ && PQtransactionStatus(conn_) != PQTRANS_IDLE &&
         PQtransactionStatus(conn_) != PQTRANS_UNKNOWN;
}

Status Conn::copy_start(std::string_view copy_sql) {
  if (!conn_) return Status::unavailable("postgres: not connected");
  std::string s(copy_sql);
  PGresult* res = PQexec(conn_, s.c_str());
  if (res && PQresultStatus(res) == PGRES_COPY_IN) {
    PQclear(res);
    return Status::ok();
  }
  return fail(res, "COPY");
}

Status Conn::copy_put(std::string_view data) {
  if (data.empty()) return Status::ok();
  if (PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) != 1)
    return fail(nullptr, "COPY");
  return Status::ok();
}

ep::Result<std::int64_t> Conn::copy_finish() {
  if (PQputCopyEnd(conn_, nullptr) != 1) return fail(nullptr, "COPY end");
  std::int64_t rows = 0;
  Status first;
  while (PGresult* res = PQgetResult(conn_)) {
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
      rows += Rows(res).affected();
    } else if (first.is_ok()) {
      first = fail(res, "COPY");
    } else {
      PQclear(res);
    }
  }
  if (!first.is_ok()) return first;
  if (!connected()) return fail(nullptr, "COPY");
  return rows;
}

void Conn::copy_abort(std::string_view reason) {
  std::string r(reason);
  PQputCopyEnd(conn_, r.c_str());
  while (PGresult* res = PQgetResult(conn_)) PQclear(res);
}

Status Conn::advisory_lock(std::int64_t key) {
  return run("SELECT pg_advisory_lock($1)", {key});
}
ep::Result<bool> Conn::try_advisory_lock(std::int64_t key) {
  auto r = exec("SELECT pg_try_advisory_lock($1)", {key});
  if (!r) return r.status();
  return r->get_bool(0, 0);
}
Status Conn::advisory_unlock(std::int64_t key) {
  return run("SELECT pg_advisory_unlock($1)", {key});
}
Status Conn::advisory_xact_lock(std::int64_t key) {
  return run("SELECT pg_advisory_xact_lock($1)", {key});
}

Status Conn::set_tenant(std::string_view tenant_id, bool local) {
  return run("SELECT set_config($1, $2, $3)", {kTenantSetting, tenant_id, local});
}
Status Conn::clear_tenant() { return run("SELECT set_config($1, '', false)", {kTenantSetting}); }

// ---- Transaction ----

Transaction::~Transaction() { rollback(); }
Status Transaction::begin(std::string_view mode) {
  EP_RETURN_IF_ERROR(c_.begin(mode));
  open_ = true;
  return Status::ok();
}
Status Transaction::commit() {
  open_ = false;
  return c_.commit();
}
void Transaction::rollback() {
  if (open_ && c_.connected()) (void)c_.rollback();
  open_ = false;
}

// ---- COPY encoders ----

void append_copy_text(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
}

void CopyBinary::be16(std::uint16_t v) {
  char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
  buf_.append(b, 2);
}
void CopyBinary::be32(std::uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (24 - 8 * i));
  buf_.append(b, 4);
}
void CopyBinary::be64(std::uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (56 - 8 * i));
  buf_.append(b, 8);
}
void CopyBinary::header() {
  static const char kSig[] = "PGCOPY\n\377\r\n\0";
  buf_.append(kSig, 11);
  be32(0);  // flags
  be32(0);  // header extension length
}
void CopyBinary::row(std::int16_t fields) { be16(static_cast<std::uint16_t>(fields)); }
void CopyBinary::null() { be32(0xFFFFFFFFu); }
void CopyBinary::int2(std::int16_t v) {
  be32(2);
  be16(static_cast<std::uint16_t>(v));
}
void CopyBinary::int4(std::int32_t v) {
  be32(4);
  be32(static_cast<std::uint32_t>(v));
}
void CopyBinary::int8(std::int64_t v) {
  be32(8);
  be64(static_cast<std::uint64_t>(v));
}
void CopyBinary::float8(double v) {
  std::uint64_t bits;
  std::memcpy(&bits, &v, 8);
  be32(8);
  be64(bits);
}
void CopyBinary::boolean(bool v) {
  be32(1);
  buf_.push_back(v ? 1 : 0);
}
void CopyBinary::text(std::string_view s) {
  be32(static_cast<std::uint32_t>(s.size()));
  buf_.append(s);
}
void CopyBinary::uuid_bytes(const unsigned char* b) {
  be32(16);
  buf_.append(reinterpret_cast<const char*>(b), 16);
}
bool CopyBinary::uuid(std::string_view s) {
  unsigned char b[16];
  if (!parse_uuid(s, b)) return false;
  uuid_bytes(b);
  return true;
}
void CopyBinary::timestamptz(TimeNs t) {
  be32(8);
  be64(static_cast<std::uint64_t>(floor_div(t, 1000) - kPgEpochUs));
}
void CopyBinary::date_days(std::int32_t days) {
  int4(days - 10957);  // days between 1970-01-01 and 2000-01-01
}
void CopyBinary::trailer() { be16(0xFFFF); }

bool parse_uuid(std::string_view s, unsigned char out[16]) {
  int n = 0;
  int hi = -1;
  for (char c : s) {
    if (c == '-') continue;
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else return false;
    if (hi < 0) {
      hi = v;
    } else {
      if (n >= 16) return false;
      out[n++] = static_cast<unsigned char>(hi << 4 | v);
      hi = -1;
    }
  }
  return n == 16 && hi < 0;
}

std::string format_uuid(const unsigned char b[16]) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += kHex[b[i] >> 4];
    s += kHex[b[i] & 15];
  }
  return s;
}

// ---- retry ----

bool is_retryable(const Status& s) {
  return s.code() == Code::kUnavailable || s.code() == Code::kTemporary;
}

Status retry(const RetryPolicy& policy, const std::function<Status(int attempt)>& fn,
             const RetryHooks& hooks) {
  auto now = hooks.now ? hooks.now : [] { return monotonic_ns(); };
  auto cancelled = [&] { return hooks.cancelled && hooks.cancelled(); };
  auto sleep = hooks.sleep ? hooks.sleep : [&](TimeNs d) {
    // In slices, so that a cancellation ends the wait within 100 ms.
    for (TimeNs left = d; left > 0 && !cancelled(); left -= 100 * kNsPerMs) {
      TimeNs slice = std::min<TimeNs>(left, 100 * kNsPerMs);
      struct timespec ts{static_cast<time_t>(slice / kNsPerSec), static_cast<long>(slice % kNsPerSec)};
      while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
      }
    }
  };
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const TimeNs start = now();
  TimeNs backoff = policy.initial_backoff;
  for (int attempt = 1;; ++attempt) {
    Status s = fn(attempt);
    if (s.is_ok() || !is_retryable(s)) return s;
    if (policy.max_attempts > 0 && attempt >= policy.max_attempts) return s;
    if (cancelled()) return s;
    // Full jitter: uniform in [backoff/2, backoff].
    TimeNs wait = backoff / 2 + static_cast<TimeNs>(rng() % static_cast<std::uint64_t>(
                                                              std::max<TimeNs>(1, backoff / 2)));
    if (now() - start + wait > policy.max_wait) return s;
    if (hooks.on_retry) hooks.on_retry(s, attempt, wait);
    sleep(wait);
    if (cancelled()) return s;
    backoff = std::min(policy.max_backoff, backoff * 2);
  }
}

std::int64_t lock_key(std::string_view name) {
  auto d = crypto::sha256(name);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | d[i];
  return static_cast<std::int64_t>(v);
}

}  // namespace ep::pg
