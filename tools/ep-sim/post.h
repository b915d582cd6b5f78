#pragma once
// Sends ep-sim's payloads to a running ep-ingest (POST /v1/ingest, X-API-Key) at a fixed
// rate over one kept-alive connection (libcurl).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ep/status.h"
#include "ep/time.h"

namespace ep::sim {

struct PostOptions {
  std::string url;   // http://127.0.0.1:8787 or .../v1/ingest
  std::string key;   // API key
  double rate = 0;   // payloads per second; 0 = as fast as the server answers
  long timeout_ms = 10000;
  int retries = 5;   // attempts on network errors and 5xx (429 waits as told, up to 30 times)
};

class Poster {
 public:
  static Result<std::unique_ptr<Poster>> make(const PostOptions& o);
  ~Poster();
  // Sends one payload when its turn in the rate schedule comes. kData: the server
  // rejected the payload (4xx other than 401/403/429; the run goes on); kUsage: the key
  // was refused; kUnavailable: the server could not be reached or kept failing.
  Status send(std::string_view body);
  std::uint64_t sent() const { return sent_; }

 private:
  Poster() = default;
  PostOptions o_;
  std::string url_;
  void* curl_ = nullptr;
  void* headers_ = nullptr;
  TimeNs t0_ = 0;
  std::uint64_t sent_ = 0;
};

}  // namespace ep::sim
