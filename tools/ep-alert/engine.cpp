#include "engine.h"

#include <algorithm>

#include "ep/crypto.h"

namespace ep::alert {

const char* event_type_name(EventType t) {
  return t == EventType::kDetected ? "anomaly.detected" : "anomaly.resolved";
}

std::string make_alert_id(std::string_view rule, std::string_view tenant, std::string_view device,
                          std::string_view metric, TimeNs end) {
  std::string in;
  in.reserve(rule.size() + tenant.size() + device.size() + metric.size() + 48);
  in.append("ep-alert/v1").push_back('\0');
  in.append(rule).push_back('\0');
  in.append(tenant).push_back('\0');
  in.append(device).push_back('\0');
  in.append(metric).push_back('\0');
  in.append(std::to_string(end));
  crypto::Digest d = crypto::sha256(in);
  d[6] = static_cast<unsigned char>((d[6] & 0x0f) | 0x80);  // version 8 (RFC 9562 custom)
  d[8] = static_cast<unsigned char>((d[8] & 0x3f) | 0x80);  // variant 10
  std::string h = crypto::hex(d.data(), 16);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

void Engine::evaluate(const Score& s, std::vector<Event>& out) {
  for (const Rule& r : rules_.rules)
    if (r.selector.matches(s.tenant, s.device, s.metric)) evaluate_rule(r, s, out);
}

void Engine::emit(const Rule& r, EventType type, const Score& s, SeriesState& st,
                  std::string reason, std::vector<Event>& out) {
  if (reason.empty())
    if (const Silence* sil = rules_.silence_for(r, s.tenant, s.device, s.metric, s.end))
      reason = "silenced: " + sil->name;
  Event e;
  e.rule = &r;
  e.type = type;
  e.alert_id = make_alert_id(r.name, s.tenant, s.device, s.metric, s.end);
  e.score = &s;
  e.consecutive = st.consecutive;
  e.suppressed = std::move(reason);
  if (!e.suppressed.empty()) ++stats_.suppressed;
  else if (type == EventType::kDetected) ++stats_.detected;
  else ++stats_.resolved;
  out.push_back(std::move(e));
}

void Engine::evaluate_rule(const Rule& r, const Score& s, std::vector<Event>& out) {
  ++stats_.evaluated;
  key_ = State::series_key(r.name, s.tenant, s.device, s.metric);
  auto it = state_.series.find(key_);
  if (it == state_.series.end()) it = state_.series.emplace(key_, SeriesState{}).first;
  SeriesState& st = it->second;
  if (s.end <= st.last_end) {
    ++stats_.replayed;
    return;
  }
  st.last_end = s.end;

  if (r.anomalous(s.anomaly, s.score, s.label)) {
    if (st.consecutive < r.consecutive) ++st.consecutive;
    st.normal_since = kNever;
    if (st.firing || st.consecutive < r.consecutive) return;
    st.firing = true;
    if (r.flap_threshold) {
      st.fires.push_back(s.end);
      auto first_kept = std::find_if(st.fires.begin(), st.fires.end(),
                                     [&](TimeNs t) { return t > s.end - r.flap_window; });
      st.fires.erase(st.fires.begin(), first_kept);
    }
    std::string reason;
    if (const Silence* sil = rules_.silence_for(r, s.tenant, s.device, s.metric, s.end))
      reason = "silenced: " + sil->name;
    else if (st.last_notified != kNever && s.end - st.last_notified < r.cooldown)
      reason = "cooldown: last notified at " + format_rfc3339(st.last_notified) + ", cooldown " +
               format_duration(r.cooldown);
    st.notified = reason.empty();
    if (st.notified) st.last_notified = s.end;
    emit(r, EventType::kDetected, s, st, std::move(reason), out);
    return;
  }

  st.consecutive = 0;
  if (!st.firing) return;
  if (st.held) {
    if (st.normal_since == kNever) st.normal_since = s.end;
    if (s.end - st.normal_since < r.flap_window) return;
  } else if (r.flap_threshold) {
    auto recent = std::count_if(st.fires.begin(), st.fires.end(),
                                [&](TimeNs t) { return t > s.end - r.flap_window; });
    if (recent >= r.flap_threshold) {
      st.held = true;
      st.normal_since = s.end;
      emit(r, EventType::kResolved, s, st,
           "flapping: fired " + std::to_string(recent) + " times within " +
               format_duration(r.flap_window) + "; held firing until normal for " +
               format_duration(r.flap_window),
           out);
      return;
    }
  }
  bool was_notified = st.notified;
  if (st.held) st.fires.clear();
  st.firing = false;
  st.held = false;
  st.notified = false;
  st.normal_since = kNever;
  if (r.resolve && was_notified) emit(r, EventType::kResolved, s, st, {}, out);
}

}  // namespace ep::alert
