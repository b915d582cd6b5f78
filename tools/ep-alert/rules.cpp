#include "rules.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>

#include "ep/crypto.h"
#include "ep/fsutil.h"
#include "ep/toml.h"

namespace ep::alert {

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::kInfo: return "info";
    case Severity::kWarning: return "warning";
    case Severity::kCritical: return "critical";
  }
  return "warning";
}

namespace {

bool glob(const std::string& pattern, std::string_view s) {
  if (pattern == "*") return true;
  std::string str(s);  // fnmatch needs NUL-terminated strings
  return ::fnmatch(pattern.c_str(), str.c_str(), 0) == 0;
}

// Builds "file:line: <what>: <field>: <reason>" messages for one table.
class Ctx {
 public:
  Ctx(const std::string& source, std::string what, const toml::table& t)
      : source_(source), what_(std::move(what)), table_(t) {}

  // `field` names the key in the message; `at` (default: field) locates the line.
  Status error(std::string_view field, std::string_view reason,
               std::string_view at = {}) const {
    if (at.empty()) at = field;
    const toml::node* n = at.empty() ? nullptr : table_.get(at);
    auto line = n ? n->source().begin.line : table_.source().begin.line;
    std::string msg = source_;
    if (line) msg += ":" + std::to_string(line);
    msg += ": " + what_ + ": ";
    if (!field.empty()) msg += std::string(field) + ": ";
    msg += reason;
    return Status::usage(std::move(msg));
  }

  Status check_keys(std::initializer_list<std::string_view> allowed) const {
    for (const auto& [k, v] : table_) {
      if (std::find(allowed.begin(), allowed.end(), k.str()) == allowed.end())
        return error(k.str(), "unknown key");
    }
    return Status::ok();
  }

  Status str(std::string_view key, std::string& out, bool required) const {
    const toml::node* n = table_.get(key);
    if (!n) return required ? error(key, "required") : Status::ok();
    auto v = n->value<std::string>();
    if (!v || !n->is_string()) return error(key, "must be a string");
    out = *v;
    return Status::ok();
  }

  Status duration(std::string_view key, TimeNs& out) const {
    const toml::node* n = table_.get(key);
    if (!n) return Status::ok();
    std::optional<TimeNs> d;
    if (n->is_string()) d = parse_duration(*n->value<std::string>());
    else if (n->is_integer()) d = seconds_to_ns(*n->value<std::int64_t>());
    if (!d || *d < 0 || *d > kMaxDuration)
      return error(key, "must be a duration like \"30s\", \"5m\", \"1h\"");
    out = *d;
    return Status::ok();
  }

  Status time(std::string_view key, TimeNs& out, bool required) const {
    const toml::node* n = table_.get(key);
    if (!n) return required ? error(key, "required") : Status::ok();
    std::optional<TimeNs> t;
    if (n->is_string()) t = parse_rfc3339(*n->value<std::string>());
    if (!t) return error(key, "must be an RFC 3339 timestamp string");
    out = *t;
    return Status::ok();
  }

  Status integer(std::string_view key, int& out, int lo, int hi) const {
    const toml::node* n = table_.get(key);
    if (!n) return Status::ok();
    if (!n->is_integer() || *n->value<std::int64_t>() < lo || *n->value<std::int64_t>() > hi)
      return error(key, "must be an integer in [" + std::to_string(lo) + ", " +
                            std::to_string(hi) + "]");
    out = static_cast<int>(*n->value<std::int64_t>());
    return Status::ok();
  }

  Status boolean(std::string_view key, bool& out) const {
    const toml::node* n = table_.get(key);
    if (!n) return Status::ok();
    if (!n->is_boolean()) return error(key, "must be true or false");
    out = *n->value<bool>();
    return Status::ok();
  }

  // A string or an array of strings.
  Status strings(std::string_view key, std::vector<std::string>& out) const {
    const toml::node* n = table_.get(key);
    if (!n) return Status::ok();
    out.clear();
    if (n->is_string()) {
      out.push_back(*n->value<std::string>());
      return Status::ok();
    }
    const toml::array* a = n->as_array();
    if (!a) return error(key, "must be a string or an array of strings");
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      if (!e.is_string())
        return error(key, "[" + std::to_string(i) + "] must be a string");
      out.push_back(*e.value<std::string>());
    }
    return Status::ok();
  }

