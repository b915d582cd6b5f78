#pragma once
// The unit of work of ep-load: a group of input records (batches and points) that is
// loaded in one transaction. The reader thread builds groups; the writer loads them.
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ep/pg.h"
#include "ep/time.h"

namespace ep::load {

struct Uuid {
  std::array<unsigned char, 16> b{};
  bool operator==(const Uuid& o) const { return b == o.b; }
  bool operator<(const Uuid& o) const { return std::memcmp(b.data(), o.b.data(), 16) < 0; }
  std::string str() const;
  static std::optional<Uuid> parse(std::string_view s);
};

// One input record: a batch (with its points) or a single point record.
struct Entry {
  bool is_batch = false;
  std::string tenant, device;
  std::string batch_id;  // batches: required; points: optional, carried to --emit
  std::string source, sha256;
  std::optional<std::string> archive;
  TimeNs received_at = 0;
  std::uint32_t first = 0, count = 0;  // points[first, first+count)
  std::string stream;                  // for messages: "stdin", file path
  std::int64_t line = 0;
  // Filled by the writer.
  Uuid tenant_id, device_id, batch_uuid;
  bool rejected = false;
};

struct InPoint {
  std::uint32_t entry = 0;
  std::string metric, unit;
  TimeNs ts = 0;
  double value = 0;
  Uuid metric_id;        // filled by the writer
  bool inserted = false;  // set by the writer after a successful load
};

struct Group {
  std::vector<Entry> entries;
  std::vector<InPoint> points;
  std::uint64_t lines = 0;  // input lines consumed by this group (incl. rejected ones)
  // Runs inside the group's transaction just before COMMIT (ep-load --follow writes its
  // cursor there); a failure fails the group like any statement of it.
  std::function<Status(pg::Conn&)> before_commit;
  bool empty() const { return entries.empty(); }
  void clear() {
    entries.clear();
    points.clear();
    lines = 0;
    before_commit = nullptr;
  }
};

}  // namespace ep::load
