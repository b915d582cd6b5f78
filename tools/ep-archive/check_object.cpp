// The object check shared by replay and verify (a parser of stored bytes, so it has a
// fuzz target: tests/fuzz/fuzz_archive_object.cpp).
#include <algorithm>
#include <cctype>

#include "archive_tool.h"
#include "ep/crypto.h"
#include "ep/json.h"
#include "ep/records.h"

namespace ep::archive_tool {

Status check_object(std::string_view bytes, const ArchiveObject& o, rapidjson::Document& doc) {
  if (bytes.empty() || bytes.back() != '\n') return Status::data("truncated (no final newline)");
  std::string_view line = bytes.substr(0, bytes.size() - 1);
  if (line.find('\n') != std::string_view::npos) return Status::data("more than one line");
  EP_RETURN_IF_ERROR(parse_json(line, doc));
  if (!doc.IsObject() || kind_of(doc) != Kind::kBatch) return Status::data("not a batch record");
  auto id = get_string(doc, "batch_id");
  if (!id) return id.status();
  if (*id != o.batch_id) return Status::data("batch_id: \"" + std::string(*id) + "\" does not match the key");
  auto tenant = get_string(doc, "tenant");
  if (!tenant) return tenant.status();
  if (*tenant != o.tenant) return Status::data("tenant: \"" + std::string(*tenant) + "\" does not match the key");
  auto received = get_time(doc, "received_at");
  if (!received) return received.status();
  constexpr TimeNs kDay = 86400 * kNsPerSec;
  auto day = [](TimeNs t) { return t >= 0 ? t / kDay : -((-t + kDay - 1) / kDay); };
  if (day(*received) != day(o.received_at)) return Status::data("received_at: day does not match the key");
  auto raw = get_string(doc, "raw");
  if (!raw) return raw.status();
  auto sha = get_string(doc, "sha256");
  if (!sha) return sha.status();
  std::string want(*sha);
  std::transform(want.begin(), want.end(), want.begin(), [](unsigned char c) { return std::tolower(c); });
  if (crypto::sha256_hex(*raw) != want) return Status::data("sha256: does not match raw");
  return Status::ok();
}

}  // namespace ep::archive_tool
