// The synthetic fleet: metric profiles, anomaly planning and sample generation.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "ep/json.h"
#include "ep/records.h"
#include "rng.h"
#include "sim.h"

namespace ep::sim {
namespace {

constexpr TimeNs kDay = 86400 * kNsPerSec;
constexpr TimeNs kMinute = 60 * kNsPerSec;
constexpr double kArPhi = 0.7;                      // AR(1) noise memory
constexpr double kArScale = 0.71414284285428499;    // sqrt(1 - phi^2): stationary std = noise

struct Profile {
  const char* name;
  const char* unit;
  double level, amplitude, noise;
  int interval_mult, decimals;
  double lo, hi;
};
// Built-in shapes of common telemetry (docs/ep-sim.md). Other names get a shape derived
// from the name.
constexpr Profile kProfiles[] = {
    {"temp", "C", 21.0, 3.0, 0.15, 1, 2, -40, 85},
    {"temperature", "C", 21.0, 3.0, 0.15, 1, 2, -40, 85},
    {"humidity", "%", 45.0, 8.0, 0.8, 2, 1, 0, 100},
    {"voltage", "V", 230.0, 1.5, 0.6, 1, 1, 0, 1e9},
    {"current", "A", 8.0, 3.0, 0.2, 1, 2, 0, 1e9},
    {"power", "W", 1800.0, 600.0, 40.0, 1, 0, 0, 1e9},
    {"pressure", "hPa", 1013.0, 1.2, 0.15, 5, 1, 800, 1100},
    {"cpu", "%", 35.0, 15.0, 4.0, 1, 1, 0, 100},
    {"rpm", "rpm", 1500.0, 50.0, 10.0, 1, 0, 0, 1e9},
};

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

constexpr std::int64_t kPow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};

void append_fixed(std::string& out, double v, int decimals) {
  std::int64_t scale = kPow10[decimals];
  std::int64_t q = std::llround(v * static_cast<double>(scale));
  if (q < 0) {
    out.push_back('-');
    q = -q;
  }
  out.append(std::to_string(q / scale));
  if (decimals > 0) {
    std::string frac = std::to_string(q % scale);
    out.push_back('.');
    out.append(static_cast<size_t>(decimals) - frac.size(), '0');
    out.append(frac);
  }
}

double signal_std(const MetricSpec& m) {
  return std::sqrt(m.noise * m.noise + m.amplitude * m.amplitude / 2);
}

}  // namespace

const char* label_name(Label l) {
  switch (l) {
    case Label::kSpike: return "spike";
    case Label::kDrop: return "drop";
    case Label::kDrift: return "drift";
    case Label::kStuck: return "stuck";
    case Label::kMissingness: return "missingness";
  }
  return "?";
}

TimeNs default_start(TimeNs now, TimeNs duration) {
  TimeNs t = now - duration;
  TimeNs rem = ((t % kMinute) + kMinute) % kMinute;
  return rem ? t - rem + kMinute : t;
}

Result<std::vector<MetricSpec>> parse_metrics(const std::string& list, TimeNs base) {
  std::vector<MetricSpec> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string item = list.substr(start, comma - start);
    start = comma + 1;
    if (item.empty()) return Status::usage("--metrics: empty metric name in \"" + list + "\"");
    MetricSpec m;
    m.name = item;
    TimeNs override_interval = 0;
    if (size_t colon = item.rfind(':'); colon != std::string::npos) {
      if (auto d = parse_duration(item.substr(colon + 1))) {
        m.name = item.substr(0, colon);
        override_interval = *d;
      }
    }
    if (!valid_name(m.name)) return Status::usage("--metrics: not a valid metric name: \"" + m.name + "\"");
    for (const auto& other : out)
      if (other.name == m.name) return Status::usage("--metrics: " + m.name + " given twice");
    int mult = 1;
    const Profile* p = nullptr;
    for (const auto& prof : kProfiles)
      if (m.name == prof.name) p = &prof;
    if (p) {
      m.unit = p->unit;
      m.level = p->level;
      m.amplitude = p->amplitude;
      m.noise = p->noise;
      m.decimals = p->decimals;
      m.lo = p->lo;
      m.hi = p->hi;
      mult = p->interval_mult;
    } else {
      // A stable shape derived from the name alone.
      Rng r(fnv1a(m.name));
      m.level = std::floor(r.uniform(10, 1000) * 10) / 10;
      m.amplitude = 0.05 * m.level;
      m.noise = 0.01 * m.level;
      m.decimals = 2;
    }
    m.interval = override_interval ? override_interval : base * mult;
    if (m.interval <= 0 || m.interval % kNsPerMs != 0)
      return Status::usage("--metrics " + item + ": the interval must be a positive whole number of ms");
    out.push_back(std::move(m));
    if (comma == list.size()) break;
  }
  return out;
}

