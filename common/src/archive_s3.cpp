// s3://bucket/prefix archive backend for S3-compatible stores (AWS S3, Cloudflare R2,
// MinIO, ...). Requests are signed by libcurl (CURLOPT_AWS_SIGV4); listing uses
// ListObjectsV2 with continuation tokens. Layout and immutability: docs/archive-format.md.
#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "archive_internal.h"
#include "ep/crypto.h"

namespace ep::archive_detail {
namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// AWS URI encoding: unreserved characters stay, everything else is %XX (uppercase);
// '/' stays in paths. Used for both the URL and, identically, the signed canonical form.
std::string aws_encode(std::string_view s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace

// Minimal XML helpers for the few S3 response elements we read. S3 never puts
// attributes on them; text is XML-escaped.
std::string xml_unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out.push_back('&');
      continue;
    }
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    unsigned long cp = 0;
    bool ok = true;
    if (ent == "amp") cp = '&';
    else if (ent == "lt") cp = '<';
    else if (ent == "gt") cp = '>';
    else if (ent == "quot") cp = '"';
    else if (ent == "apos") cp = '\'';
    else if (ent.size() > 1 && ent[0] == '#') {
      bool hex = ent[1] == 'x' || ent[1] == 'X';
      std::string num(ent.substr(hex ? 2 : 1));
      char* end = nullptr;
      cp = std::strtoul(num.c_str(), &end, hex ? 16 : 10);
      ok = !num.empty() && end && *end == '\0' && cp > 0 && cp <= 0x10FFFF;
    } else {
      ok = false;
    }
    if (!ok) {
      out.push_back('&');
      continue;
    }
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    i = semi;
  }
  return out;
}

// Text of the first <tag>…</tag> at or after `from` and before `limit`.
std::optional<std::string_view> xml_text(std::string_view xml, std::string_view tag,
                                         size_t from, size_t limit) {
  std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
  size_t a = xml.find(open, from);
  if (a == std::string_view::npos || a >= limit) return std::nullopt;
  a += open.size();
  size_t b = xml.find(close, a);
  if (b == std::string_view::npos || b > limit) return std::nullopt;
  return xml.substr(a, b - a);
}

Result<ListPage> parse_list_page(std::string_view xml) {
  if (xml.find("<ListBucketResult") == std::string_view::npos)
    return Status::unavailable("ListObjectsV2: unexpected response (no ListBucketResult)");
  ListPage page;
  size_t pos = 0;
  for (;;) {
    size_t a = xml.find("<Contents>", pos);
    if (a == std::string_view::npos) break;
    size_t b = xml.find("</Contents>", a);
    if (b == std::string_view::npos) return Status::unavailable("ListObjectsV2: truncated XML");
    auto key = xml_text(xml, "Key", a, b);
    auto size = xml_text(xml, "Size", a, b);
    if (!key) return Status::unavailable("ListObjectsV2: <Contents> without <Key>");
    std::uint64_t n = 0;
    if (size) {
      for (char c : *size) {
        if (c < '0' || c > '9') return Status::unavailable("ListObjectsV2: bad <Size>");
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
      }
    }
    page.objects.emplace_back(xml_unescape(*key), n);
    pos = b;
  }
  // IsTruncated / NextContinuationToken are top-level elements; search outside Contents.
  auto trunc = xml_text(xml, "IsTruncated");
  page.truncated = trunc && *trunc == "true";
  if (auto tok = xml_text(xml, "NextContinuationToken")) page.next_token = xml_unescape(*tok);
  if (page.truncated && page.next_token.empty())
    return Status::unavailable("ListObjectsV2: truncated listing without NextContinuationToken");
  return page;
}

namespace {

struct Response {
  long status = 0;
  std::string body;
};

size_t collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

class S3Archive final : public Archive {
 public:
  S3Archive(std::string uri, std::string bucket, std::string prefix, const ArchiveOptions& o,
            std::string endpoint, bool path_style, std::string region)
      : uri_(std::move(uri)),
        bucket_(std::move(bucket)),
        prefix_(std::move(prefix)),
        endpoint_(std::move(endpoint)),
        path_style_(path_style),
        access_key_(o.access_key),
        secret_key_(o.secret_key),
        session_token_(env_or("AWS_SESSION_TOKEN", "")),
        sigv4_("aws:amz:" + region + ":s3"),
        timeout_ms_(o.s3_timeout_ms),
        retries_(std::max(1, o.s3_retries)) {}
  ~S3Archive() override {
    for (CURL* h : idle_) curl_easy_cleanup(h);
  }

