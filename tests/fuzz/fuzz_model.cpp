// libFuzzer target: the model artefact reader (common/src/model.cpp: JSON document,
// checksum, shapes, the base64 preorder tree encoding) and the series reference parser.
// The checksum would stop almost every mutation at the door, so each input is parsed
// twice: as given, and with its checksum recomputed. Properties: a rejection names its
// reason; an accepted artefact scores its own center in (0, 1] and serialises to an
// artefact that parses back and serialises identically, with the same score.
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "ep/crypto.h"
#include "ep/model.h"
#include "fuzz_check.h"

using ep::fuzz::check;

namespace {

constexpr std::string_view kChecksumKey = "\"checksum\":\"sha256:";

// The input with the 64 hex digits after "checksum":"sha256: replaced by the right sum.
std::string with_valid_checksum(std::string text) {
  size_t pos = text.find(kChecksumKey);
  if (pos == std::string::npos || pos + kChecksumKey.size() + 64 > text.size()) return text;
  pos += kChecksumKey.size();
  text.replace(pos, 64, std::string(64, '0'));
  text.replace(pos, 64, ep::crypto::sha256_hex(text));
  return text;
}

void check_model(std::string_view text) {
  auto m = ep::model::parse(text, "fuzz.json");
  if (!m) {
    ep::fuzz::check_reason(m.status(), "model::parse");
    check(m.status().message().rfind("fuzz.json", 0) == 0, "an error names the source",
          m.status().message());
    return;
  }
  check(m->forest.dims() == m->features.size() && m->center.size() == m->features.size() &&
            m->scale.size() == m->features.size(),
        "an accepted model has consistent shapes");
  double score = m->forest.score(m->center.data());
  check(score > 0 && score <= 1, "a forest score is in (0, 1]", std::to_string(score));
  std::string once = ep::model::serialize(*m);
  auto again = ep::model::parse(once, "serialised");
  check(again.is_ok(), "a serialised model parses", again ? once : again.status().message());
  check(ep::model::serialize(*again) == once, "parse -> serialise -> parse is stable", once);
  check(again->forest.score(again->center.data()) == score, "a re-read model scores the same");
  check(ep::model::parse_as(once, "s", m->key(), m->version).is_ok(), "parse_as its own id");
}

void check_series_ref(std::string_view s) {
  auto r = ep::model::parse_series_ref(s);
  if (!r) {
    ep::fuzz::check_reason(r.status(), "parse_series_ref");
    return;
  }
  check(!r->key.tenant.empty() && !r->key.device.empty() && !r->key.metric.empty() &&
            r->version >= 0,
        "a series reference has every part");
  std::string text = r->key.to_string();
  if (r->version) text += "@" + std::to_string(r->version);
  auto back = ep::model::parse_series_ref(text);
  check(back && back->key == r->key && back->version == r->version,
        "a series reference renders back to itself", text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  check_model(in);
  std::string fixed = with_valid_checksum(in);
  if (fixed != in) check_model(fixed);
  if (size < 256) check_series_ref(in);
  return 0;
}