Result<Fleet> Fleet::make(const Options& o) {
  if (o.devices < 1 || o.devices > 1000000) return Status::usage("--devices must be in 1..1000000");
  if (o.duration <= 0) return Status::usage("--duration must be positive");
  if (o.interval <= 0 || o.interval % kNsPerMs != 0)
    return Status::usage("--interval must be a positive whole number of ms");
  if (!(o.anomaly_rate >= 0 && o.anomaly_rate <= 1000)) return Status::usage("--anomaly-rate must be in 0..1000");
  if (!valid_name(o.device_prefix + "1")) return Status::usage("--device-prefix: not a valid name prefix");
  Fleet f;
  f.o_ = o;
  auto metrics = parse_metrics(o.metrics, o.interval);
  if (!metrics) return metrics.status();
  f.metrics_ = std::move(metrics).value();
  f.tick_ = 0;
  for (const auto& m : f.metrics_) {
    f.tick_ = std::gcd(f.tick_, m.interval);
    f.samples_.push_back((o.duration + m.interval - 1) / m.interval);
  }
  // Each device reports at a fixed offset into the tick (as real devices do), whole ms.
  for (int d = 0; d < o.devices; ++d) {
    Rng r(mix(o.seed, 0xD0000000ull + static_cast<std::uint64_t>(d)));
    f.offsets_.push_back(r.between(0, std::max<TimeNs>(0, f.tick_ / kNsPerMs / 2 - 1)) * kNsPerMs);
  }
  for (int d = 0; d < o.devices; ++d) {
    for (size_t m = 0; m < f.metrics_.size(); ++m) {
      const MetricSpec& spec = f.metrics_[m];
      Rng r(mix(mix(o.seed, static_cast<std::uint64_t>(d) + 1), m + 1));
      Series s;
      s.level = spec.level * (1 + r.uniform(-0.05, 0.05));
      s.amplitude = spec.amplitude * r.uniform(0.8, 1.2);
      // Daily peak around 15:00 UTC, ±1 h per series.
      constexpr double kTwoPi = 6.283185307179586;
      double peak = (15.0 + r.uniform(-1, 1)) / 24.0;
      s.phase = kTwoPi * peak - kTwoPi / 4;
      s.trend_per_day = r.uniform(-0.1, 0.1) * signal_std(spec);
      s.noise = spec.noise;
      s.seed = r.next();
      f.series_.push_back(s);
    }
  }
  f.plan_anomalies();
  return f;
}

