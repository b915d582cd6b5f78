#include "post.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace ep::sim {
namespace {

size_t collect(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<std::string*>(user);
  if (s->size() < 4096) s->append(data, std::min(size * n, 4096 - s->size()));
  return size * n;
}

void sleep_ns(TimeNs d) {
  if (d > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(d));
}

}  // namespace

Result<std::unique_ptr<Poster>> Poster::make(const PostOptions& o) {
  if (!o.url.starts_with("http://") && !o.url.starts_with("https://"))
    return Status::usage("--url " + o.url + ": expected http://HOST:PORT[/v1/ingest]");
  if (o.key.empty()) return Status::usage("--url needs --key (an API key from ep-admin key issue)");
  if (o.rate < 0) return Status::usage("--rate must not be negative");
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::unique_ptr<Poster> p(new Poster());
  p->o_ = o;
  p->url_ = o.url;
  // A bare server address means the ingest route.
  size_t scheme_end = p->url_.find("://") + 3;
  if (p->url_.find('/', scheme_end) == std::string::npos) p->url_ += "/v1/ingest";
  p->curl_ = curl_easy_init();
  if (!p->curl_) return Status::software("curl_easy_init failed");
  std::string key = "X-API-Key: " + o.key;
  curl_slist* h = nullptr;
  h = curl_slist_append(h, key.c_str());
  h = curl_slist_append(h, "Content-Type: application/json");
  h = curl_slist_append(h, "Expect:");
  p->headers_ = h;
  return p;
}

Poster::~Poster() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
  if (headers_) curl_slist_free_all(static_cast<curl_slist*>(headers_));
}

Status Poster::send(std::string_view body) {
  if (o_.rate > 0) {
    // Absolute schedule: payload n goes at t0 + n/rate, so pauses do not accumulate drift.
    if (sent_ == 0) t0_ = monotonic_ns();
    TimeNs due = t0_ + static_cast<TimeNs>(static_cast<double>(sent_) * 1e9 / o_.rate);
    sleep_ns(due - monotonic_ns());
  }
  CURL* c = static_cast<CURL*>(curl_);
  int failures = 0, throttled = 0;
  for (;;) {
    std::string resp;
    curl_easy_setopt(c, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o_.timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(headers_));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && status >= 200 && status < 300) {
      sent_++;
      return Status::ok();
    }
    std::string what = rc != CURLE_OK ? std::string(curl_easy_strerror(rc))
                                      : "HTTP " + std::to_string(status) + " " + resp;
    while (!what.empty() && (what.back() == '\n' || what.back() == '\r')) what.pop_back();
    if (rc == CURLE_OK && status == 429 && ++throttled <= 30) {
      curl_off_t after = 0;
      curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &after);
      TimeNs wait = std::clamp<TimeNs>(after, 0, kMaxDuration / kNsPerSec) * kNsPerSec;
      sleep_ns(std::max<TimeNs>(wait, 100 * kNsPerMs));
      continue;
    }
    if (rc == CURLE_OK && (status == 401 || status == 403))
      return Status::usage(url_ + ": the server refused --key: " + what);
    if (rc == CURLE_OK && status >= 400 && status < 500 && status != 429) {
      sent_++;
      return Status::data(url_ + ": payload rejected: " + what);
    }
    if (++failures >= o_.retries) return Status::unavailable(url_ + ": " + what);
    sleep_ns((100 * kNsPerMs) << std::min(failures - 1, 5));
  }
}

}  // namespace ep::sim
