// Segment files of archive format 2: record framing, scanning with resynchronisation
// after damage, sealing with zstd, and the active segment's append / group sync.
// docs/archive-format.md ("Version 2") is the byte-level specification.
#include "ep/segment_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <thread>

#include "ep/fsutil.h"

namespace ep::seglog {
namespace {

Status sys_error(const std::string& ctx, int err) { return Status::io(ctx + ": " + std::strerror(err)); }

void put_u16(std::string& o, std::uint16_t v) {
  o.push_back(static_cast<char>(v & 0xff));
  o.push_back(static_cast<char>(v >> 8));
}
void put_u32(std::string& o, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) o.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& o, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) o.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t get_le(std::string_view d, size_t pos, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(d[pos + static_cast<size_t>(i)]);
  return v;
}
void set_u32(std::string& o, size_t pos, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) o[pos + static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint32_t crc_of(std::string_view a, std::string_view b = {}) {
  uLong c = ::crc32(0L, Z_NULL, 0);
  c = ::crc32(c, reinterpret_cast<const Bytef*>(a.data()), static_cast<uInt>(a.size()));
  if (!b.empty()) c = ::crc32(c, reinterpret_cast<const Bytef*>(b.data()), static_cast<uInt>(b.size()));
  return static_cast<std::uint32_t>(c);
}

// A record is framed in place: frame_begin writes its header with the length and CRC
// left zero, the payload is appended after it, frame_end fills them in.
size_t frame_begin(std::string& out, RecordType type) {
  size_t start = out.size();
  put_u32(out, kRecordMagic);
  put_u32(out, 0);
  put_u32(out, 0);
  out.push_back(static_cast<char>(type));
  return start;
}
// Returns the CRC (of every byte but the CRC's own).
std::uint32_t frame_end(std::string& out, size_t start) {
  set_u32(out, start + 4, static_cast<std::uint32_t>(out.size() - start - kRecordHeader));
  std::string_view rec(out.data() + start, out.size() - start);
  std::uint32_t crc = crc_of(rec.substr(0, 8), rec.substr(12));
  set_u32(out, start + 8, crc);
  return crc;
}

// Frames payload as one record: magic, length, CRC (of every other byte), type, payload.
std::uint32_t frame(std::string& out, RecordType type, std::string_view payload) {
  size_t start = frame_begin(out, type);
  out.append(payload);
  return frame_end(out, start);
}

struct Frame {
  RecordType type{};
  std::string_view payload;
  std::uint32_t crc = 0;
  size_t size = 0;
};
enum class Parse { kOk, kIncomplete, kBad };

Parse parse_frame(std::string_view d, size_t pos, Frame& f) {
  if (d.size() - pos < kRecordHeader) {
    // Too short for a header: incomplete if what is there could start one.
    std::string magic(4, '\0');
    for (int i = 0; i < 4; ++i) magic[static_cast<size_t>(i)] = static_cast<char>((kRecordMagic >> (8 * i)) & 0xff);
    size_t n = std::min<size_t>(4, d.size() - pos);
    return d.substr(pos, n) == std::string_view(magic).substr(0, n) ? Parse::kIncomplete : Parse::kBad;
  }
  if (get_le(d, pos, 4) != kRecordMagic) return Parse::kBad;
  std::uint64_t len = get_le(d, pos + 4, 4);
  if (len > kMaxPayload) return Parse::kBad;
  if (d.size() - pos - kRecordHeader < len) return Parse::kIncomplete;
  std::string_view rec = d.substr(pos, kRecordHeader + len);
  std::uint32_t stored = static_cast<std::uint32_t>(get_le(d, pos + 8, 4));
  if (crc_of(rec.substr(0, 8), rec.substr(12)) != stored) return Parse::kBad;
  f.type = static_cast<RecordType>(static_cast<unsigned char>(rec[12]));
  f.payload = rec.substr(kRecordHeader);
  f.crc = stored;
  f.size = rec.size();
  return Parse::kOk;
}

// The next offset after `from` where a good record starts, or npos.
size_t resync(std::string_view d, size_t from) {
  const char m0 = static_cast<char>(kRecordMagic & 0xff);
  for (size_t p = from; p < d.size(); ++p) {
    const void* hit = std::memchr(d.data() + p, m0, d.size() - p);
    if (!hit) return std::string_view::npos;
    p = static_cast<size_t>(static_cast<const char*>(hit) - d.data());
    Frame f;
    if (parse_frame(d, p, f) == Parse::kOk) return p;
  }
  return std::string_view::npos;
}

// Walks the records of d from pos. A stretch that is not a good record is reported as
// (start, end, torn): torn when no good record follows it (end is then the last non-zero
// byte + 1). With zero_tail, zero bytes from a record boundary to the end are the
// preallocated rest of an active segment: the clean end.
using FrameFn = std::function<bool(size_t, const Frame&)>;
using GapFn = std::function<bool(size_t, size_t, bool)>;
void walk(std::string_view d, size_t pos, const FrameFn& on_frame, const GapFn& on_gap, bool zero_tail = false) {
  while (pos < d.size()) {
    if (zero_tail && d[pos] == '\0' && d.find_first_not_of('\0', pos) == std::string_view::npos) return;
    Frame f;
    Parse p = parse_frame(d, pos, f);
    if (p == Parse::kOk) {
      if (!on_frame(pos, f)) return;
      pos += f.size;
      continue;
    }
    size_t next = resync(d, pos + 1);
    bool torn = next == std::string_view::npos;
    size_t end = next;
    if (torn) {
      size_t last = d.find_last_not_of('\0');
      end = zero_tail && last != std::string_view::npos && last >= pos ? last + 1 : d.size();
      if (!zero_tail && p != Parse::kIncomplete) torn = false;  // inside a chunk: damage
    }
    if (!on_gap(pos, end, torn)) return;
    pos = end;
  }
}

bool decode_batch(std::string_view p, Batch& b) {
  if (p.size() < 2) return false;
  size_t tl = get_le(p, 0, 2);
  if (p.size() < 2 + tl + 2) return false;
  size_t il = get_le(p, 2 + tl, 2);
  size_t pos = 4 + tl + il;
  if (p.size() < pos + 8) return false;
  b.tenant = p.substr(2, tl);
  b.batch_id = p.substr(4 + tl, il);
  b.received_at = static_cast<TimeNs>(get_le(p, pos, 8));
  b.line = p.substr(pos + 8);
  return true;
}

// Records of a record stream (an active segment after its magic, or a chunk's content).
// offset_of maps a position in d to the offset reported.
struct StreamCtx {
  const Visitor& v;
  std::uint64_t chunk = 0;  // sealed: the chunk's file offset
  bool in_chunk = false;
  bool stop = false;
  std::uint64_t records = 0;
  std::uint64_t base = 0;  // file offset of d[0] (an active segment read from the middle)
};
void scan_stream(std::string_view d, size_t pos, StreamCtx& c) {
  walk(
      d, pos,
      [&](size_t at, const Frame& f) {
        Found r;
        if (f.type != kBatch || !decode_batch(f.payload, r.batch)) {
          Problem pr{c.in_chunk ? c.chunk : c.base + at, {}, "record of unexpected type or shape", false};
          return !(c.stop = !c.v.problem(pr));
        }
        r.offset = c.in_chunk ? c.chunk : c.base + at;
        r.inner = c.in_chunk ? static_cast<std::uint32_t>(at) : 0;
        r.size = static_cast<std::uint32_t>(f.size);
        r.crc = f.crc;
        c.records++;
        return !(c.stop = !c.v.record(r));
      },
      [&](size_t start, size_t end, bool torn) {
        Problem pr;
        pr.offset = c.in_chunk ? c.chunk : c.base + start;
        pr.length = end - start;
        pr.torn = torn && !c.in_chunk;
        pr.reason = pr.torn ? "torn tail: " + std::to_string(end - start) +
                                  " bytes after the last complete record fail their checksum (an interrupted "
                                  "write, or damage to the last record)"
                            : "damaged record: " + std::to_string(end - start) + " bytes at offset " +
                                  std::to_string(c.in_chunk ? start : c.base + start) +
                                  (c.in_chunk ? " of the chunk" : "") +
                                  " fail their checksum";
        return !(c.stop = !c.v.problem(pr));
      },
      !c.in_chunk);
}

struct Footer {
  std::uint64_t index_offset = 0, records = 0;
  std::uint32_t chunks = 0;
};
std::optional<Footer> parse_footer(std::string_view d) {
  if (d.size() < kSealedMagic.size() + kFooterBytes) return std::nullopt;
  std::string_view f = d.substr(d.size() - kFooterBytes);
  if (f.substr(0, 8) != kFooterMagic) return std::nullopt;
  if (crc_of(f.substr(0, 28)) != get_le(f, 28, 4)) return std::nullopt;
  Footer out{get_le(f, 8, 8), get_le(f, 16, 8), static_cast<std::uint32_t>(get_le(f, 24, 4))};
  if (out.index_offset < kSealedMagic.size() || out.index_offset >= d.size() - kFooterBytes) return std::nullopt;
  return out;
}

Result<std::vector<IndexEntry>> parse_index(std::string_view d) {
  auto footer = parse_footer(d);
  if (!footer) return Status::data("footer damaged");
  Frame f;
  if (parse_frame(d, footer->index_offset, f) != Parse::kOk || f.type != kIndex ||
      footer->index_offset + f.size != d.size() - kFooterBytes)
    return Status::data("index damaged");
  std::string_view p = f.payload;
  if (p.size() < 4) return Status::data("index damaged");
  std::uint64_t n = get_le(p, 0, 4);
  size_t pos = 4;
  std::vector<IndexEntry> out;
  for (std::uint64_t i = 0; i < n; ++i) {
    if (p.size() - pos < 2) return Status::data("index damaged");
    size_t il = get_le(p, pos, 2);
    if (p.size() - pos < 2 + il + 28) return Status::data("index damaged");
    IndexEntry e;
    e.batch_id.assign(p.substr(pos + 2, il));
    pos += 2 + il;
    e.chunk_offset = get_le(p, pos, 8);
    e.inner = static_cast<std::uint32_t>(get_le(p, pos + 8, 4));
    e.size = static_cast<std::uint32_t>(get_le(p, pos + 12, 4));
    e.crc = static_cast<std::uint32_t>(get_le(p, pos + 16, 4));
    e.received_at = static_cast<TimeNs>(get_le(p, pos + 20, 8));
    pos += 28;
    out.push_back(std::move(e));
  }
  if (pos != p.size() || out.size() != footer->records) return Status::data("index damaged");
  return out;
}

void scan_sealed(std::string_view d, const Visitor& v) {
  StreamCtx c{v};
  if (d.substr(0, kSealedMagic.size()) != kSealedMagic &&
      !v.problem(Problem{0, {}, "sealed segment header damaged", false}))
    return;
  auto footer = parse_footer(d);
  auto index = parse_index(d);
  if (!index && !v.problem(Problem{d.size() >= kFooterBytes ? d.size() - kFooterBytes : 0, {},
                                   "sealed segment " + index.status().message(), false}))
    return;
  // Batches per chunk offset, to name what a damaged chunk held (built at the first damage).
  std::multimap<std::uint64_t, std::string> by_chunk;
  auto report_gap = [&](size_t start, size_t end) {
    if (index && by_chunk.empty())
      for (const auto& e : *index) by_chunk.emplace(e.chunk_offset, e.batch_id);
    bool named = false;
    for (auto it = by_chunk.lower_bound(start); it != by_chunk.end() && it->first < end; ++it) {
      named = true;
      if (!v.problem(Problem{it->first, it->second, "chunk at offset " + std::to_string(it->first) +
                                                        " fails its checksum", false}))
        return false;
    }
    if (named) return true;
    return v.problem(Problem{start, {}, "damaged bytes " + std::to_string(start) + ".." + std::to_string(end) +
                                            " fail their checksum", false});
  };
  // Chunks end where the index starts (or, with a damaged footer, at the first index record).
  size_t records_end = footer ? footer->index_offset : d.size();
  std::string_view body = d.substr(0, records_end);
  std::string raw;
  walk(
      body, kSealedMagic.size(),
      [&](size_t at, const Frame& f) {
        if (f.type == kIndex && !footer) return false;  // the index: chunks are over
        if (f.type != kChunk || f.payload.size() < 8) return report_gap(at, at + f.size);
        std::uint64_t raw_len = get_le(f.payload, 0, 4);
        raw.resize(raw_len);
        size_t got = ZSTD_decompress(raw.data(), raw.size(), f.payload.data() + 8, f.payload.size() - 8);
        if (ZSTD_isError(got) || got != raw_len)
          return report_gap(at, at + f.size);  // CRC-valid but undecodable: a writer bug
        c.chunk = at;
        c.in_chunk = true;
        scan_stream(raw, 0, c);
        return !c.stop;
      },
      [&](size_t start, size_t end, bool) { return report_gap(start, end); });
  if (!c.stop && footer && c.records != footer->records)
    v.problem(Problem{d.size() - kFooterBytes, {},
                      "sealed segment holds " + std::to_string(c.records) + " good records, footer says " +
                          std::to_string(footer->records), false});
}

Result<std::string> read_fd(int fd, const std::string& path) {
  std::string out;
  struct stat st;
  if (::fstat(fd, &st) == 0) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  std::uint64_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error(path, errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    off += static_cast<std::uint64_t>(n);
  }
  return out;
}

}  // namespace

std::uint32_t encode_batch(std::string& out, const Batch& b) {
  out.reserve(out.size() + kRecordHeader + 12 + b.tenant.size() + b.batch_id.size() + b.line.size());
  size_t start = frame_begin(out, kBatch);
  put_u16(out, static_cast<std::uint16_t>(b.tenant.size()));
  out.append(b.tenant);
  put_u16(out, static_cast<std::uint16_t>(b.batch_id.size()));
  out.append(b.batch_id);
  put_u64(out, static_cast<std::uint64_t>(b.received_at));
  out.append(b.line);
  return frame_end(out, start);
}

void scan_bytes(std::string_view d, const Visitor& v) {
  if (d.substr(0, kSealedMagic.size()) == kSealedMagic ||
      (d.size() >= kFooterBytes && d.substr(d.size() - kFooterBytes, 8) == kFooterMagic)) {
    scan_sealed(d, v);
    return;
  }
  StreamCtx c{v};
  if (d.size() < kActiveMagic.size() && kActiveMagic.substr(0, d.size()) == d) {
    if (!d.empty()) v.problem(Problem{0, {}, "torn tail: segment header incomplete", true});
    return;
  }
  if (d.substr(0, kActiveMagic.size()) != kActiveMagic &&
      !v.problem(Problem{0, {}, "segment header damaged", false}))
    return;
  scan_stream(d, std::min(d.size(), kActiveMagic.size()), c);
}

void scan_active_range(std::string_view bytes, std::uint64_t base, const Visitor& v) {
  StreamCtx c{v};
  c.base = base;
  scan_stream(bytes, 0, c);
}

Status scan_file(const std::string& path, const Visitor& v) {
  auto data = fs::read_file(path);
  if (!data) return data.status();
  scan_bytes(*data, v);
  return Status::ok();
}

Result<std::vector<IndexEntry>> read_index(const std::string& path) {
  auto data = fs::read_file(path);
  if (!data) return data.status();
  return parse_index(*data);
}

Result<std::uint64_t> write_sealed(std::string_view active, const std::string& out_path,
                                   const SealOptions& o) {
  std::string out(kSealedMagic);
  std::vector<IndexEntry> index;
  std::string chunk;
  std::uint32_t chunk_records = 0, chunks = 0;
  std::string payload;
  // One compression context and buffers for every chunk: a context per ZSTD_compress
  // call is megabytes of fresh tables, each page faulted in and cleared again.
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!cctx) return Status::software(out_path + ": zstd: cannot create a compression context");
  chunk.reserve(o.chunk_bytes + (64u << 10));
  payload.reserve(8 + ZSTD_compressBound(o.chunk_bytes + (64u << 10)));
  auto flush = [&] {
    if (chunk.empty()) return;
    size_t bound = ZSTD_compressBound(chunk.size());
    payload.clear();
    put_u32(payload, static_cast<std::uint32_t>(chunk.size()));
    put_u32(payload, chunk_records);
    payload.resize(8 + bound);
    size_t n = ZSTD_compressCCtx(cctx.get(), payload.data() + 8, bound, chunk.data(), chunk.size(), o.zstd_level);
    payload.resize(8 + (ZSTD_isError(n) ? 0 : n));
    frame(out, kChunk, payload);
    chunks++;
    chunk.clear();
    chunk_records = 0;
  };
  const bool from_active = active.substr(0, kActiveMagic.size()) == kActiveMagic;
  Visitor v;
  v.problem = [](const Problem&) { return true; };  // only good records are sealed
  v.record = [&](const Found& r) {
    if (chunk.size() >= o.chunk_bytes) flush();
    IndexEntry e;
    e.batch_id.assign(r.batch.batch_id);
    e.chunk_offset = out.size();
    e.inner = static_cast<std::uint32_t>(chunk.size());
    // A record of an active segment is framed exactly as in a chunk: copied as it is
    // (its CRC was just checked), not encoded and checksummed again.
    if (from_active) chunk.append(active.substr(r.offset, r.size));
    else encode_batch(chunk, r.batch);
    e.size = static_cast<std::uint32_t>(chunk.size() - e.inner);
    e.crc = r.crc;
    e.received_at = r.batch.received_at;
    chunk_records++;
    index.push_back(std::move(e));
    return true;
  };
  scan_bytes(active, v);
  flush();
  std::uint64_t index_offset = out.size();
  payload.clear();
  put_u32(payload, static_cast<std::uint32_t>(index.size()));
  for (const auto& e : index) {
    put_u16(payload, static_cast<std::uint16_t>(e.batch_id.size()));
    payload.append(e.batch_id);
    put_u64(payload, e.chunk_offset);
    put_u32(payload, e.inner);
    put_u32(payload, e.size);
    put_u32(payload, e.crc);
    put_u64(payload, static_cast<std::uint64_t>(e.received_at));
  }
  frame(out, kIndex, payload);
  size_t fstart = out.size();
  out.append(kFooterMagic);
  put_u64(out, index_offset);
  put_u64(out, index.size());
  put_u32(out, chunks);
  put_u32(out, crc_of(std::string_view(out).substr(fstart, 28)));

