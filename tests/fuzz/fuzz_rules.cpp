// libFuzzer target: ep-alert's rules file (tools/ep-alert/rules.cpp: TOML, then the
// validation of webhooks, rules and silences). Properties: a rejection names the file;
// an accepted rule set obeys every rule the loader checks (names, ranges, references).
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "rules.h"

using ep::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto set = ep::alert::parse_rules(in, "fuzz.toml");
  if (!set) {
    ep::fuzz::check_reason(set.status(), "parse_rules");
    check(set.status().message().rfind("fuzz.toml", 0) == 0, "an error names the file",
          set.status().message());
    return 0;
  }
  check(!set->rules.empty(), "a rule set has rules");
  for (const auto& w : set->webhooks) {
    check(w.url.rfind("http://", 0) == 0 || w.url.rfind("https://", 0) == 0, "webhook url");
    check(!w.keys.empty(), "a webhook has a secret");
    for (const auto& k : w.keys) check(k.size() >= 24 && k.size() <= 64, "secret size");
  }
  for (const auto& r : set->rules) {
    check(ep::alert::valid_rule_name(r.name), "rule name", r.name);
    check(set->rule(r.name) == &r, "rule names are unique", r.name);
    check(r.min_score >= 0 && r.min_score <= 1, "min_score in [0, 1]");
    check(r.consecutive >= 1 && r.consecutive <= 10000, "consecutive in range");
    check(r.cooldown >= 0 && r.flap_window >= 0, "durations are not negative");
    check(r.flap_threshold == 0 || (r.flap_threshold >= 2 && r.flap_window > 0), "flapping");
    check(!r.webhooks.empty(), "a rule notifies a webhook");
    for (size_t i : r.webhooks) check(i < set->webhooks.size(), "a rule's webhook exists");
    for (const auto* s : {&r.selector.tenant, &r.selector.device, &r.selector.metric})
      check(!s->empty(), "selectors are not empty");
  }
  for (const auto& s : set->silences) check(s.end > s.start, "a silence ends after it starts");
  return 0;
}
