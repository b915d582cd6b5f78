// libFuzzer target: the generic JSON helpers of common/include/ep/json.h on arbitrary
// input: parse_json (copying and in situ), to_json, and the typed field getters on every
// member of an object. Properties: a rejection names its reason; both parses agree; a
// parsed document serialises to JSON that parses back to the same serialisation; a
// getter succeeds exactly when the member has its type.
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ep/json.h"
#include "ep/records.h"
#include "fuzz_check.h"

using ep::fuzz::check;

namespace {

void check_getters(const rapidjson::Value& obj) {
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    std::string key(it->name.GetString(), it->name.GetStringLength());
    // The getters take NUL-terminated keys: a key with a NUL finds an earlier member.
    if (key.find('\0') != std::string::npos) continue;
    auto found = obj.FindMember(key.c_str());
    const rapidjson::Value& v = found->value;
    auto s = ep::get_string(obj, key.c_str(), "obj");
    check(s.is_ok() == v.IsString(), "get_string succeeds exactly on strings", key);
    if (!s) ep::fuzz::check_reason(s.status(), "get_string");
    check(ep::opt_string(obj, key.c_str()).has_value() == v.IsString(), "opt_string", key);
    auto n = ep::get_number(obj, key.c_str(), "obj");
    check(n.is_ok() == (v.IsNumber() && std::isfinite(v.GetDouble())),
          "get_number succeeds exactly on finite numbers", key);
    if (!n) ep::fuzz::check_reason(n.status(), "get_number");
    auto t = ep::get_time(obj, key.c_str(), "obj");
    if (t) check(v.IsString(), "get_time only on strings", key);
    else ep::fuzz::check_reason(t.status(), "get_time");
    if (v.IsObject()) check_getters(v);
  }
  for (const char* missing : {"", "kind", "\x01no such key"}) {
    if (obj.HasMember(missing)) continue;
    check(!ep::get_string(obj, missing), "a missing member is required");
    check(!ep::get_number(obj, missing), "a missing member is required");
    check(!ep::get_time(obj, missing), "a missing member is required");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  static rapidjson::Document doc;  // reused, as a line reader reuses it
  ep::Status st = ep::parse_json(in, doc);
  // In situ parsing stops at the first NUL, and parse_json skips a leading UTF-8 byte
  // order mark (RapidJSON's EncodedInputStream, byte by byte): compare the others.
  const bool bom = !in.empty() && (in[0] == '\xEF' || in[0] == '\xBB' || in[0] == '\xBF');
  if (!bom && in.find('\0') == std::string_view::npos) {
    std::vector<char> buf(in.begin(), in.end());
    buf.push_back('\0');
    rapidjson::Document insitu;
    ep::Status st2 = ep::parse_json_insitu(buf.data(), insitu);
    check(st.is_ok() == st2.is_ok(), "parse_json and parse_json_insitu agree");
    if (st) check(ep::to_json(doc) == ep::to_json(insitu), "both parses give the same document");
  }
  if (!st) {
    ep::fuzz::check_reason(st, "parse_json");
    return 0;
  }
  std::string once = ep::to_json(doc);
  rapidjson::Document again;
  check(ep::parse_json(once, again).is_ok(), "to_json output parses", once);
  check(ep::to_json(again) == once, "to_json -> parse_json -> to_json is stable", once);
  (void)ep::kind_of(doc);
  if (doc.IsObject()) check_getters(doc);
  return 0;
}
