#pragma once
// Private to common/src/archive*.cpp: key layout and the backend factories.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ep/archive.h"
#include "ep/segment_log.h"

namespace ep::archive_detail {

inline constexpr std::string_view kFormatName = "FORMAT";
inline constexpr std::string_view kFormatLine = "edgepulse-archive 1\n";
inline constexpr std::string_view kFormatLine2 = "edgepulse-archive 2\n";

// "<tenant>/<yyyy>/<mm>/<dd>/" for the UTC day of received_at.
std::string day_prefix(std::string_view tenant, TimeNs received_at);
// "<tenant>/<yyyy>/<mm>/<dd>/<batch_id>.json".
std::string object_key(std::string_view tenant, TimeNs received_at, std::string_view batch_id);

// Parses a key of the layout above; nullopt for anything else (FORMAT, temp files).
struct KeyParts {
  std::string tenant, batch_id;
  std::int64_t day = 0;  // days since the epoch
};
std::optional<KeyParts> parse_key(std::string_view key);

// Where a listing of a bucket may start for f: "<tenant>/<yyyy>/<mm>/<dd>" of f.from
// when both are set (keys sort by day within a tenant), else empty.
std::string list_start_after(const ArchiveFilter& f);
// Whether a day (days since epoch) can hold objects within [f.from, f.to].
bool day_matches(std::int64_t day, const ArchiveFilter& f);
inline TimeNs day_start(std::int64_t day) { return day * kNsPerDay; }

// Checks tenant, batch_id and bytes of one put ("tenant: ..." naming the field).
Status validate_put(const ArchivePut& p);
// The bytes stored for a put: p.bytes, with a '\n' appended when missing.
std::string object_bytes(std::string_view bytes);

// One ListObjectsV2 response page (S3 backend; exposed for its parser test).
struct ListPage {
  std::vector<std::pair<std::string, std::uint64_t>> objects;  // key (unescaped), size
  bool truncated = false;
  std::string next_token;
};
Result<ListPage> parse_list_page(std::string_view xml);
std::string xml_unescape(std::string_view s);
// Text of the first <tag>...</tag> starting at or after `from` and ending before `limit`.
std::optional<std::string_view> xml_text(std::string_view xml, std::string_view tag,
                                         size_t from = 0, size_t limit = std::string_view::npos);

// file:// layout shared by both format versions: the day directories
// <root>/<tenant>/<yyyy>/<mm>/<dd> matching a filter, in key order.
struct DayDir {
  std::string tenant;
  std::int64_t day = 0;
  std::string rel;   // "<tenant>/<yyyy>/<mm>/<dd>"
  std::string path;  // absolute
};
Status walk_days(const std::string& root, const ArchiveFilter& f, const std::function<bool(const DayDir&)>& fn);
// Names of the regular files in dir (no dot-files), sorted; empty when dir is gone.
Result<std::vector<std::string>> regular_files(const std::string& dir);
// mkdir -p of rel below root; the parent of every directory created goes to `sync`.
Status ensure_dirs(const std::string& root, const std::string& rel, std::set<std::string>& sync);
// Removes dir and its parents up to the tenant directory while empty; syncs the deepest survivor.
Status remove_empty_dirs(const std::string& root, std::string dir);

Result<std::unique_ptr<Archive>> open_file(const std::string& uri, const std::string& root,
                                           const ArchiveOptions& opts);
Result<std::unique_ptr<Archive>> open_segments(const std::string& uri, const std::string& root,
                                               const ArchiveOptions& opts);
Result<std::unique_ptr<Archive>> open_s3(const std::string& uri, const std::string& bucket,
                                         const std::string& prefix, const ArchiveOptions& opts);

// The S3 requests both S3 formats share (archive_s3.cpp): SigV4 signing by libcurl,
// kept-alive handles, retries with exponential backoff on network errors, 5xx and 429.
struct S3Response {
  long status = 0;
  std::string body;
  std::string etag;          // ETag response header, quotes included
  std::int64_t length = -1;  // Content-Length response header (HEAD), -1 when absent
};
class S3Client {
 public:
  struct Config {
    std::string uri, bucket, prefix, endpoint, region, access_key, secret_key, session_token;
    bool path_style = true;
    long timeout_ms = 30000;
    int retries = 3;
  };
  explicit S3Client(Config c);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // "<prefix>/<key>" (or key when there is no prefix).
  std::string full_key(std::string_view key) const;
  // Request URL of a full key with an (already canonical) query string.
  std::string url(std::string_view full, std::string_view query = {}) const;
  // One request with retries (attempts 0: the configured number). Statuses the caller
  // handles (404, 412, ...) come back as responses; 5xx/429 after the last attempt and
  // network errors are errors (kTemporary / kUnavailable).
  Result<S3Response> request(const char* method, const std::string& url, std::string_view body,
                             const std::vector<std::string>& headers, int attempts = 0);
  // "<uri>/<key>: <what>: HTTP <status> <Code>: <Message>" with the status's code.
  Status http_error(const char* what, const std::string& key, const S3Response& r) const;
  // ListObjectsV2 of the keys below "<prefix>/<sub>" after start_after (relative to the
  // prefix), in key order; fn gets each key relative to the prefix and its size.
  Status list(std::string_view sub, std::string_view start_after,
              const std::function<bool(std::string_view key, std::uint64_t size)>& fn);
  // Stores body at key unless the key exists (If-None-Match: *); above multipart_bytes
  // in parts of that size. Then checks with a HEAD that the stored object has body's
  // size: kConflict when a different object holds the key.
  Status put_new(const std::string& key, std::string_view body, std::uint64_t multipart_bytes,
                 const std::string& content_type);
  // DELETE of a key; what names the object in errors ("no such <what>").
  Status remove(const std::string& key, const std::string& what);
  const std::string& uri() const { return c_.uri; }
  const std::string& bucket() const { return c_.bucket; }

