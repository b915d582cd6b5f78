// s3://bucket/prefix archive backend for S3-compatible stores (AWS S3, Cloudflare R2,
// MinIO, ...). Requests are signed by libcurl (CURLOPT_AWS_SIGV4); listing uses
// ListObjectsV2 with continuation tokens. Layout and immutability: docs/archive-format.md.
// S3Client is shared with format 2 (archive_s3seg.cpp), whose archive this file opens
// when FORMAT says 2.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "archive_internal.h"
#include "ep/aws_config.h"
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

size_t collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// Keeps the ETag response header.
size_t header_line(char* data, size_t size, size_t n, void* user) {
  std::string_view line(data, size * n);
  constexpr std::string_view kEtag = "etag:";
  if (line.size() > kEtag.size()) {
    bool match = true;
    for (size_t i = 0; i < kEtag.size() && match; ++i)
      match = std::tolower(static_cast<unsigned char>(line[i])) == kEtag[i];
    if (match) {
      std::string_view v = line.substr(kEtag.size());
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
      static_cast<S3Response*>(user)->etag.assign(v);
    }
  }
  return size * n;
}

bool has_header(const std::vector<std::string>& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (h.size() <= name.size() || h[name.size()] != ':') continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i)
      same = std::tolower(static_cast<unsigned char>(h[i])) == std::tolower(static_cast<unsigned char>(name[i]));
    if (same) return true;
  }
  return false;
}

}  // namespace

S3Client::S3Client(Config c) : c_(std::move(c)), sigv4_("aws:amz:" + c_.region + ":s3") {
  c_.retries = std::max(1, c_.retries);
}

S3Client::~S3Client() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

std::string S3Client::full_key(std::string_view key) const {
  return c_.prefix.empty() ? std::string(key) : c_.prefix + "/" + std::string(key);
}

std::string S3Client::url(std::string_view full, std::string_view query) const {
  std::string u = c_.endpoint;
  if (c_.path_style) u += "/" + c_.bucket;
  u += "/" + aws_encode(full, true);
  if (!query.empty()) u += "?" + std::string(query);
  return u;
}

void* S3Client::acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void S3Client::release(void* h) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(h);
}