void Fleet::plan_anomalies() {
  const double days = static_cast<double>(o_.duration) / static_cast<double>(kDay);
  const TimeNs warmup = std::min<TimeNs>(static_cast<TimeNs>(static_cast<double>(o_.duration) * o_.warmup_fraction),
                                         o_.max_warmup);
  const int nm = static_cast<int>(metrics_.size());
  for (int d = 0; d < o_.devices; ++d) {
    for (int m = 0; m < nm; ++m) {
      const int s = d * nm + m;
      const MetricSpec& spec = metrics_[m];
      Rng r(mix(mix(o_.seed ^ 0xA40A11E5ull, static_cast<std::uint64_t>(d) + 1), static_cast<std::uint64_t>(m) + 1));
      double expected = o_.anomaly_rate * days;
      std::int64_t n = static_cast<std::int64_t>(std::floor(expected));
      if (r.uniform() < expected - static_cast<double>(n)) ++n;
      const std::int64_t first_idx = (warmup + spec.interval - 1) / spec.interval;
      const std::int64_t usable = samples_[m] - first_idx;
      n = std::min<std::int64_t>(n, usable / 8);  // each anomaly needs room around it
      if (n <= 0) continue;
      const std::int64_t slot = usable / n;
      const double S = signal_std(spec);
      auto samples_for = [&](TimeNs lo, TimeNs hi, std::int64_t min) {
        TimeNs dur = lo + static_cast<TimeNs>(r.uniform() * static_cast<double>(hi - lo));
        return std::max<std::int64_t>(min, dur / spec.interval);
      };
      for (std::int64_t j = 0; j < n; ++j) {
        Anomaly a;
        a.device = d;
        a.metric = m;
        // Labels rotate per series and per anomaly, so every label occurs once there are
        // five anomalies anywhere in the fleet.
        a.label = static_cast<Label>((s + j) % kLabelCount);
        switch (a.label) {
          case Label::kSpike:
            a.count = r.between(1, 3);
            a.shape = "spike";
            a.magnitude = r.uniform(5, 10) * S;
            break;
          case Label::kDrop:
            a.count = r.between(3, 10);
            a.shape = "dip";
            a.magnitude = -r.uniform(5, 10) * S;
            break;
          case Label::kDrift: {
            bool level = r.uniform() < 0.5;
            a.shape = level ? "level_shift" : "trend";
            // Trends are slow: 4-12 h to reach their full size.
            a.count = level ? samples_for(2 * 60 * kMinute, 8 * 60 * kMinute, 8)
                            : samples_for(4 * 60 * kMinute, 12 * 60 * kMinute, 8);
            double sign = r.uniform() < 0.5 ? -1 : 1;
            a.magnitude = sign * r.uniform(3, 6) * S;
            break;
          }
          case Label::kStuck:
            // Half repeat one value exactly; half jitter by one step of the reported
            // resolution around it (an ADC that still toggles its last bit).
            a.count = samples_for(30 * kMinute, 180 * kMinute, 5);
            a.shape = r.uniform() < 0.5 ? "flat" : "jitter";
            break;
          case Label::kMissingness:
            // From a few minutes (a gap inside one or two windows) to hours.
            a.count = samples_for(3 * spec.interval, 180 * kMinute, 3);
            a.shape = "gap";
            break;
        }
        a.count = std::max<std::int64_t>(1, std::min(a.count, slot / 2));
        const std::int64_t slot_start = first_idx + j * slot;
        a.first = slot_start + r.between(0, slot - a.count);
        a.start = o_.start + offsets_[d] + a.first * spec.interval;
        a.end = a.start + (a.count - 1) * spec.interval;
        const double scale = static_cast<double>(kPow10[spec.decimals]);
        a.magnitude = std::round(a.magnitude * scale) / scale;
        anomalies_.push_back(std::move(a));
      }
    }
  }
  std::sort(anomalies_.begin(), anomalies_.end(), [](const Anomaly& x, const Anomaly& y) {
    if (x.start != y.start) return x.start < y.start;
    if (x.device != y.device) return x.device < y.device;
    return x.metric < y.metric;
  });
}

std::string Fleet::device_name(int d) const {
  std::string num = std::to_string(d + 1);
  size_t width = std::max<size_t>(3, std::to_string(o_.devices).size());
  return o_.device_prefix + std::string(width - std::min(width, num.size()), '0') + num;
}

std::string Fleet::truth_line(const Anomaly& a) const {
  JsonWriter w;
  w.start_object();
  w.kv("kind", "truth");
  w.kv("tenant", o_.tenant);
  w.kv("device", device_name(a.device));
  w.kv("metric", metrics_[a.metric].name);
  w.kv_time("start", a.start);
  w.kv_time("end", a.end);
  w.kv("type", label_name(a.label));
  w.kv("shape", a.shape);
  w.kv("magnitude", a.magnitude);
  w.kv("samples", static_cast<std::int64_t>(a.count));
  w.end_object();
  return w.take();
}

