#pragma once
// The rule engine: score records in, alert events out. Pure and synchronous — no I/O,
// no wall clock: cooldowns, silences and flapping are all measured in event time
// (window ends), so replaying a stream gives the same decisions.
//
// Per (rule, series):  N anomalous windows in a row -> fire (anomaly.detected), unless
// cooldown/silence suppress the notification; the first normal window -> resolve
// (anomaly.resolved, when the rule asks for it and the firing was notified). A series
// that fired flap_threshold times within flap_window is held firing at its next resolve
// and resolves only after flap_window of normal windows. Windows ending at or before the
// series' watermark are replays and change nothing.
#include <cstdint>
#include <string>
#include <vector>

#include "ep/records.h"
#include "rules.h"
#include "state.h"

namespace ep::alert {

enum class EventType { kDetected, kResolved };
const char* event_type_name(EventType t);  // "anomaly.detected" / "anomaly.resolved"

struct Event {
  const Rule* rule = nullptr;
  EventType type = EventType::kDetected;
  std::string alert_id;
  const Score* score = nullptr;  // the window that caused the event (valid during the call)
  int consecutive = 0;
  std::string suppressed;        // empty = notify; else the reason ("cooldown", ...)
};

struct EngineStats {
  std::uint64_t evaluated = 0;  // (score, rule) pairs evaluated
  std::uint64_t replayed = 0;   // (score, rule) pairs at or before the watermark
  std::uint64_t detected = 0, resolved = 0, suppressed = 0;
};

// Stable id for (rule, series, window end): a UUID (version 8) from SHA-256, so a
// replayed or retried alert carries the same id (it is also the webhook-id).
std::string make_alert_id(std::string_view rule, std::string_view tenant, std::string_view device,
                          std::string_view metric, TimeNs end);

class Engine {
 public:
  Engine(const RuleSet& rules, State& state) : rules_(rules), state_(state) {}
  // Appends the events caused by one score record to `out`.
  void evaluate(const Score& s, std::vector<Event>& out);
  const EngineStats& stats() const { return stats_; }

 private:
  void evaluate_rule(const Rule& r, const Score& s, std::vector<Event>& out);
  void emit(const Rule& r, EventType type, const Score& s, SeriesState& st, std::string reason,
            std::vector<Event>& out);

  const RuleSet& rules_;
  State& state_;
  EngineStats stats_;
  std::string key_;  // reused buffer
};

}  // namespace ep::alert