  Status selector(Selector& s) const {
    EP_RETURN_IF_ERROR(str("tenant", s.tenant, false));
    EP_RETURN_IF_ERROR(str("device", s.device, false));
    EP_RETURN_IF_ERROR(str("metric", s.metric, false));
    for (auto [k, v] : {std::pair{"tenant", &s.tenant}, {"device", &s.device}, {"metric", &s.metric}})
      if (v->empty()) return error(k, "must not be empty (use \"*\" for any)");
    return Status::ok();
  }

  const std::string& what() const { return what_; }
  const toml::table& table() const { return table_; }

 private:
  const std::string& source_;
  std::string what_;
  const toml::table& table_;
};

std::string describe(std::string_view list, size_t i, const toml::table& t) {
  std::string s = std::string(list) + "[" + std::to_string(i) + "]";
  if (auto name = t["name"].value<std::string>()) s += " \"" + *name + "\"";
  return s;
}

// Iterates an array of tables `[[key]]`; an absent key is an empty list.
Result<const toml::array*> tables(const toml::table& root, std::string_view key,
                                  const std::string& source) {
  const toml::node* n = root.get(key);
  if (!n) return static_cast<const toml::array*>(nullptr);
  const toml::array* a = n->as_array();
  bool ok = a != nullptr;
  if (ok)
    for (const auto& e : *a) ok = ok && e.is_table();
  if (!ok)
    return Status::usage(source + ":" + std::to_string(n->source().begin.line) + ": " +
                         std::string(key) + ": must be an array of tables ([[" +
                         std::string(key) + "]])");
  return a;
}

Status parse_webhook(const Ctx& c, Webhook& w) {
  EP_RETURN_IF_ERROR(c.check_keys({"name", "url", "secrets", "secret"}));
  EP_RETURN_IF_ERROR(c.str("name", w.name, true));
  EP_RETURN_IF_ERROR(c.str("url", w.url, true));
  if (w.url.rfind("https://", 0) != 0 && w.url.rfind("http://", 0) != 0)
    return c.error("url", "must start with https:// or http://");
  std::vector<std::string> refs, one;
  EP_RETURN_IF_ERROR(c.strings("secrets", refs));
  EP_RETURN_IF_ERROR(c.strings("secret", one));
  refs.insert(refs.end(), one.begin(), one.end());
  if (refs.empty()) return c.error("secrets", "required (\"whsec_...\", \"env:NAME\" or \"file:PATH\")");
  if (refs.size() > 2) return c.error("secrets", "at most two active secrets (during a rotation)");
  const char* field = c.table().get("secrets") ? "secrets" : "secret";
  for (size_t i = 0; i < refs.size(); ++i) {
    auto key = resolve_secret(refs[i], std::string(field) + "[" + std::to_string(i) + "]");
    if (!key) return c.error("", key.status().message(), field);
    w.keys.push_back(std::move(key).value());
  }
  return Status::ok();
}