  int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return sys_error(out_path, errno);
  Status s = fs::write_fully(fd, out, out_path);
  if (s && ::fdatasync(fd) < 0) s = sys_error(out_path, errno);
  ::close(fd);
  if (!s) {
    ::unlink(out_path.c_str());
    return s;
  }
  return static_cast<std::uint64_t>(index.size());
}

// --- Active ---------------------------------------------------------------------------

namespace {

// Zero bytes are written this much at a time, each slice written back before the next:
// an fdatasync on the request path waits for at most one slice of them.
constexpr std::uint64_t kPreallocSlice = 256u << 10;

// The one background thread that extends active segments (Active::extend), for every
// segment of the process in turn. Never destroyed: a segment may outlive static
// destruction order.
class Preallocator {
 public:
  static Preallocator& instance() {
    static Preallocator* p = new Preallocator;
    return *p;
  }
  void queue(Active* a) {
    std::lock_guard lock(mu_);
    q_.push_back(a);
    if (!started_) {
      started_ = true;
      std::thread([this] { loop(); }).detach();
    }
    cv_.notify_all();
  }
  // a is going away: drops it from the queue and waits out a running extend().
  void forget(Active* a) {
    std::unique_lock lock(mu_);
    q_.erase(std::remove(q_.begin(), q_.end(), a), q_.end());
    cv_.wait(lock, [&] { return current_ != a; });
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return !q_.empty(); });
      current_ = q_.front();
      q_.pop_front();
      lock.unlock();
      current_->extend();
      lock.lock();
      current_ = nullptr;
      cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Active*> q_;
  Active* current_ = nullptr;
  bool started_ = false;
};

