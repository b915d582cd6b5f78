#pragma once
// Diagnostics on stderr (docs/conventions.md 9, 15): "ep-<tool>: <context>: <reason>" as text, or one
// JSON object per line with --log-format json. Every message is one write(2), so
// threads and journald never see half lines. Only main() and the top of a run log;
// cores return Status.
#include <cstdint>
#include <mutex>
#include <string_view>

#include "ep/status.h"
#include "ep/time.h"

namespace ep::log {

enum class Format { kText, kJson };
enum class Level { kDebug, kInfo, kWarn, kError };

void set_tool(std::string_view tool);  // "ep-ingest"
std::string_view tool();
void set_format(Format f);
Format format();
void set_min_level(Level l);

// context may be empty; line < 0 means no line number.
void emit(Level level, std::string_view context, std::string_view reason, std::int64_t line = -1,
          Code code = Code::kOk);

inline void info(std::string_view msg) { emit(Level::kInfo, {}, msg); }
inline void warn(std::string_view msg) { emit(Level::kWarn, {}, msg); }
inline void debug(std::string_view msg) { emit(Level::kDebug, {}, msg); }
inline void error(const Status& s) { emit(Level::kError, {}, s.message(), -1, s.code()); }
// A rejected input line: "ep-x: <stream>:<line>: <reason>".
inline void reject(std::string_view stream, std::int64_t line, std::string_view reason) {
  emit(Level::kError, stream, reason, line, Code::kData);
}

// A failure that recurs on every request (archive disk full, database down) logged
// without flooding: the first occurrence in full, then at most one line per interval,
// the latest reason plus how many occurrences were suppressed since the last line.
class Throttled {
 public:
  explicit Throttled(TimeNs interval, const Clock& clock = SystemClock::instance())
      : interval_(interval), clock_(clock) {}
  void emit(Level level, std::string_view context, std::string_view reason, Code code = Code::kOk);
  void error(const Status& s, std::string_view context = {}) {
    emit(Level::kError, context, s.message(), s.code());
  }

 private:
  const TimeNs interval_;
  const Clock& clock_;
  std::mutex mu_;
  bool logged_ = false;
  TimeNs last_ = 0;
  std::int64_t suppressed_ = 0;
};

// Writes the whole buffer to fd 2 with one write where possible.
void write_stderr(std::string_view s);

}  // namespace ep::log