  Status check_format(bool create);
  Status put_many(std::span<const ArchivePut> puts, std::vector<Result<std::string>>& out) override;
  Status list(const ArchiveFilter& f, const std::function<bool(const ArchiveObject&)>& fn) override;
  Result<std::string> get(const ArchiveObject& o) override;
  Status remove(const ArchiveObject& o) override;
  const std::string& uri() const override { return uri_; }

 private:
  std::string full_key(std::string_view key) const {
    return prefix_.empty() ? std::string(key) : prefix_ + "/" + std::string(key);
  }
  std::string url(std::string_view full, std::string_view query) const {
    std::string u = endpoint_;
    if (path_style_) u += "/" + bucket_;
    u += "/" + aws_encode(full, true);
    if (!query.empty()) u += "?" + std::string(query);
    return u;
  }
  // One request with retries on network errors, 5xx and 429. Statuses the caller
  // handles (404, 412, ...) come back as responses.
  Result<Response> request(const char* method, const std::string& url, std::string_view body,
                           const std::vector<std::string>& headers);
  Result<Response> request_once(CURL* h, const char* method, const std::string& url,
                                std::string_view body, const std::vector<std::string>& headers,
                                bool& retryable);
  Status http_error(const char* what, const std::string& key, const Response& r) const;
  Result<std::string> put_one(const ArchivePut& p);

  CURL* acquire();
  void release(CURL* h);

  std::string uri_, bucket_, prefix_, endpoint_;
  bool path_style_;
  std::string access_key_, secret_key_, session_token_, sigv4_;
  long timeout_ms_;
  int retries_;
  std::mutex mu_;
  std::vector<CURL*> idle_;  // kept-alive handles (connection reuse)
};

CURL* S3Archive::acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      CURL* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void S3Archive::release(CURL* h) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(h);
}

