#pragma once
// A small concurrent HTTP POST client over the libcurl multi interface. Single-threaded:
// the owner calls poll() in its loop; poll() can also wait for another fd (stdin) so one
// thread both reads input and drives transfers. TLS verification is always on; a CA
// bundle may be added, never switched off. Every connection goes to an address the
// egress policy allows, checked on the address actually connected to (after DNS and
// --resolve entries; a rebinding name cannot get around it); proxies from the
// environment are not used and redirects are not followed. Nothing here is specific to
// alerts, so it can move to common/ when a second tool needs it.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ep/egress.h"
#include "ep/status.h"
#include "ep/time.h"

namespace ep::alert {

struct HttpClientOptions {
  TimeNs connect_timeout = 5 * kNsPerSec;
  TimeNs total_timeout = 15 * kNsPerSec;
  std::string ca_bundle;  // extra CA file (PEM); empty = system store
  size_t max_in_flight = 16;
  std::string user_agent = "ep-alert/" EP_VERSION " (EdgePulse)";
  egress::Policy egress;             // default: only public addresses
  std::vector<std::string> resolve;  // "HOST:PORT:ADDR" (curl's --resolve), checked
};

// Checks one --resolve entry: HOST:PORT:ADDR[,ADDR...], ADDR an IPv4 or [IPv6] address.
Status check_resolve(std::string_view entry);

struct HttpRequest {
  std::uint64_t tag = 0;             // returned with the result
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // POSTed as is
  TimeNs timeout = 0;                // total timeout of this request; 0 = the client's
};

struct HttpResult {
  std::uint64_t tag = 0;
  int status = 0;                    // 0 = no HTTP response (see error)
  std::string error;                 // transport error; empty when a response arrived
  bool egress_denied = false;        // every address was refused by the egress policy
  bool timed_out = false;
  std::optional<TimeNs> retry_after; // delay requested by a Retry-After header
  std::string body_prefix;           // first bytes of the response body, for messages
  TimeNs duration = 0;
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions opts);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  size_t in_flight() const;
  bool full() const { return in_flight() >= opts_.max_in_flight; }
  // Starts a POST. The caller keeps in_flight() below max_in_flight (full()).
  Status submit(HttpRequest req);

  // Drives transfers, appending finished ones to `done`. Waits up to max_wait for
  // network activity, or until extra_fd (if >= 0) is readable; *extra_ready tells which.
  Status poll(TimeNs max_wait, std::vector<HttpResult>& done, int extra_fd = -1,
              bool* extra_ready = nullptr);

 private:
  struct Transfer;
  void collect(std::vector<HttpResult>& done);

  HttpClientOptions opts_;
  void* multi_ = nullptr;
  void* resolve_ = nullptr;  // curl_slist of opts_.resolve
  std::vector<std::unique_ptr<Transfer>> transfers_;
};

// Parses a Retry-After value: delay-seconds or an HTTP-date (relative to now).
std::optional<TimeNs> parse_retry_after(std::string_view value, TimeNs now);

}  // namespace ep::alert
