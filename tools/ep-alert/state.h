#pragma once
// ep-alert's durable state (--state FILE): per (rule, series) alert state, deliveries not
// yet delivered (pending retries and failed ones for `ep-alert retry`) and endpoints
// disabled by HTTP 410. One JSON document, rewritten atomically (temp file, fsync,
// rename); format in docs/ep-alert.md, "State file".
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ep/status.h"
#include "ep/time.h"

namespace ep::alert {

inline constexpr TimeNs kNever = INT64_MIN;

struct SeriesState {
  TimeNs last_end = kNever;       // watermark: windows ending at or before it are replays
  int consecutive = 0;            // anomalous windows in a row
  bool firing = false;
  bool notified = false;          // the current firing was sent (so its resolve is sent too)
  TimeNs last_notified = kNever;  // window end of the last sent detection (cooldown)
  bool held = false;              // flapping: held firing until quiet for flap_window
  TimeNs normal_since = kNever;   // while held: end of the first normal window of the quiet run
  std::vector<TimeNs> fires;      // window ends of recent firings (flap window)
};

struct Delivery {
  std::string alert_id, webhook;
  std::string type;  // "anomaly.detected" / "anomaly.resolved"
  std::string rule, tenant, device, metric, label, severity;
  TimeNs start = 0, end = 0;
  double score = 0;
  std::string body;      // exact JSON payload; identical on every attempt
  TimeNs created = 0;    // wall clock when the event was created (max-age counts from here)
  int attempts = 0;
  TimeNs next_attempt = 0;
  bool failed = false;   // dead letter: only `ep-alert retry` sends it again
  int http_status = 0;   // of the last attempt
  std::string error;     // of the last attempt

  std::string key() const { return delivery_key(alert_id, webhook); }
  static std::string delivery_key(std::string_view alert_id, std::string_view webhook) {
    std::string k(alert_id);
    k += '\x1f';
    k += webhook;
    return k;
  }
};

struct DisabledWebhook {
  TimeNs since = 0;
  std::string reason;
};

struct State {
  std::unordered_map<std::string, SeriesState> series;  // key: series_key()
  std::map<std::string, Delivery> deliveries;           // key: Delivery::key()
  std::map<std::string, DisabledWebhook> disabled;      // webhook name

  static std::string series_key(std::string_view rule, std::string_view tenant,
                                std::string_view device, std::string_view metric);
};

// A missing file is an empty state; a corrupt one is an error (never silently reset).
Result<State> load_state(const std::string& path);
std::string serialize_state(const State& s, TimeNs now);
Status save_state(const std::string& path, const State& s, TimeNs now);

}  // namespace ep::alert