int open_for_preallocation(const std::string& path) { return ::open(path.c_str(), O_WRONLY | O_CLOEXEC); }

}  // namespace


Result<std::shared_ptr<Active>> Active::create(const std::string& path, TimeNs created,
                                               std::uint64_t preallocate) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return sys_error(path, errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) < 0) {
    int err = errno;
    ::close(fd);
    return sys_error(path, err);
  }
  Status s = fs::write_fully(fd, kActiveMagic, path);
  if (!s) {
    ::close(fd);
    ::unlink(path.c_str());
    return s;
  }
  std::shared_ptr<Active> a(new Active(fd, path, kActiveMagic.size(), kActiveMagic.size(), created));
  a->preallocate_ = std::max<std::uint64_t>(preallocate, 4096);
  a->prep_fd_ = open_for_preallocation(path);
  std::lock_guard lock(a->mu_);
  a->maybe_extend();  // a new segment is appended to at once
  return a;
}

Result<std::shared_ptr<Active>> Active::adopt(const std::string& path, TimeNs created, Recovery& rec,
                                              const std::function<void(const Found&)>& each,
                                              std::uint64_t preallocate) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return sys_error(path, errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) < 0) {  // another writer appends to it
    ::close(fd);
    return std::shared_ptr<Active>();
  }
  auto data = read_fd(fd, path);
  if (!data) {
    ::close(fd);
    return data.status();
  }
  std::uint64_t torn_at = data->size(), torn_end = data->size();
  Visitor v;
  v.record = [&](const Found& r) {
    if (each) each(r);
    rec.good_end = r.offset + r.size;
    return true;
  };
  v.problem = [&](const Problem& p) {
    if (p.torn) {
      torn_at = p.offset;
      torn_end = p.offset + p.length;
      return true;
    }
    rec.damaged = true;
    rec.reason = p.reason;
    return false;
  };
  rec.good_end = kActiveMagic.size();
  // A file shorter than the header is a creation cut short: it gets its header again.
  bool header_torn = data->size() < kActiveMagic.size();
  if (header_torn && kActiveMagic.substr(0, data->size()) != *data) {
    rec.damaged = true;
    rec.reason = "segment header damaged";
  }
  if (!header_torn) scan_bytes(*data, v);
  if (rec.damaged) {
    ::close(fd);
    return std::shared_ptr<Active>();
  }
  Status s;
  if (header_torn) {
    if (::ftruncate(fd, 0) < 0 ||
        ::pwrite(fd, kActiveMagic.data(), kActiveMagic.size(), 0) != static_cast<ssize_t>(kActiveMagic.size()) ||
        ::fdatasync(fd) < 0)
      s = sys_error(path, errno);
  } else if (torn_at < data->size()) {
    rec.torn_bytes = torn_end - torn_at;
    size_t slash = path.rfind('/');
    rec.torn_path = path.substr(0, slash + 1) + ".torn-" + path.substr(slash + 1) + "-" + std::to_string(torn_at);
    s = fs::write_file_atomic(rec.torn_path, std::string_view(*data).substr(torn_at, torn_end - torn_at));
    if (s && ::ftruncate(fd, static_cast<off_t>(torn_at)) < 0) s = sys_error(path, errno);
    if (s && ::fdatasync(fd) < 0) s = sys_error(path, errno);
  }
  if (!s) {
    ::close(fd);
    return s;
  }
  std::uint64_t size = header_torn ? kActiveMagic.size() : rec.good_end;
  std::uint64_t allocated = torn_at < data->size() || header_torn ? size : data->size();
  std::shared_ptr<Active> a(new Active(fd, path, size, allocated, created));
  a->preallocate_ = std::max<std::uint64_t>(preallocate, 4096);
  a->prep_fd_ = open_for_preallocation(path);
  return a;
}

