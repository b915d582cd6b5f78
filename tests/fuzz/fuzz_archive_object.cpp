// libFuzzer target: reading a stored archive object (tools/ep-archive/check_object.cpp,
// used by replay and verify): one NDJSON batch record whose tenant, batch_id and day
// match its key and whose sha256 matches its raw bytes. The input is the object's bytes,
// checked against a fixed key and against the key its own record names. Properties: a
// rejection names its reason; an accepted object is a batch record of its key; a batch
// record re-serialised (as a stage passes it on) and stored again is still accepted.
#include <cstdint>
#include <string>
#include <string_view>

#include "../../common/src/archive_internal.h"
#include "archive_tool.h"
#include "ep/json.h"
#include "ep/records.h"
#include "fuzz_check.h"

using ep::fuzz::check;
namespace ad = ep::archive_detail;

namespace {

// The ArchiveObject the archive lists for a key (list() fills these from the key).
std::optional<ep::ArchiveObject> object_at(const std::string& key) {
  auto kp = ad::parse_key(key);
  if (!kp) return std::nullopt;
  ep::ArchiveObject o;
  o.key = key;
  o.tenant = kp->tenant;
  o.batch_id = kp->batch_id;
  o.received_at = ad::day_start(kp->day);
  o.uri = "file:///fuzz/" + key;
  return o;
}

void check_against(std::string_view bytes, const ep::ArchiveObject& o) {
  rapidjson::Document doc;
  ep::Status st = ep::archive_tool::check_object(bytes, o, doc);
  if (!st) {
    ep::fuzz::check_reason(st, "check_object");
    return;
  }
  check(ep::kind_of(doc) == ep::Kind::kBatch, "an accepted object is a batch record");
  check(*ep::get_string(doc, "batch_id") == o.batch_id && *ep::get_string(doc, "tenant") == o.tenant,
        "an accepted object is the batch its key names");
  ep::Batch b;
  if (!ep::parse_record(doc, b)) return;  // points are not the archive's business
  std::string again = ad::object_bytes(ep::to_ndjson(b));
  rapidjson::Document doc2;
  ep::Status st2 = ep::archive_tool::check_object(again, o, doc2);
  check(st2.is_ok(), "a re-serialised batch record is still a valid object", st2.message());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  static const auto fixed = object_at("acme/2026/01/01/b-1.json");
  check_against(in, *fixed);
  // The key the record itself names, when it names a storable one.
  rapidjson::Document doc;
  std::string_view line = in.substr(0, in.find('\n'));
  if (!ep::parse_json(line, doc) || !doc.IsObject()) return 0;
  auto tenant = ep::get_string(doc, "tenant");
  auto id = ep::get_string(doc, "batch_id");
  auto received = ep::get_time(doc, "received_at");
  if (!tenant || !id || !received) return 0;
  ep::ArchivePut put{std::string(*tenant), std::string(*id), *received, "x"};
  if (!ad::validate_put(put)) return 0;
  auto o = object_at(ad::object_key(put.tenant, put.received_at, put.batch_id));
  check(o.has_value(), "the key of a valid put parses", put.tenant + "/" + put.batch_id);
  check_against(in, *o);
  return 0;
}
