#pragma once
// Private to common/src/archive*.cpp: key layout and the backend factories.
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ep/archive.h"

namespace ep::archive_detail {

inline constexpr std::string_view kFormatName = "FORMAT";
inline constexpr std::string_view kFormatLine = "edgepulse-archive 1\n";
inline constexpr std::string_view kFormatLine2 = "edgepulse-archive 2\n";
inline constexpr TimeNs kNsPerDay = 86400 * kNsPerSec;

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

// Whether a day (days since epoch) can hold objects within [f.from, f.to].
bool day_matches(std::int64_t day, const ArchiveFilter& f);
inline TimeNs day_start(std::int64_t day) { return day * kNsPerDay; }
inline std::int64_t day_of(TimeNs t) {
  return t >= 0 ? t / kNsPerDay : -((-t + kNsPerDay - 1) / kNsPerDay);
}

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

}  // namespace ep::archive_detail
