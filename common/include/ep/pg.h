#pragma once
// A small libpq wrapper (docs/architecture.md §9: libpq, parameterised queries only, COPY for bulk).
//
// Errors become ep::Status classified by SQLSTATE, never by message text (docs/conventions.md 11):
//   connection lost / refused, class 08, 57P01..57P03  -> Code::kUnavailable (reconnect)
//   40001 serialization, 40P01 deadlock, 55P03 lock     -> Code::kTemporary   (retry)
//   23505 unique violation                              -> Code::kConflict
//   class 22 / 23 other data errors                     -> Code::kData
//   anything else (42P01 undefined table, ...)          -> Code::kSoftware
// The SQLSTATE of the last error is kept on the connection (last_sqlstate()).
//
// Every session is set to TimeZone=UTC so timestamptz text is "YYYY-MM-DD HH:MM:SS[.f]+00".
#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ep/status.h"
#include "ep/time.h"

namespace ep::pg {

// The session setting row-level security policies key on (see docs/schema.md).
inline constexpr const char* kTenantSetting = "edgepulse.tenant_id";

// --db semantics: a non-empty flag value wins; "" means $DATABASE_URL; if that is unset
// too, "" is returned and libpq uses its own environment (PGHOST, PGPORT, PGUSER,
// PGDATABASE, PGPASSWORD, ~/.pgpass, service files).
std::string resolve_url(std::string_view flag_value);
// The URL without its password, for messages.
std::string redact_url(std::string_view url);

// Classifies a SQLSTATE (5 chars, or "" for a client-side / connection failure).
Code classify_sqlstate(std::string_view sqlstate);

// One query parameter in text format; null when !has_value.
class Param {
 public:
  Param(std::nullptr_t) {}  // NOLINT: implicit by design
  Param(std::string_view s) : v_(std::string(s)) {}
  Param(const std::string& s) : v_(s) {}
  Param(const char* s) : v_(std::string(s)) {}
  Param(std::int64_t v) : v_(std::to_string(v)) {}
  Param(int v) : v_(std::to_string(v)) {}
  Param(double v);
  Param(bool v) : v_(v ? "true" : "false") {}
  template <typename T>
  Param(const std::optional<T>& o) {  // NOLINT
    if (o) *this = Param(*o);
  }
  const std::optional<std::string>& value() const { return v_; }

 private:
  std::optional<std::string> v_;
};

// A timestamptz parameter with microsecond precision ("2026-01-05T10:00:00.123456Z").
Param ts_param(TimeNs t);
std::string format_ts_us(TimeNs t);
// Parses Postgres timestamptz text output in UTC ("2026-01-05 10:00:00.123+00").
std::optional<TimeNs> parse_pg_ts(std::string_view s);

// Rows of a completed command (RAII over PGresult).
class Rows {
 public:
  Rows() = default;
  explicit Rows(PGresult* r) : res_(r, &PQclear) {}

  int size() const { return res_ ? PQntuples(res_.get()) : 0; }
  bool empty() const { return size() == 0; }
  int columns() const { return res_ ? PQnfields(res_.get()) : 0; }
  bool is_null(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
  std::string_view get(int row, int col) const;
  std::string str(int row, int col) const { return std::string(get(row, col)); }
  std::optional<std::string> opt(int row, int col) const;
  std::int64_t get_int(int row, int col) const;
  double get_double(int row, int col) const;
  bool get_bool(int row, int col) const;
  // timestamptz column (0 when null or unparseable).
  TimeNs get_ts(int row, int col) const;
  std::optional<TimeNs> opt_ts(int row, int col) const;
  // Rows affected by INSERT/UPDATE/DELETE/COPY (PQcmdTuples).
  std::int64_t affected() const;
  PGresult* raw() const { return res_.get(); }

 private:
  std::shared_ptr<PGresult> res_;
};

struct ConnectOptions {
  std::string url;               // "" = libpq environment (after resolve_url)
  std::string application_name;  // shown in pg_stat_activity, e.g. "ep-load"
  int connect_timeout_s = 10;
};

class Conn {
 public:
  Conn() = default;
  ~Conn();
  Conn(Conn&& o) noexcept;
  Conn& operator=(Conn&& o) noexcept;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Connects, sets TimeZone=UTC and application_name. kUnavailable when the server
  // cannot be reached, kUsage for a malformed URL.
  static ep::Result<Conn> connect(const ConnectOptions& opts);
  static ep::Result<Conn> connect(std::string_view url, std::string_view application_name = {});

  bool connected() const;
  PGconn* raw() const { return conn_; }
  const std::string& last_sqlstate() const { return sqlstate_; }
  // True when the last failure lost the connection (reconnect before retrying).
  bool broken() const;
  bool server_is_superuser() const;