Status parse_rule(const Ctx& c, const RuleSet& set, Rule& r) {
  EP_RETURN_IF_ERROR(c.check_keys({"name", "tenant", "device", "metric", "min_score", "labels",
                                   "consecutive", "cooldown", "resolve", "severity", "webhooks",
                                   "webhook", "flap_threshold", "flap_window"}));
  EP_RETURN_IF_ERROR(c.str("name", r.name, true));
  if (!valid_rule_name(r.name)) return c.error("name", "must match [A-Za-z0-9._:-]{1,64}");
  EP_RETURN_IF_ERROR(c.selector(r.selector));
  if (const toml::node* n = c.table().get("min_score")) {
    auto v = n->value<double>();
    if (!v || !(n->is_number()) || !std::isfinite(*v) || *v < 0 || *v > 1)
      return c.error("min_score", "must be a number in [0, 1]");
    r.min_score = *v;
  }
  EP_RETURN_IF_ERROR(c.strings("labels", r.labels));
  for (const auto& l : r.labels) {
    static constexpr std::string_view kLabels[] = {"normal", "spike", "drop", "drift",
                                                   "missingness", "stuck"};
    if (std::find(std::begin(kLabels), std::end(kLabels), l) == std::end(kLabels))
      return c.error("labels", "unknown label \"" + l +
                                   "\" (normal, spike, drop, drift, missingness, stuck)");
  }
  EP_RETURN_IF_ERROR(c.integer("consecutive", r.consecutive, 1, 10000));
  EP_RETURN_IF_ERROR(c.duration("cooldown", r.cooldown));
  EP_RETURN_IF_ERROR(c.boolean("resolve", r.resolve));
  std::string sev = "warning";
  EP_RETURN_IF_ERROR(c.str("severity", sev, false));
  if (sev == "info") r.severity = Severity::kInfo;
  else if (sev == "warning") r.severity = Severity::kWarning;
  else if (sev == "critical") r.severity = Severity::kCritical;
  else return c.error("severity", "must be info, warning or critical");
  std::vector<std::string> hooks, one;
  EP_RETURN_IF_ERROR(c.strings("webhooks", hooks));
  EP_RETURN_IF_ERROR(c.strings("webhook", one));
  hooks.insert(hooks.end(), one.begin(), one.end());
  if (hooks.empty()) return c.error("webhooks", "required (names of [[webhooks]] entries)");
  for (const auto& h : hooks) {
    auto it = std::find_if(set.webhooks.begin(), set.webhooks.end(),
                           [&](const Webhook& w) { return w.name == h; });
    if (it == set.webhooks.end()) return c.error("webhooks", "no webhook named \"" + h + "\"");
    size_t idx = static_cast<size_t>(it - set.webhooks.begin());
    if (std::find(r.webhooks.begin(), r.webhooks.end(), idx) == r.webhooks.end())
      r.webhooks.push_back(idx);
  }
  EP_RETURN_IF_ERROR(c.integer("flap_threshold", r.flap_threshold, 0, 1000));
  r.flap_window = r.flap_threshold ? 3600 * kNsPerSec : 0;
  EP_RETURN_IF_ERROR(c.duration("flap_window", r.flap_window));
  if (r.flap_threshold == 1) return c.error("flap_threshold", "must be 0 (off) or at least 2");
  if (r.flap_threshold && r.flap_window == 0)
    return c.error("flap_window", "must be positive when flap_threshold is set");
  return Status::ok();
}

Status parse_silence(const Ctx& c, const RuleSet& set, Silence& s) {
  EP_RETURN_IF_ERROR(c.check_keys({"name", "rule", "tenant", "device", "metric", "start", "end"}));
  EP_RETURN_IF_ERROR(c.str("name", s.name, false));
  EP_RETURN_IF_ERROR(c.str("rule", s.rule, false));
  if (s.rule != "*" && s.rule.find_first_of("*?[") == std::string::npos && !set.rule(s.rule))
    return c.error("rule", "no rule named \"" + s.rule + "\"");
  EP_RETURN_IF_ERROR(c.selector(s.selector));
  EP_RETURN_IF_ERROR(c.time("start", s.start, false));
  EP_RETURN_IF_ERROR(c.time("end", s.end, true));
  if (s.end <= s.start) return c.error("end", "must be after start");
  if (s.name.empty()) s.name = s.selector.tenant + "/" + s.selector.device + "/" + s.selector.metric;
  return Status::ok();
}

}  // namespace

bool valid_rule_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != ':' &&
        ch != '-')
      return false;
  return true;
}

bool Selector::matches(std::string_view t, std::string_view d, std::string_view m) const {
  return glob(tenant, t) && glob(device, d) && glob(metric, m);
}

bool Rule::anomalous(bool anomaly, double score, std::string_view label) const {
  if (!anomaly || score < min_score) return false;
  return labels.empty() || std::find(labels.begin(), labels.end(), label) != labels.end();
}

bool Silence::covers(std::string_view rule_name, std::string_view t, std::string_view d,
                     std::string_view m, TimeNs ts) const {
  return ts >= start && ts < end && glob(rule, rule_name) && selector.matches(t, d, m);
}