Active::~Active() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  Preallocator::instance().forget(this);  // not queued, and no extend() running
  if (prep_fd_ >= 0) ::close(prep_fd_);
  ::close(fd_);
}

void Active::maybe_extend() {
  if (extending_ || closing_ || prep_fd_ < 0 || !failed_.is_ok() || written_ < retry_at_ ||
      allocated_ >= written_ + preallocate_)
    return;
  extending_ = true;
  Preallocator::instance().queue(this);
}

void Active::extend() {
  // Zero bytes ahead of the records, written (not fallocate'd: unwritten extents would
  // need a journal commit at every first write), a slice at a time under mu_ (always
  // after the records, so appends are never overwritten and never wait for more than
  // one slice's write into the page cache), each slice written back before the next.
  // Preallocation is only a speed-up: on a nearly full disk it fails while the records
  // themselves may still fit, so its failure is not an append's.
  static const std::string zeros(kPreallocSlice, '\0');
  std::unique_lock lock(mu_);
  std::uint64_t target = std::max(allocated_, written_) + preallocate_;
  bool grew = false;
  while (!closing_ && failed_.is_ok()) {
    std::uint64_t from = std::max(allocated_, written_);
    if (from >= target) break;
    ssize_t n = ::pwrite(prep_fd_, zeros.data(), std::min<std::uint64_t>(zeros.size(), target - from),
                         static_cast<off_t>(from));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = sys_error(path_, errno);
      // A part of a slice may have been written: give the space back.
      if (::ftruncate(fd_, static_cast<off_t>(from)) < 0) failed_ = s;
      retry_at_ = written_ + preallocate_;
      break;
    }
    allocated_ = from + static_cast<std::uint64_t>(n);
    grew = true;
    lock.unlock();
    ::sync_file_range(prep_fd_, static_cast<off_t>(from), n,
                      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    lock.lock();
  }
  lock.unlock();
  // Commits the new file size, so that the syncs of the appends need not. A write-back
  // error here is reported to fd_'s next fdatasync as well (another file description).
  if (grew) ::fdatasync(prep_fd_);
  lock.lock();
  extending_ = false;
  cv_.notify_all();
  maybe_extend();  // the appends may have used up much of it meanwhile
}