bool Fleet::generate(const std::function<bool(std::string_view)>& sink, Stats& stats) const {
  const int nm = static_cast<int>(metrics_.size());
  struct State {
    Rng rng{0};
    double ar = 0, stuck = 0;
    std::vector<const Anomaly*> anomalies;  // by first sample
    size_t next = 0;
  };
  std::vector<State> st(series_.size());
  for (size_t s = 0; s < series_.size(); ++s) st[s].rng = Rng(series_[s].seed);
  for (const auto& a : anomalies_) st[static_cast<size_t>(a.device * nm + a.metric)].anomalies.push_back(&a);
  for (auto& s : st)
    std::sort(s.anomalies.begin(), s.anomalies.end(),
              [](const Anomaly* x, const Anomaly* y) { return x->first < y->first; });

  constexpr double kTwoPi = 6.283185307179586;
  const std::int64_t ticks = (o_.duration + tick_ - 1) / tick_;
  std::vector<std::string> names;
  for (int d = 0; d < o_.devices; ++d) names.push_back(device_name(d));
  std::string line;
  line.reserve(256);
  for (std::int64_t k = 0; k < ticks; ++k) {
    const TimeNs rel = k * tick_;
    for (int d = 0; d < o_.devices; ++d) {
      const TimeNs ts = o_.start + offsets_[d] + rel;
      line.assign("{\"device_external_id\":\"");
      line.append(names[d]);
      line.append("\",\"metrics\":[");
      int n = 0;
      for (int m = 0; m < nm; ++m) {
        const MetricSpec& spec = metrics_[m];
        if (rel % spec.interval != 0) continue;
        const std::int64_t idx = rel / spec.interval;
        if (idx >= samples_[m]) continue;
        const Series& se = series_[static_cast<size_t>(d * nm + m)];
        State& s = st[static_cast<size_t>(d * nm + m)];
        // The normal signal: level + daily cycle + trend + AR(1) noise. The noise stream
        // advances for every sample, gap or not, so anomalies never change the rest.
        const TimeNs in_day = ((ts % kDay) + kDay) % kDay;
        const double frac = static_cast<double>(in_day) / static_cast<double>(kDay);
        s.ar = kArPhi * s.ar + se.noise * kArScale * s.rng.normal();
        double v = se.level + se.amplitude * det_sin(kTwoPi * frac - se.phase) +
                   se.trend_per_day * static_cast<double>(ts - o_.start) / static_cast<double>(kDay) + s.ar;
        v = std::clamp(v, spec.lo, spec.hi);
        while (s.next < s.anomalies.size() && s.anomalies[s.next]->first + s.anomalies[s.next]->count <= idx)
          ++s.next;
        if (s.next < s.anomalies.size() && s.anomalies[s.next]->first <= idx) {
          const Anomaly& a = *s.anomalies[s.next];
          switch (a.label) {
            case Label::kSpike:
            case Label::kDrop: v += a.magnitude; break;
            case Label::kDrift:
              v += a.shape == "trend" ? a.magnitude * static_cast<double>(idx - a.first + 1) / static_cast<double>(a.count)
                                      : a.magnitude;
              break;
            case Label::kStuck:
              // Stuck at the series' usual value of that moment (no noise): a plausible
              // reading, never an extreme.
              if (idx == a.first) s.stuck = std::clamp(v - s.ar, spec.lo, spec.hi);
              v = s.stuck;
              if (a.shape == "jitter") {
                const double lsb = 1.0 / static_cast<double>(kPow10[spec.decimals]);
                Rng j(mix(se.seed ^ 0x51ACull, static_cast<std::uint64_t>(idx)));
                v += static_cast<double>(j.between(-1, 1)) * lsb;
              }
              break;
            case Label::kMissingness: stats.dropped++; continue;
          }
        }
        if (n++) line.push_back(',');
        line.append("{\"name\":\"");
        line.append(spec.name);
        line.append("\",\"ts\":\"");
        append_rfc3339(line, ts);
        line.append("\",\"value\":");
        append_fixed(line, v, spec.decimals);
        if (!spec.unit.empty()) {
          line.append(",\"unit\":\"");
          line.append(spec.unit);
          line.push_back('"');
        }
        line.push_back('}');
      }
      if (n == 0) continue;
      line.append("]}");
      stats.payloads++;
      stats.points += static_cast<std::uint64_t>(n);
      if (!sink(line)) return false;
    }
  }
  return true;
}

}  // namespace ep::sim
