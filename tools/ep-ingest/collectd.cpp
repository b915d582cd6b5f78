// collectd's write_http JSON format (docs/protocols.md, "collectd").
#include <cmath>

#include "ep/json.h"
#include "receivers.h"

namespace ep::ingest {

namespace {

std::string_view member_string(const rapidjson::Value& o, const char* key) {
  auto it = o.FindMember(key);
  if (it == o.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

const rapidjson::Value* member_array(const rapidjson::Value& o, const char* key) {
  auto it = o.FindMember(key);
  return it != o.MemberEnd() && it->value.IsArray() ? &it->value : nullptr;
}

// One collectd value list: {"values":[…],"dstypes":[…],"dsnames":[…],"time":…,
// "interval":…,"host":…,"plugin":…,"plugin_instance":…,"type":…,"type_instance":…}.
// The metric is plugin.type (plus .dsname when the type has several data sources or one
// not named "value"); plugin_instance and type_instance become labels; host is the device.
void read_value_list(const rapidjson::Value& v, size_t index, SampleSink& sink) {
  std::string where = "[" + std::to_string(index) + "]";
  if (!v.IsObject()) return sink.reject(where + ": not an object");
  const rapidjson::Value* values = member_array(v, "values");
  const rapidjson::Value* names = member_array(v, "dsnames");
  auto time = v.FindMember("time");
  std::string_view plugin = member_string(v, "plugin"), type = member_string(v, "type");
  if (!values || !names || values->Size() != names->Size())
    return sink.reject(where + ": values and dsnames: required, of the same length");
  size_t n = values->Size();
  if (time == v.MemberEnd() || !time->value.IsNumber() || plugin.empty() || type.empty())
    return sink.reject(where + ": time, plugin and type: required", n ? n : 1);
  double secs = time->value.GetDouble();
  if (!std::isfinite(secs) || std::fabs(secs) > 9e9) return sink.reject(where + ".time: out of range", n ? n : 1);
  // collectd prints times with millisecond digits ("%.3f"): rounded to microseconds first,
  // 1700000000.123 is …123 ms, not the double's …122.99 ms.
  auto ts = static_cast<TimeNs>(std::llround(secs * 1e6)) * 1000;
  Label labels[3];
  size_t nl = 0;
  labels[nl++] = {"host", member_string(v, "host")};
  if (auto pi = member_string(v, "plugin_instance"); !pi.empty()) labels[nl++] = {"plugin_instance", pi};
  if (auto ti = member_string(v, "type_instance"); !ti.empty()) labels[nl++] = {"type_instance", ti};
  std::string name;
  for (size_t i = 0; i < n; ++i) {
    const auto& val = (*values)[static_cast<rapidjson::SizeType>(i)];
    const auto& ds = (*names)[static_cast<rapidjson::SizeType>(i)];
    if (!ds.IsString()) {
      sink.reject(where + ".dsnames[" + std::to_string(i) + "]: not a string");
      continue;
    }
    std::string_view dsname(ds.GetString(), ds.GetStringLength());
    name.assign(plugin).append(".").append(type);
    if (n > 1 || dsname != "value") name.append(".").append(dsname);
    if (!val.IsNumber()) {
      sink.reject(where + ".values[" + std::to_string(i) + "]: not a number (collectd sends null for NaN)");
      continue;
    }
    sink.add(name, std::span<const Label>(labels, nl), ts, val.GetDouble());
  }
}

}  // namespace

Status parse_collectd(const http::Request&, std::string_view body, SampleSink& sink) {
  thread_local rapidjson::Document doc;
  EP_RETURN_IF_ERROR(parse_json<rapidjson::kParseFullPrecisionFlag>(body, doc));
  if (!doc.IsArray()) return Status::data("collectd JSON: expected an array of value lists");
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) read_value_list(doc[i], i, sink);
  return Status::ok();
}

}  // namespace ep::ingest
