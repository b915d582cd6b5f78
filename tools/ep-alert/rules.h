#pragma once
// Alert rules, webhooks and silences from a TOML file (docs/ep-alert.md, "Rules file").
// Everything is validated on load; errors name the file, line, rule and field:
//   rules.toml:12: rules[1] "high-score": min_score: must be a number in [0, 1]
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ep/status.h"
#include "ep/time.h"

namespace ep::alert {

enum class Severity { kInfo, kWarning, kCritical };
const char* severity_name(Severity s);

struct Webhook {
  std::string name;
  std::string url;
  // Raw HMAC keys (base64-decoded from "whsec_..."); two during a rotation.
  std::vector<std::string> keys;
  // Per-endpoint overrides (Postgres mode: webhooks.timeout_ms, max_attempts); 0 = the
  // --timeout / --max-attempts of the run.
  TimeNs timeout = 0;
  int max_attempts = 0;
};

// A series selector: shell globs (fnmatch(3)) on tenant, device and metric.
struct Selector {
  std::string tenant = "*", device = "*", metric = "*";
  bool matches(std::string_view tenant, std::string_view device, std::string_view metric) const;
};

struct Rule {
  std::string name;
  Selector selector;
  double min_score = 0.0;
  std::vector<std::string> labels;  // empty = any label
  int consecutive = 1;              // anomalous windows in a row before firing
  TimeNs cooldown = 0;              // event time after a notified firing
  bool resolve = false;             // send anomaly.resolved when normal again
  Severity severity = Severity::kWarning;
  std::vector<size_t> webhooks;     // indices into RuleSet::webhooks
  int flap_threshold = 0;           // firings within flap_window that hold a series; 0 = off
  TimeNs flap_window = 0;

  // Whether a score window counts as anomalous for this rule.
  bool anomalous(bool anomaly, double score, std::string_view label) const;
};

struct Silence {
  std::string name;  // for the record: "silenced: <name>"
  std::string rule = "*";
  Selector selector;
  TimeNs start = INT64_MIN;  // inclusive, event time (window end)
  TimeNs end = 0;            // exclusive
  bool covers(std::string_view rule_name, std::string_view tenant, std::string_view device,
              std::string_view metric, TimeNs t) const;
};

struct RuleSet {
  std::string source;  // file name, for messages
  std::vector<Webhook> webhooks;
  std::vector<Rule> rules;
  std::vector<Silence> silences;

  const Webhook* webhook(std::string_view name) const;
  const Rule* rule(std::string_view name) const;
  const Silence* silence_for(const Rule& r, std::string_view tenant, std::string_view device,
                             std::string_view metric, TimeNs t) const;
};

// Rule names: [A-Za-z0-9._:-]{1,64} (they appear in alert ids, URLs and file names).
bool valid_rule_name(std::string_view s);

// Loads and validates a rules file. Secret references are resolved here:
// "whsec_..." literally, "env:NAME" from the environment, "file:/path" from a file.
Result<RuleSet> load_rules(const std::string& path);
Result<RuleSet> parse_rules(std::string_view toml_text, const std::string& source);

// Resolves one secret reference and decodes it to the raw HMAC key. `what` names the
// field in errors ("webhooks[0] \"ops\": secrets[1]").
Result<std::string> resolve_secret(std::string_view ref, std::string_view what);

}  // namespace ep::alert