  // Simple protocol: may hold several statements, no parameters (migrations, DDL).
  ep::Result<Rows> exec(std::string_view sql);
  // Extended protocol with text parameters ($1, $2, ...).
  ep::Result<Rows> exec(std::string_view sql, std::initializer_list<Param> params);
  ep::Result<Rows> exec(std::string_view sql, const std::vector<Param>& params);
  // Same, discarding the rows. Without parameters it uses the simple protocol, so the
  // text may hold several statements.
  Status run(std::string_view sql, std::initializer_list<Param> params = {});

  // Transactions (see also Transaction below).
  Status begin(std::string_view mode = {});  // e.g. "ISOLATION LEVEL SERIALIZABLE"
  Status commit();
  Status rollback();
  bool in_transaction() const;

  // COPY ... FROM STDIN: start, put any number of chunks, finish. finish() returns the
  // number of rows copied. abort_copy() ends it with an error (the statement fails).
  Status copy_start(std::string_view copy_sql);
  Status copy_put(std::string_view data);
  ep::Result<std::int64_t> copy_finish();
  void copy_abort(std::string_view reason);

  // Advisory locks (session or transaction scoped).
  Status advisory_lock(std::int64_t key);
  ep::Result<bool> try_advisory_lock(std::int64_t key);
  Status advisory_unlock(std::int64_t key);
  Status advisory_xact_lock(std::int64_t key);

  // Row-level security context: set_config('edgepulse.tenant_id', id, local). With
  // local=true it lasts until the end of the current transaction.
  Status set_tenant(std::string_view tenant_id, bool local = false);
  Status clear_tenant();

  // Last error message from libpq (one line).
  std::string error_message() const;

 private:
  explicit Conn(PGconn* c) : conn_(c) {}
  Status fail(PGresult* res, std::string_view what);
  ep::Result<Rows> check(PGresult* res, std::string_view sql);

  PGconn* conn_ = nullptr;
  std::string sqlstate_;
};

// RAII transaction: rolls back unless commit() succeeded.
class Transaction {
 public:
  explicit Transaction(Conn& c) : c_(c) {}
  ~Transaction();
  Status begin(std::string_view mode = {});
  Status commit();
  void rollback();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

 private:
  Conn& c_;
  bool open_ = false;
};

// Appends s to out escaped for COPY text format (backslash, tab, newline, CR).
void append_copy_text(std::string& out, std::string_view s);

// Encoder for COPY ... WITH (FORMAT binary). Call header() once, then per row
// row(n) followed by n fields, then trailer(). Take the bytes with data()/clear().
class CopyBinary {
 public:
  void header();
  void row(std::int16_t fields);
  void null();
  void int2(std::int16_t v);
  void int4(std::int32_t v);
  void int8(std::int64_t v);
  void float8(double v);
  void boolean(bool v);
  void text(std::string_view s);
  // 16 raw bytes.
  void uuid_bytes(const unsigned char* bytes16);
  // Textual UUID; false if it is not a UUID.
  bool uuid(std::string_view s);
  // timestamptz from ns since the Unix epoch (truncated to µs).
  void timestamptz(TimeNs t);
  void date_days(std::int32_t days_since_unix_epoch);
  void trailer();
  const std::string& data() const { return buf_; }
  size_t size() const { return buf_.size(); }
  void clear() { buf_.clear(); }

 private:
  void be16(std::uint16_t v);
  void be32(std::uint32_t v);
  void be64(std::uint64_t v);
  std::string buf_;
};

// Parses a textual UUID (with or without dashes) into 16 bytes.
bool parse_uuid(std::string_view s, unsigned char out[16]);
std::string format_uuid(const unsigned char bytes16[16]);

// Retry with exponential backoff and full jitter for operations that fail with
// kUnavailable (connection loss: the callback reconnects) or kTemporary (serialization
// failure, deadlock). Any other status is returned at once. Gives up when the next
// wait would pass max_wait since the first attempt and returns the last status.
struct RetryPolicy {
  TimeNs initial_backoff = 100 * kNsPerMs;
  TimeNs max_backoff = 5 * kNsPerSec;
  TimeNs max_wait = 60 * kNsPerSec;  // 0 = try once
  int max_attempts = 0;              // 0 = unlimited (bounded by max_wait)
};
struct RetryHooks {
  // Sleeps for d (tests pass a fake). Default: nanosleep.
  std::function<void(TimeNs)> sleep;
  // Monotonic clock. Default: ep::monotonic_ns.
  std::function<TimeNs()> now;
  // Called before each retry with the failure and the wait chosen (for logging).
  std::function<void(const Status&, int attempt, TimeNs wait)> on_retry;
  // Polled before each attempt and during waits (default sleep, every 100 ms): true
  // stops retrying at once and returns the last status (e.g. SIGTERM in a service).
  std::function<bool()> cancelled;
};
bool is_retryable(const Status& s);
Status retry(const RetryPolicy& policy, const std::function<Status(int attempt)>& fn,
             const RetryHooks& hooks = {});

// Stable 64-bit advisory lock key for a name (first 8 bytes of SHA-256).
std::int64_t lock_key(std::string_view name);

}  // namespace ep::pg
