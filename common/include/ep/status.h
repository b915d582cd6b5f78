#pragma once
// ep::Status and ep::Result<T>: one error style for every tool (docs/conventions.md 7, 8).
// A Status carries a category that maps to one sysexits code and a
// "context: reason" message. Cores return Status; only main() prints and exits.
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace ep {

enum class Code {
  kOk = 0,
  kUsage,        // 64: bad command line or configuration
  kData,         // 65: some input was rejected (all valid input processed)
  kUnavailable,  // 69: a service (Postgres, webhook target) is unavailable
  kSoftware,     // 70: internal error (a bug)
  kIo,           // 74: I/O error
  kTemporary,    // 75: temporary failure, safe to retry
  kNotFound,     // 65 as an exit code; distinct for callers (HTTP 404, etc.)
  kConflict,     // 65 as an exit code; duplicate / already exists
};

// The one mapping from a Status category to a process exit code (docs/architecture.md §9).
int exit_code(Code code);
const char* code_name(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status usage(std::string msg) { return Status(Code::kUsage, std::move(msg)); }
  static Status data(std::string msg) { return Status(Code::kData, std::move(msg)); }
  static Status unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status software(std::string msg) { return Status(Code::kSoftware, std::move(msg)); }
  static Status io(std::string msg) { return Status(Code::kIo, std::move(msg)); }
  static Status temporary(std::string msg) { return Status(Code::kTemporary, std::move(msg)); }
  static Status not_found(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status conflict(std::string msg) { return Status(Code::kConflict, std::move(msg)); }

  Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}

  bool is_ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  int exit_code() const { return ep::exit_code(code_); }

  // Returns a copy whose message is "context: message".
  Status with_context(std::string_view context) const;

 private:
  Code code_ = Code::kOk;
  std::string msg_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT
  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  Status status() const { return is_ok() ? Status::ok() : std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

// Propagate a non-ok Status out of the current function.
#define EP_RETURN_IF_ERROR(expr)          \
  do {                                    \
    ::ep::Status ep_status_ = (expr);     \
    if (!ep_status_.is_ok()) return ep_status_; \
  } while (0)

}  // namespace ep
