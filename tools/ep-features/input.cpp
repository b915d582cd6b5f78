#include "input.h"

#include <rapidjson/error/en.h>

#include <memory>

#include "ep/json.h"

namespace ep::features {
namespace {

Status name_field(const rapidjson::Value& o, const char* key, std::string_view path,
                  std::string_view& out) {
  auto r = get_string(o, key, path);
  if (!r) return r.status();
  if (r->empty()) return Status::data(json_path(path, key) + ": empty");
  out = *r;
  return Status::ok();
}

}  // namespace

RecordParser::RecordParser()
    : arena_(new char[kArenaBytes]), pool_(arena_.get(), kArenaBytes), doc_(&pool_) {}

Status RecordParser::parse(std::string_view line, PointSink& sink) {
  text_.assign(line);
  pool_.Clear();  // keeps the arena; frees only chunks a large line added
  doc_.ParseInsitu<rapidjson::kParseFullPrecisionFlag>(text_.data());
  if (doc_.HasParseError())
    return Status::data("invalid JSON at byte " + std::to_string(doc_.GetErrorOffset()) + ": " +
                        rapidjson::GetParseError_En(doc_.GetParseError()));
  if (!doc_.IsObject()) return Status::data("record is not a JSON object");
  auto kind = get_string(doc_, "kind");
  if (!kind) return kind.status();
  const rapidjson::Value& o = doc_;
  std::string_view tenant, device, metric;
  if (*kind == "point") {
    EP_RETURN_IF_ERROR(name_field(o, "tenant", {}, tenant));
    EP_RETURN_IF_ERROR(name_field(o, "device", {}, device));
    EP_RETURN_IF_ERROR(name_field(o, "metric", {}, metric));
    auto ts = get_time(o, "ts");
    if (!ts) return ts.status();
    auto value = get_number(o, "value");
    if (!value) return value.status();
    sink.on_point(tenant, device, metric, *ts, *value);
    return Status::ok();
  }
  if (*kind != "batch")
    return Status::data("kind: expected \"point\" or \"batch\", got \"" + std::string(*kind) + "\"");
  EP_RETURN_IF_ERROR(name_field(o, "tenant", {}, tenant));
  EP_RETURN_IF_ERROR(name_field(o, "device", {}, device));
  auto pts = o.FindMember("points");
  if (pts == o.MemberEnd() || !pts->value.IsArray()) return Status::data("points: required array");
  const auto& arr = pts->value;
  // Validate every point before handing any on: a batch is taken whole or not at all.
  // The field path is only spelled out for the error (no allocation per point).
  times_.resize(arr.Size());
  for (rapidjson::SizeType i = 0; i < arr.Size(); ++i) {
    const auto& p = arr[i];
    auto where = [i] { return "points[" + std::to_string(i) + "]"; };
    if (!p.IsObject()) return Status::data(where() + ": not an object");
    if (!name_field(p, "metric", {}, metric)) return name_field(p, "metric", where(), metric);
    auto ts = get_time(p, "ts");
    if (!ts) return get_time(p, "ts", where()).status();
    if (!get_number(p, "value")) return get_number(p, "value", where()).status();
    times_[i] = *ts;
  }
  for (rapidjson::SizeType i = 0; i < arr.Size(); ++i) {
    const auto& p = arr[i];
    const auto& m = p["metric"];
    sink.on_point(tenant, device, std::string_view(m.GetString(), m.GetStringLength()), times_[i],
                  p["value"].GetDouble());
  }
  return Status::ok();
}

}  // namespace ep::features