Result<Response> S3Archive::request_once(CURL* h, const char* method, const std::string& url,
                                         std::string_view body,
                                         const std::vector<std::string>& headers, bool& retryable) {
  curl_easy_reset(h);
  Response resp;
  std::string method_s(method);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms_);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout_ms_, 10000L));
  curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4_.c_str());
  curl_easy_setopt(h, CURLOPT_USERNAME, access_key_.c_str());
  curl_easy_setopt(h, CURLOPT_PASSWORD, secret_key_.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp.body);
  if (method_s == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (method_s == "PUT") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  } else if (method_s != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }
  curl_slist* hdrs = nullptr;
  // The payload hash is signed (S3 requires the header); libcurl signs every header.
  std::string sha = "x-amz-content-sha256: " + crypto::sha256_hex(body);
  hdrs = curl_slist_append(hdrs, sha.c_str());
  std::string token;
  if (!session_token_.empty()) {
    token = "x-amz-security-token: " + session_token_;
    hdrs = curl_slist_append(hdrs, token.c_str());
  }
  if (method_s == "PUT") {
    hdrs = curl_slist_append(hdrs, "Content-Type: application/x-ndjson");
    hdrs = curl_slist_append(hdrs, "Expect:");
  }
  for (const auto& x : headers) hdrs = curl_slist_append(hdrs, x.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(hdrs);
  if (rc != CURLE_OK) {
    retryable = true;
    return Status::unavailable(uri_ + ": " + method_s + " " + endpoint_ + ": " +
                               curl_easy_strerror(rc));
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  retryable = resp.status >= 500 || resp.status == 429;
  return resp;
}

Result<Response> S3Archive::request(const char* method, const std::string& url,
                                    std::string_view body, const std::vector<std::string>& headers) {
  CURL* h = acquire();
  if (!h) return Status::software("curl_easy_init failed");
  Result<Response> last = Status::software("no attempt");
  for (int attempt = 0; attempt < retries_; ++attempt) {
    if (attempt > 0) {
      // Exponential backoff with jitter: ~100 ms, 200 ms, 400 ms, ...
      unsigned char r;
      crypto::random_bytes(&r, 1);
      auto ms = (100L << std::min(attempt - 1, 6)) + r % 50;
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
    bool retryable = false;
    last = request_once(h, method, url, body, headers, retryable);
    if (!retryable) break;
  }
  release(h);
  if (last && (last->status >= 500 || last->status == 429)) {
    std::string msg = uri_ + ": " + method + ": HTTP " + std::to_string(last->status);
    if (auto code = xml_text(last->body, "Code")) msg += " " + std::string(*code);
    return Status::temporary(msg + " after " + std::to_string(retries_) + " attempts");
  }
  return last;
}

Status S3Archive::http_error(const char* what, const std::string& key, const Response& r) const {
  std::string msg = uri_ + "/" + key + ": " + what + ": HTTP " + std::to_string(r.status);
  if (auto code = xml_text(r.body, "Code")) msg += " " + std::string(*code);
  if (auto m = xml_text(r.body, "Message")) msg += ": " + xml_unescape(*m);
  if (r.status == 401 || r.status == 403)
    return Status::unavailable(msg + " (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)");
  if (r.status == 404) return Status::not_found(msg);
  return Status::unavailable(msg);
}

Status S3Archive::check_format(bool create) {
  std::string key = full_key(kFormatName);
  auto r = request("GET", url(key, ""), {}, {});
  if (!r) return r.status();
  if (r->status == 200) {
    if (r->body != kFormatLine)
      return Status::usage(uri_ + ": unsupported archive format: " +
                           r->body.substr(0, r->body.find('\n')));
    return Status::ok();
  }
  if (r->status != 404) return http_error("GET", std::string(kFormatName), *r);
  if (r->body.find("NoSuchBucket") != std::string::npos)
    return Status::unavailable(uri_ + ": no such bucket: " + bucket_);
  if (!create) return Status::io(uri_ + ": no such archive (no " + std::string(kFormatName) + " object)");
  auto p = request("PUT", url(key, ""), kFormatLine, {"If-None-Match: *"});
  if (!p) return p.status();
  if (p->status != 200 && p->status != 412) return http_error("PUT", std::string(kFormatName), *p);
  return Status::ok();
}

Result<std::string> S3Archive::put_one(const ArchivePut& p) {
  EP_RETURN_IF_ERROR(validate_put(p).with_context(uri_));
  std::string key = object_key(p.tenant, p.received_at, p.batch_id);
  std::string full = full_key(key);
  std::string u = url(full, "");
  std::string bytes = object_bytes(p.bytes);
  auto head = request("HEAD", u, {}, {});
  if (!head) return head.status();
  if (head->status == 404) {
    auto put = request("PUT", u, bytes, {"If-None-Match: *"});
    if (!put) return put.status();
    if (put->status == 200) return uri_ + "/" + key;
    if (put->status != 412) return http_error("PUT", key, *put);
    // 412: someone stored this key between our HEAD and PUT; compare below.
  } else if (head->status != 200) {
    return http_error("HEAD", key, *head);
  }
  auto existing = request("GET", u, {}, {});
  if (!existing) return existing.status();
  if (existing->status != 200) return http_error("GET", key, *existing);
  if (existing->body == bytes) return uri_ + "/" + key;
  return Status::conflict(uri_ + "/" + key +
                          ": object exists with different content (archive objects are immutable)");
}

Status S3Archive::put_many(std::span<const ArchivePut> puts, std::vector<Result<std::string>>& out) {
  out.clear();
  out.reserve(puts.size());
  for (size_t i = 0; i < puts.size(); ++i) out.emplace_back(Status::software("archive put: not attempted"));
  // There is no fsync to share with S3; a group is sent over up to 8 connections at
  // once so that its latency is that of the slowest put, not the sum.
  size_t workers = std::min<size_t>(puts.size(), 8);
  if (workers <= 1) {
    for (size_t i = 0; i < puts.size(); ++i) out[i] = put_one(puts[i]);
    return Status::ok();
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  threads.reserve(workers);
  for (size_t w = 0; w < workers; ++w)
    threads.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < puts.size();) out[i] = put_one(puts[i]);
    });
  for (auto& t : threads) t.join();
  return Status::ok();
}