Status Active::append(std::string_view bytes, std::uint64_t& end) {
  std::lock_guard lock(mu_);
  if (!failed_.is_ok()) return failed_;
  std::uint64_t at = written_;
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(at + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = sys_error(path_, errno);
      // Never leave a partial record in the middle: zero what was written of the group.
      static const std::string zeros(1 << 16, '\0');
      for (size_t z = 0; z < done; z += zeros.size())
        if (::pwrite(fd_, zeros.data(), std::min(zeros.size(), done - z), static_cast<off_t>(at + z)) < 0) failed_ = s;
      return s;
    }
    done += static_cast<size_t>(n);
  }
  written_ = at + bytes.size();
  allocated_ = std::max(allocated_, written_);  // records written past the preallocation
  end = written_;
  maybe_extend();
  return Status::ok();
}

Status Active::sync_to(std::uint64_t end) {
  std::unique_lock lock(mu_);
  while (synced_ < end) {
    if (!failed_.is_ok()) return failed_;
    if (syncing_) {
      cv_.wait(lock);
      continue;
    }
    // Lead: one fdatasync covers every group written so far.
    syncing_ = true;
    std::uint64_t target = written_;
    lock.unlock();
    int rc;
    do rc = ::fdatasync(fd_);
    while (rc < 0 && errno == EINTR);
    int err = errno;
    lock.lock();
    syncing_ = false;
    // After a failed fdatasync the page cache state is unknown: the segment takes no more.
    if (rc < 0) failed_ = sys_error(path_ + ": fdatasync", err);
    else synced_ = std::max(synced_, target);
    cv_.notify_all();
  }
  return Status::ok();
}

std::uint64_t Active::size() const {
  std::lock_guard lock(mu_);
  return written_;
}

std::uint64_t Active::allocated() const {
  std::lock_guard lock(mu_);
  return allocated_;
}

void Active::wait_preallocated() const {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !extending_; });
}

bool Active::failed() const {
  std::lock_guard lock(mu_);
  return !failed_.is_ok();
}

}  // namespace ep::seglog
