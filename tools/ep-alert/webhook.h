#pragma once
// Standard Webhooks (https://www.standardwebhooks.com/): payload, signing, verifying.
//   webhook-id:        the alert_id
//   webhook-timestamp: Unix seconds of the attempt
//   webhook-signature: "v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>",
//                      one per active secret, space-separated
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine.h"
#include "ep/status.h"
#include "ep/time.h"

namespace ep::alert {

// {"type":"anomaly.detected","timestamp":"…","data":{alert_id, rule, severity, tenant,
// device, metric, start, end, score, label, model, consecutive, explanation}}
std::string build_body(const Event& e, TimeNs timestamp);

std::string sign(const std::vector<std::string>& keys, std::string_view id, std::int64_t ts_sec,
                 std::string_view body);

// A received webhook: the headers we need and the exact body bytes.
struct ReceivedWebhook {
  std::string id, timestamp, signature;
  bool has_id = false, has_timestamp = false, has_signature = false;
  std::string body;
};

// Parses an HTTP request dump: request line (optional), headers, blank line, body.
// CRLF or LF line ends; the body is Content-Length bytes, chunked, or the rest.
Result<ReceivedWebhook> parse_request_dump(std::string_view text);

struct Verdict {
  bool valid = false;
  std::string reason;  // why invalid, or which signature matched
};

// Checks the headers, the timestamp against now ± tolerance, and the signatures
// against every key (constant-time compare).
Verdict verify(const ReceivedWebhook& w, const std::vector<std::string>& keys, TimeNs now,
               TimeNs tolerance);

}  // namespace ep::alert