Status S3Archive::list(const ArchiveFilter& f, const std::function<bool(const ArchiveObject&)>& fn) {
  std::string base = prefix_.empty() ? "" : prefix_ + "/";
  std::string list_prefix = base + (f.tenant.empty() ? "" : f.tenant + "/");
  std::string start_after;
  if (!f.tenant.empty() && f.from != INT64_MIN) {
    // Keys sort by day within a tenant; skip straight to the first day of interest.
    std::string day = day_prefix(f.tenant, std::max<TimeNs>(f.from, 0));
    day.pop_back();
    start_after = base + day;
  }
  std::string token;
  for (;;) {
    // Query parameters in canonical (sorted, AWS-encoded) order: libcurl signs the
    // query string as given.
    std::string q;
    if (!token.empty()) q += "continuation-token=" + aws_encode(token, false) + "&";
    q += "list-type=2&prefix=" + aws_encode(list_prefix, false);
    if (!start_after.empty()) q += "&start-after=" + aws_encode(start_after, false);
    std::string u = endpoint_ + (path_style_ ? "/" + bucket_ : "") + "/?" + q;
    auto r = request("GET", u, {}, {});
    if (!r) return r.status();
    if (r->status != 200) {
      if (r->body.find("NoSuchBucket") != std::string::npos)
        return Status::unavailable(uri_ + ": no such bucket: " + bucket_);
      return http_error("ListObjectsV2", "", *r);
    }
    auto page = parse_list_page(r->body);
    if (!page) return page.status().with_context(uri_);
    for (auto& [full, size] : page->objects) {
      if (!full.starts_with(base)) continue;
      ArchiveObject o;
      o.key = full.substr(base.size());
      auto kp = parse_key(o.key);
      if (!kp) continue;
      if (!day_matches(kp->day, f)) {
        if (!f.tenant.empty() && day_start(kp->day) > f.to) return Status::ok();  // sorted: done
        continue;
      }
      o.tenant = std::move(kp->tenant);
      o.batch_id = std::move(kp->batch_id);
      o.received_at = day_start(kp->day);
      o.uri = uri_ + "/" + o.key;
      o.size = size;
      if (!fn(o)) return Status::ok();
    }
    if (!page->truncated) return Status::ok();
    token = page->next_token;
  }
}

Result<std::string> S3Archive::get(const ArchiveObject& o) {
  if (!parse_key(o.key)) return Status::data(o.key + ": not an archive object key");
  auto r = request("GET", url(full_key(o.key), ""), {}, {});
  if (!r) return r.status();
  if (r->status == 404) return Status::not_found(o.uri + ": no such object");
  if (r->status != 200) return http_error("GET", o.key, *r);
  return std::move(r->body);
}

Status S3Archive::remove(const ArchiveObject& o) {
  if (!parse_key(o.key)) return Status::data(o.key + ": not an archive object key");
  auto r = request("DELETE", url(full_key(o.key), ""), {}, {});
  if (!r) return r.status();
  if (r->status == 404) return Status::not_found(o.uri + ": no such object");
  if (r->status != 204 && r->status != 200) return http_error("DELETE", o.key, *r);
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<Archive>> open_s3(const std::string& uri, const std::string& bucket,
                                         const std::string& prefix, const ArchiveOptions& opts) {
  static std::once_flag curl_once;
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  ArchiveOptions o = opts;
  if (o.access_key.empty()) o.access_key = env_or("AWS_ACCESS_KEY_ID", "");
  if (o.secret_key.empty()) o.secret_key = env_or("AWS_SECRET_ACCESS_KEY", "");
  if (o.access_key.empty() || o.secret_key.empty())
    return Status::usage(uri + ": AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set");
  std::string region = o.s3_region;
  if (region.empty()) region = env_or("AWS_REGION", env_or("AWS_DEFAULT_REGION", "auto"));
  std::string endpoint = o.s3_endpoint;
  if (endpoint.empty()) endpoint = env_or("AWS_ENDPOINT_URL_S3", env_or("AWS_ENDPOINT_URL", ""));
  bool path_style = true;
  if (endpoint.empty()) {
    // AWS itself: virtual-hosted addressing, which needs a real region.
    if (region == "auto") region = "us-east-1";
    endpoint = "https://" + bucket + ".s3." + region + ".amazonaws.com";
    path_style = false;
  } else if (!endpoint.starts_with("http://") && !endpoint.starts_with("https://")) {
    return Status::usage("--s3-endpoint " + endpoint + ": expected http://HOST[:PORT] or https://...");
  }
  while (endpoint.ends_with("/")) endpoint.pop_back();
  auto a = std::make_unique<S3Archive>(uri, bucket, prefix, o, endpoint, path_style, region);
  EP_RETURN_IF_ERROR(a->check_format(o.create));
  return std::unique_ptr<Archive>(std::move(a));
}

}  // namespace ep::archive_detail
