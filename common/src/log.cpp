#include "ep/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>

#include "ep/json.h"

namespace ep::log {
namespace {
std::string g_tool = "edgepulse";
std::atomic<Format> g_format{Format::kText};
std::atomic<Level> g_min{Level::kInfo};

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warning";
    case Level::kError: return "error";
  }
  return "error";
}
}  // namespace

void set_tool(std::string_view tool) { g_tool = std::string(tool); }
std::string_view tool() { return g_tool; }
void set_format(Format f) { g_format = f; }
Format format() { return g_format; }
void set_min_level(Level l) { g_min = l; }

void write_stderr(std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(2, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
}

void emit(Level level, std::string_view context, std::string_view reason, std::int64_t line,
          Code code) {
  if (level < g_min.load()) return;
  std::string out;
  if (g_format == Format::kJson) {
    JsonWriter w;
    w.start_object();
    w.kv("tool", g_tool);
    w.kv("level", level_name(level));
    if (!context.empty()) w.kv("context", context);
    if (line >= 0) w.kv("line", line);
    w.kv("reason", reason);
    if (code != Code::kOk) w.kv("code", code_name(code));
    w.end_object();
    out = w.take();
  } else {
    out.reserve(g_tool.size() + context.size() + reason.size() + 24);
    out += g_tool;
    out += ": ";
    if (level == Level::kWarn) out += "warning: ";
    if (!context.empty()) {
      out += context;
      if (line >= 0) {
        out += ':';
        out += std::to_string(line);
      }
      out += ": ";
    }
    out += reason;
  }
  out += '\n';
  write_stderr(out);
}

void Throttled::emit(Level level, std::string_view context, std::string_view reason, Code code) {
  std::int64_t suppressed;
  {
    std::lock_guard lock(mu_);
    TimeNs now = clock_.now();
    if (logged_ && now - last_ < interval_) {
      ++suppressed_;
      return;
    }
    suppressed = suppressed_;
    logged_ = true;
    last_ = now;
    suppressed_ = 0;
  }
  if (suppressed == 0) return log::emit(level, context, reason, -1, code);
  log::emit(level, context,
            std::string(reason) + " (" + std::to_string(suppressed) +
                " more suppressed since the last report)",
            -1, code);
}

}  // namespace ep::log
