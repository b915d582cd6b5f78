// ep-archive write: batch records in, each archived durably (group commit), then passed
// on with "raw" replaced by "archive":"<uri>". Nothing is emitted before it is durable.
#include <poll.h>

#include "archive_tool.h"
#include "ep/crypto.h"
#include "ep/json.h"
#include "ep/log.h"
#include "ep/records.h"

namespace ep::archive_tool {
namespace {

struct Pending {
  std::string line;  // the input line: the object bytes, or a record passed through as-is
  rapidjson::Document doc;
  bool archive = false;
  std::string tenant, batch_id;
  TimeNs received_at = 0;
  std::string stream;
  std::int64_t line_no = 0;
};

// Validates a batch record for archiving; fills p. An empty Status message never occurs.
Status classify(Pending& p) {
  EP_RETURN_IF_ERROR(parse_json(p.line, p.doc));
  if (!p.doc.IsObject()) return Status::data("not a JSON object");
  if (kind_of(p.doc) != Kind::kBatch) return Status::ok();  // other records pass through
  auto raw_it = p.doc.FindMember("raw");
  if (raw_it == p.doc.MemberEnd()) {
    if (opt_string(p.doc, "archive")) return Status::ok();  // already archived: pass through
    return Status::data("raw: required (or an \"archive\" URI)");
  }
  auto raw = get_string(p.doc, "raw");
  if (!raw) return raw.status();
  auto id = get_string(p.doc, "batch_id");
  if (!id) return id.status();
  auto tenant = get_string(p.doc, "tenant");
  if (!tenant) return tenant.status();
  auto received = get_time(p.doc, "received_at");
  if (!received) return received.status();
  auto sha = get_string(p.doc, "sha256");
  if (!sha) return sha.status();
  if (!crypto::equal_ct(crypto::sha256_hex(*raw), *sha))
    return Status::data("sha256: does not match raw");
  p.archive = true;
  p.batch_id.assign(id->data(), id->size());
  p.tenant.assign(tenant->data(), tenant->size());
  p.received_at = *received;
  return Status::ok();
}

// The record with "raw" replaced (in place, so field order is kept) by "archive".
std::string archived_record(rapidjson::Document& doc, const std::string& uri) {
  doc.RemoveMember("archive");
  auto& alloc = doc.GetAllocator();
  for (auto& m : doc.GetObject()) {
    if (std::string_view(m.name.GetString(), m.name.GetStringLength()) == "raw") {
      m.name.SetString("archive", alloc);
      m.value.SetString(uri.data(), static_cast<rapidjson::SizeType>(uri.size()), alloc);
      break;
    }
  }
  return to_json(doc);
}

class Writer {
 public:
  Writer(const Options& o, Archive& a, Io& io, Summary& s) : o_(o), a_(a), io_(io), s_(s) {}

  // Returns false when the run must stop (fatal_ says why; ok = broken pipe).
  bool add(Pending p) {
    bytes_ += p.line.size();
    group_.push_back(std::move(p));
    size_t archived = 0;
    for (auto& g : group_) archived += g.archive;
    if (archived >= o_.group || bytes_ >= o_.group_bytes) return commit();
    return true;
  }

  bool reject(std::string_view stream, std::int64_t line, const Status& why) {
    s_.rejected++;
    log::reject(stream, line, why.message());
    if (io_.strict) {
      fatal_ = Status::data(std::string(stream) + ":" + std::to_string(line) + ": " + why.message() +
                            " (--strict)");
      return false;
    }
    return true;
  }

  // Archives every pending batch in one put_many and emits the group in input order.
  bool commit() {
    if (group_.empty()) return !stopped_;
    std::vector<ArchivePut> puts;
    for (auto& p : group_)
      if (p.archive) puts.push_back({p.tenant, p.batch_id, p.received_at, p.line});
    std::vector<Result<std::string>> results;
    if (!puts.empty()) {
      Status st = a_.put_many(puts, results);
      if (!st) {
        fatal_ = st;
        group_.clear();
        return false;
      }
    }
    size_t k = 0;
    bool ok = true;
    for (auto& p : group_) {
      if (!p.archive) {
        s_.passed++;
        ok = emit(p.line) && ok;
        continue;
      }
      const auto& r = results[k++];
      if (r) {
        s_.written++;
        s_.bytes += p.line.size();
        ok = emit(archived_record(p.doc, *r)) && ok;
      } else if (r.status().code() == Code::kConflict || r.status().code() == Code::kData) {
        if (!reject(p.stream, p.line_no, r.status())) ok = false;
      } else if (fatal_.is_ok()) {
        // The archive failed (I/O, unavailable): the batch is not durable and is not
        // passed on; stop after this group.
        fatal_ = r.status().with_context(p.stream + ":" + std::to_string(p.line_no));
        ok = false;
      }
    }
    group_.clear();
    bytes_ = 0;
    if (ok) io_.out->flush();
    if (!ok) stopped_ = true;
    return ok;
  }

  const Status& fatal() const { return fatal_; }

 private:
  bool emit(const std::string& rec) {
    if (io_.out->write(rec)) return true;
    return false;  // broken pipe: stop quietly (fatal_ stays ok)
  }

  const Options& o_;
  Archive& a_;
  Io& io_;
  Summary& s_;
  std::vector<Pending> group_;
  size_t bytes_ = 0;
  bool stopped_ = false;
  Status fatal_;
};

}  // namespace

Status run_write(const Options& o, Archive& a, Io& io, Summary& s) {
  LineReader reader(io.inputs, o.max_line_bytes);
  Writer w(o, a, io, s);
  bool go = true;
  // Commit what is pending before the reader would block, so `tail -f | ep-archive`
  // flows and every batch is passed on as soon as it is durable. While more input is
  // already waiting, keep filling the group instead: bigger groups share more fsyncs.
  const bool from_stdin = io.inputs.empty() || (io.inputs.size() == 1 && io.inputs[0] == "-");
  reader.set_before_read([&] {
    if (!go) return;
    if (from_stdin) {
      pollfd p{0, POLLIN, 0};
      if (::poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) return;
    } else {
      return;  // files never block; groups are committed when full and at the end
    }
    go = w.commit();
  });
  Line line;
  while (go && reader.next(line)) {
    if (line.too_long) {
      go = w.reject(line.stream, line.number,
                    Status::data("line longer than --max-line-bytes (" +
                                 std::to_string(o.max_line_bytes) + ")"));
      continue;
    }
    if (line.text.empty()) continue;
    Pending p;
    p.line.assign(line.text);
    p.stream.assign(line.stream);
    p.line_no = line.number;
    if (Status st = classify(p); !st) {
      go = w.reject(line.stream, line.number, st);
      continue;
    }
    go = w.add(std::move(p));
  }
  if (go) w.commit();
  if (!w.fatal().is_ok()) return w.fatal();
  // s3:// format 2: the spool's segments go up before write ends.
  EP_RETURN_IF_ERROR(a.flush().with_context("archive upload (the batches are in the spool)"));
  if (!reader.status().is_ok()) return reader.status();
  if (s.rejected) return Status::data(std::to_string(s.rejected) + " input records rejected");
  return Status::ok();
}

}  // namespace ep::archive_tool