 private:
  Result<S3Response> request_once(void* h, const char* method, const std::string& url,
                                  std::string_view body, const std::vector<std::string>& headers,
                                  bool& retryable);
  Status put_multipart(const std::string& key, std::string_view body, std::uint64_t part_bytes,
                       const std::string& content_type);
  void* acquire();
  void release(void* h);

  Config c_;
  std::string sigv4_;
  std::mutex mu_;
  std::vector<void*> idle_;  // kept-alive CURL handles (connection reuse)
};
// Credentials, region and endpoint from the options, the environment and the AWS
// shared files (ep/aws_config.h), then a client; no request is made.
Result<std::unique_ptr<S3Client>> s3_client(const std::string& uri, const std::string& bucket,
                                            const std::string& prefix, const ArchiveOptions& opts);

// Format 2 on S3 (archive_s3seg.cpp): a local format 2 spool uploaded by sealed segment.
Result<std::unique_ptr<Archive>> open_s3_segments(std::unique_ptr<S3Client> client,
                                                  const ArchiveOptions& opts);

// A segment file name: "seg-<20 digits>-<tag>" + ".wal" or ".seg"; the stem's creation time.
std::optional<TimeNs> segment_stem_time(std::string_view stem);
// The object a batch of a segment is known by: "<rel_day>#<batch_id>" below uri.
ArchiveObject segment_object(const std::string& uri, const std::string& rel_day, std::string_view tenant,
                             std::string_view batch_id, TimeNs received_at, std::uint64_t size);
// The visitor passing one segment's records and problems to fn as Archive::scan does: d
// is the day of the segment, rel_file its path below the root; go turns false when fn stops.
seglog::Visitor segment_visitor(const std::string& uri, const DayDir& d, const std::string& rel_file,
                                const ScanFn& fn, bool& go);
// Format 2 get(): the batch of a "<tenant>/<yyyy>/<mm>/<dd>#<batch_id>" locator, looked
// for by scan_day over that day's segments (d.path left empty). kData for a damaged
// record of it, kNotFound when no segment has it.
Result<std::string> find_in_day(const ArchiveObject& o,
                                const std::function<Status(const DayDir& d, const ScanFn& fn)>& scan_day);

}  // namespace ep::archive_detail