Result<S3Response> S3Client::request_once(void* handle, const char* method, const std::string& url,
                                          std::string_view body,
                                          const std::vector<std::string>& headers, bool& retryable) {
  CURL* h = static_cast<CURL*>(handle);
  curl_easy_reset(h);
  S3Response resp;
  std::string method_s(method);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c_.timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, std::min(c_.timeout_ms, 10000L));
  curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4_.c_str());
  curl_easy_setopt(h, CURLOPT_USERNAME, c_.access_key.c_str());
  curl_easy_setopt(h, CURLOPT_PASSWORD, c_.secret_key.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_line);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &resp);
  bool sends = method_s == "PUT" || method_s == "POST";
  if (method_s == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (sends) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
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
  if (!c_.session_token.empty()) {
    token = "x-amz-security-token: " + c_.session_token;
    hdrs = curl_slist_append(hdrs, token.c_str());
  }
  if (sends) {
    if (!has_header(headers, "Content-Type"))
      hdrs = curl_slist_append(hdrs, "Content-Type: application/x-ndjson");
    hdrs = curl_slist_append(hdrs, "Expect:");
  }
  for (const auto& x : headers) hdrs = curl_slist_append(hdrs, x.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(hdrs);
  if (rc != CURLE_OK) {
    retryable = true;
    return Status::unavailable(c_.uri + ": " + method_s + " " + c_.endpoint + ": " +
                               curl_easy_strerror(rc));
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  curl_off_t cl = -1;
  if (curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK) resp.length = cl;
  retryable = resp.status >= 500 || resp.status == 429;
  return resp;
}

Result<S3Response> S3Client::request(const char* method, const std::string& url, std::string_view body,
                                     const std::vector<std::string>& headers, int attempts) {
  if (attempts <= 0) attempts = c_.retries;
  void* h = acquire();
  if (!h) return Status::software("curl_easy_init failed");
  Result<S3Response> last = Status::software("no attempt");
  for (int attempt = 0; attempt < attempts; ++attempt) {
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
    std::string msg = c_.uri + ": " + method + ": HTTP " + std::to_string(last->status);
    if (auto code = xml_text(last->body, "Code")) msg += " " + std::string(*code);
    return Status::temporary(msg + " after " + std::to_string(attempts) + " attempts");
  }
  return last;
}

Status S3Client::http_error(const char* what, const std::string& key, const S3Response& r) const {
  std::string msg = c_.uri + "/" + key + ": " + what + ": HTTP " + std::to_string(r.status);
  if (auto code = xml_text(r.body, "Code")) msg += " " + std::string(*code);
  if (auto m = xml_text(r.body, "Message")) msg += ": " + xml_unescape(*m);
  if (r.status == 401 || r.status == 403)
    return Status::unavailable(msg + " (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_PROFILE)");
  if (r.status == 404) return Status::not_found(msg);
  return Status::unavailable(msg);
}

Status S3Client::list(std::string_view sub, std::string_view start_after,
                      const std::function<bool(std::string_view key, std::uint64_t size)>& fn) {
  std::string base = c_.prefix.empty() ? "" : c_.prefix + "/";
  std::string list_prefix = base + std::string(sub);
  std::string after = start_after.empty() ? "" : base + std::string(start_after);
  std::string token;
  for (;;) {
    // Query parameters in canonical (sorted, AWS-encoded) order: libcurl signs the
    // query string as given.
    std::string q;
    if (!token.empty()) q += "continuation-token=" + aws_encode(token, false) + "&";
    q += "list-type=2&prefix=" + aws_encode(list_prefix, false);
    if (!after.empty()) q += "&start-after=" + aws_encode(after, false);
    std::string u = c_.endpoint + (c_.path_style ? "/" + c_.bucket : "") + "/?" + q;
    auto r = request("GET", u, {}, {});
    if (!r) return r.status();
    if (r->status != 200) {
      if (r->body.find("NoSuchBucket") != std::string::npos)
        return Status::unavailable(c_.uri + ": no such bucket: " + c_.bucket);
      return http_error("ListObjectsV2", "", *r);
    }
    auto page = parse_list_page(r->body);
    if (!page) return page.status().with_context(c_.uri);
    for (auto& [full, size] : page->objects) {
      if (!full.starts_with(base)) continue;
      if (!fn(std::string_view(full).substr(base.size()), size)) return Status::ok();
    }
    if (!page->truncated) return Status::ok();
    token = page->next_token;
  }
}

Status S3Client::remove(const std::string& key, const std::string& what) {
  auto r = request("DELETE", url(full_key(key)), {}, {});
  if (!r) return r.status();
  if (r->status == 404) return Status::not_found(c_.uri + "/" + key + ": no such " + what);
  if (r->status != 204 && r->status != 200) return http_error("DELETE", key, *r);
  return Status::ok();
}

Status S3Client::put_new(const std::string& key, std::string_view body, std::uint64_t multipart_bytes,
                         const std::string& content_type) {
  std::string u = url(full_key(key));
  if (multipart_bytes > 0 && body.size() > multipart_bytes) {
    EP_RETURN_IF_ERROR(put_multipart(key, body, multipart_bytes, content_type));
  } else {
    auto put = request("PUT", u, body, {"If-None-Match: *", "Content-Type: " + content_type});
    if (!put) return put.status();
    // 412: the key exists (an upload interrupted after the store took it); checked below.
    if (put->status != 200 && put->status != 412) return http_error("PUT", key, *put);
  }
  // What the store holds now is what we sent (its size; the names are unique).
  auto head = request("HEAD", u, {}, {});
  if (!head) return head.status();
  if (head->status != 200) return http_error("HEAD", key, *head);
  if (head->length != static_cast<std::int64_t>(body.size()))
    return Status::conflict(c_.uri + "/" + key + ": the store holds " + std::to_string(head->length) +
                            " bytes under this key, not the " + std::to_string(body.size()) + " sent");
  return Status::ok();
}

Status S3Client::put_multipart(const std::string& key, std::string_view body, std::uint64_t part_bytes,
                               const std::string& content_type) {
  std::string full = full_key(key);
  auto init = request("POST", url(full, "uploads="), {}, {"Content-Type: " + content_type});
  if (!init) return init.status();
  auto id = init->status == 200 ? xml_text(init->body, "UploadId") : std::nullopt;
  if (!id) return http_error("CreateMultipartUpload", key, *init);
  std::string upload_id = xml_unescape(*id);
  std::string qid = "uploadId=" + aws_encode(upload_id, false);
  std::string done = "<CompleteMultipartUpload>";
  Status st;
  for (std::uint64_t off = 0, n = 1; off < body.size() && st.is_ok(); off += part_bytes, ++n) {
    std::string_view part = body.substr(off, part_bytes);
    auto r = request("PUT", url(full, "partNumber=" + std::to_string(n) + "&" + qid), part,
                     {"Content-Type: application/octet-stream"});
    if (!r) st = r.status();
    else if (r->status != 200 || r->etag.empty()) st = http_error("UploadPart", key, *r);
    else done += "<Part><PartNumber>" + std::to_string(n) + "</PartNumber><ETag>" + r->etag + "</ETag></Part>";
  }
  done += "</CompleteMultipartUpload>";
  if (st.is_ok()) {
    auto r = request("POST", url(full, qid), done, {"If-None-Match: *", "Content-Type: application/xml"});
    // A 200 can still carry an <Error> (S3 reports late failures in the body).
    if (!r) st = r.status();
    else if (r->status == 412) return Status::ok();  // the key exists: put_new checks it
    else if (r->status != 200 || r->body.find("<Error>") != std::string::npos)
      st = http_error("CompleteMultipartUpload", key, *r);
    else return Status::ok();
  }
  (void)request("DELETE", url(full, qid), {}, {}, 1);  // abort: the store drops the parts
  return st;
}

namespace {

class S3Archive final : public Archive {
 public:
  explicit S3Archive(std::unique_ptr<S3Client> client) : s3_(std::move(client)) {}

  Status put_many(std::span<const ArchivePut> puts, std::vector<Result<std::string>>& out) override;
  Status list(const ArchiveFilter& f, const std::function<bool(const ArchiveObject&)>& fn) override;
  Result<std::string> get(const ArchiveObject& o) override;
  Status remove(const ArchiveObject& o) override;
  const std::string& uri() const override { return s3_->uri(); }

 private:
  Result<std::string> put_one(const ArchivePut& p);
  std::unique_ptr<S3Client> s3_;
};

// FORMAT: its version (1 or 2), created with version create_format when missing.
Result<int> check_format(S3Client& s3, bool create, int create_format) {
  std::string key = s3.full_key(kFormatName);
  auto r = s3.request("GET", s3.url(key), {}, {});
  if (!r) return r.status();
  if (r->status == 200) {
    if (r->body == kFormatLine) return 1;
    if (r->body == kFormatLine2) return 2;
    return Status::usage(s3.uri() + ": unsupported archive format: " + r->body.substr(0, r->body.find('\n')));
  }
  if (r->status != 404) return s3.http_error("GET", std::string(kFormatName), *r);
  if (r->body.find("NoSuchBucket") != std::string::npos)
    return Status::unavailable(s3.uri() + ": no such bucket: " + s3.bucket());
  if (!create) return Status::io(s3.uri() + ": no such archive (no " + std::string(kFormatName) + " object)");
  std::string_view line = create_format == 2 ? kFormatLine2 : kFormatLine;
  auto p = s3.request("PUT", s3.url(key), line, {"If-None-Match: *"});
  if (!p) return p.status();
  if (p->status == 412) return check_format(s3, false, create_format);  // created meanwhile
  if (p->status != 200) return s3.http_error("PUT", std::string(kFormatName), *p);
  return create_format == 2 ? 2 : 1;
}

Result<std::string> S3Archive::put_one(const ArchivePut& p) {
  EP_RETURN_IF_ERROR(validate_put(p).with_context(uri()));
  std::string key = object_key(p.tenant, p.received_at, p.batch_id);
  std::string u = s3_->url(s3_->full_key(key));
  std::string bytes = object_bytes(p.bytes);
  auto head = s3_->request("HEAD", u, {}, {});
  if (!head) return head.status();
  if (head->status == 404) {
    auto put = s3_->request("PUT", u, bytes, {"If-None-Match: *"});
    if (!put) return put.status();
    if (put->status == 200) return uri() + "/" + key;
    if (put->status != 412) return s3_->http_error("PUT", key, *put);
    // 412: someone stored this key between our HEAD and PUT; compare below.
  } else if (head->status != 200) {
    return s3_->http_error("HEAD", key, *head);
  }
  auto existing = s3_->request("GET", u, {}, {});
  if (!existing) return existing.status();
  if (existing->status != 200) return s3_->http_error("GET", key, *existing);
  if (existing->body == bytes) return uri() + "/" + key;
  return Status::conflict(uri() + "/" + key +
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
  return s3_->list(f.tenant.empty() ? "" : f.tenant + "/", list_start_after(f), [&](std::string_view key, std::uint64_t size) {
    auto kp = parse_key(key);
    if (!kp) return true;
    // Keys sort by day within a tenant: past f.to, done.
    if (!day_matches(kp->day, f)) return f.tenant.empty() || day_start(kp->day) <= f.to;
    ArchiveObject o;
    o.key.assign(key);
    o.tenant = std::move(kp->tenant);
    o.batch_id = std::move(kp->batch_id);
    o.received_at = day_start(kp->day);
    o.uri = uri() + "/" + o.key;
    o.size = size;
    return fn(o);
  });
}

Result<std::string> S3Archive::get(const ArchiveObject& o) {
  if (!parse_key(o.key)) return Status::data(o.key + ": not an archive object key");
  auto r = s3_->request("GET", s3_->url(s3_->full_key(o.key)), {}, {});
  if (!r) return r.status();
  if (r->status == 404) return Status::not_found(o.uri + ": no such object");
  if (r->status != 200) return s3_->http_error("GET", o.key, *r);
  return std::move(r->body);
}

Status S3Archive::remove(const ArchiveObject& o) {
  if (!parse_key(o.key)) return Status::data(o.key + ": not an archive object key");
  return s3_->remove(o.key, "object");
}

}  // namespace

Result<std::unique_ptr<S3Client>> s3_client(const std::string& uri, const std::string& bucket,
                                            const std::string& prefix, const ArchiveOptions& opts) {
  static std::once_flag curl_once;
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  auto creds = aws::resolve_credentials(aws::process_env());
  if (!creds) return creds.status().with_context(uri);
  S3Client::Config c;
  c.uri = uri;
  c.bucket = bucket;
  c.prefix = prefix;
  c.access_key = opts.access_key.empty() ? creds->access_key : opts.access_key;
  c.secret_key = opts.secret_key.empty() ? creds->secret_key : opts.secret_key;
  c.session_token = opts.access_key.empty() ? creds->session_token : "";
  if (c.access_key.empty() || c.secret_key.empty())
    return Status::usage(uri + ": no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                               "or a profile in the shared credentials file (" + creds->credentials_file + ")");
  c.region = opts.s3_region.empty() ? creds->region : opts.s3_region;
  if (c.region.empty()) c.region = "auto";
  c.endpoint = opts.s3_endpoint;
  if (c.endpoint.empty()) c.endpoint = env_or("AWS_ENDPOINT_URL_S3", env_or("AWS_ENDPOINT_URL", ""));
  if (c.endpoint.empty()) {
    // AWS itself: virtual-hosted addressing, which needs a real region.
    if (c.region == "auto") c.region = "us-east-1";
    c.endpoint = "https://" + bucket + ".s3." + c.region + ".amazonaws.com";
    c.path_style = false;
  } else if (!c.endpoint.starts_with("http://") && !c.endpoint.starts_with("https://")) {
    return Status::usage("--s3-endpoint " + c.endpoint + ": expected http://HOST[:PORT] or https://...");
  }
  while (c.endpoint.ends_with("/")) c.endpoint.pop_back();
  c.timeout_ms = opts.s3_timeout_ms;
  c.retries = opts.s3_retries;
  return std::make_unique<S3Client>(std::move(c));
}

Result<std::unique_ptr<Archive>> open_s3(const std::string& uri, const std::string& bucket,
                                         const std::string& prefix, const ArchiveOptions& opts) {
  auto client = s3_client(uri, bucket, prefix, opts);
  if (!client) return client.status();
  auto version = check_format(**client, opts.create, opts.create_format);
  if (!version) return version.status();
  if (*version == 2) return open_s3_segments(std::move(client).value(), opts);
  return std::unique_ptr<Archive>(new S3Archive(std::move(client).value()));
}

}  // namespace ep::archive_detail