const Webhook* RuleSet::webhook(std::string_view name) const {
  for (const auto& w : webhooks)
    if (w.name == name) return &w;
  return nullptr;
}

const Rule* RuleSet::rule(std::string_view name) const {
  for (const auto& r : rules)
    if (r.name == name) return &r;
  return nullptr;
}

const Silence* RuleSet::silence_for(const Rule& r, std::string_view t, std::string_view d,
                                    std::string_view m, TimeNs ts) const {
  for (const auto& s : silences)
    if (s.covers(r.name, t, d, m, ts)) return &s;
  return nullptr;
}

Result<std::string> resolve_secret(std::string_view ref, std::string_view what) {
  std::string value;
  std::string origin;
  if (ref.rfind("env:", 0) == 0) {
    std::string name(ref.substr(4));
    const char* v = std::getenv(name.c_str());
    if (!v || !*v)
      return Status::usage(std::string(what) + ": environment variable " + name + " is not set");
    value = v;
    origin = " (from $" + name + ")";
  } else if (ref.rfind("file:", 0) == 0) {
    std::string path(ref.substr(5));
    auto text = fs::read_file(path);
    if (!text) return Status::usage(std::string(what) + ": " + text.status().message());
    value = std::move(text).value();
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
    origin = " (from " + path + ")";
  } else {
    value = std::string(ref);
  }
  if (value.rfind("whsec_", 0) != 0)
    return Status::usage(std::string(what) + ": must start with whsec_" + origin);
  auto key = crypto::unbase64(std::string_view(value).substr(6));
  if (!key) return Status::usage(std::string(what) + ": not valid base64 after whsec_" + origin);
  if (key->size() < 24 || key->size() > 64)
    return Status::usage(std::string(what) + ": key must be 24 to 64 bytes, got " +
                         std::to_string(key->size()) + origin);
  return std::move(key).value();
}

Result<RuleSet> parse_rules(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return Status::usage(source + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) +
                         ": " + std::string(e.description()));
  }
  RuleSet set;
  set.source = source;
  Ctx top(set.source, "top level", root);
  EP_RETURN_IF_ERROR(top.check_keys({"webhooks", "rules", "silences"}));

  auto hooks = tables(root, "webhooks", set.source);
  if (!hooks) return hooks.status();
  if (*hooks)
    for (size_t i = 0; i < (*hooks)->size(); ++i) {
      const auto& t = *(*hooks)->get(i)->as_table();
      Ctx c(set.source, describe("webhooks", i, t), t);
      Webhook w;
      EP_RETURN_IF_ERROR(parse_webhook(c, w));
      if (set.webhook(w.name)) return c.error("name", "duplicate webhook name");
      set.webhooks.push_back(std::move(w));
    }

  auto rules = tables(root, "rules", set.source);
  if (!rules) return rules.status();
  if (!*rules || (*rules)->empty())
    return Status::usage(set.source + ": no rules ([[rules]] tables) defined");
  for (size_t i = 0; i < (*rules)->size(); ++i) {
    const auto& t = *(*rules)->get(i)->as_table();
    Ctx c(set.source, describe("rules", i, t), t);
    Rule r;
    EP_RETURN_IF_ERROR(parse_rule(c, set, r));
    if (set.rule(r.name)) return c.error("name", "duplicate rule name");
    set.rules.push_back(std::move(r));
  }

  auto silences = tables(root, "silences", set.source);
  if (!silences) return silences.status();
  if (*silences)
    for (size_t i = 0; i < (*silences)->size(); ++i) {
      const auto& t = *(*silences)->get(i)->as_table();
      Ctx c(set.source, describe("silences", i, t), t);
      Silence s;
      EP_RETURN_IF_ERROR(parse_silence(c, set, s));
      set.silences.push_back(std::move(s));
    }
  return set;
}

Result<RuleSet> load_rules(const std::string& path) {
  auto text = fs::read_file(path);
  if (!text) return Status::usage("--rules: " + text.status().message());
  return parse_rules(*text, path);
}

}  // namespace ep::alert
