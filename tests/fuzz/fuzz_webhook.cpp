// libFuzzer target: the receiving side of ep-alert's Standard Webhooks
// (tools/ep-alert/webhook.cpp): parse_request_dump (request line, headers, Content-Length
// or chunked body) and verify (webhook-id, webhook-timestamp, webhook-signature against
// every secret, timestamp tolerance). Properties: a rejection names its reason; what
// verify accepts is signed by one of the secrets over the parsed id, timestamp and body;
// the same webhook re-signed now verifies, and fails once its body or id changes.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ep/time.h"
#include "fuzz_check.h"
#include "webhook.h"

using ep::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // Fixed secrets and clock, so seeds can carry valid signatures.
  static const std::vector<std::string> keys = {"fuzz-secret-key-one-0123456789",
                                                "fuzz-secret-key-two-0123456789"};
  const ep::TimeNs now = 1767225600LL * ep::kNsPerSec;  // 2026-01-01T00:00:00Z
  const ep::TimeNs tolerance = 300 * ep::kNsPerSec;
  auto w = ep::alert::parse_request_dump(in);
  if (!w) {
    ep::fuzz::check_reason(w.status(), "parse_request_dump");
    return 0;
  }
  ep::alert::Verdict v = ep::alert::verify(*w, keys, now, tolerance);
  check(!v.reason.empty(), "a verdict says why");
  if (v.valid) {
    std::int64_t ts = std::stoll(w->timestamp);
    bool signed_by_key = false;
    for (const auto& k : keys)
      signed_by_key |= w->signature.find(ep::alert::sign({k}, w->id, ts, w->body)) != std::string::npos;
    check(signed_by_key, "an accepted webhook carries a signature by one of the secrets");
  }
  // Re-signed now: valid; with the body or the id changed: invalid.
  ep::alert::ReceivedWebhook fresh = *w;
  fresh.has_id = fresh.has_timestamp = fresh.has_signature = true;
  const std::int64_t now_sec = now / ep::kNsPerSec;
  fresh.timestamp = std::to_string(now_sec);
  fresh.signature = "v1a,ignored " + ep::alert::sign(keys, fresh.id, now_sec, fresh.body);
  check(ep::alert::verify(fresh, keys, now, tolerance).valid, "a webhook signed now verifies");
  check(!ep::alert::verify(fresh, {"some-other-secret-0123456789"}, now, tolerance).valid,
        "a webhook does not verify with another secret");
  ep::alert::ReceivedWebhook changed = fresh;
  changed.body += 'x';
  check(!ep::alert::verify(changed, keys, now, tolerance).valid, "a changed body fails");
  changed = fresh;
  changed.id += 'x';
  check(!ep::alert::verify(changed, keys, now, tolerance).valid, "a changed id fails");
  return 0;
}
