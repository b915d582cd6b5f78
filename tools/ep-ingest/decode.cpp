#include "decode.h"

#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <memory>
#include <vector>

namespace ep::ingest {

namespace {

constexpr size_t kChunk = 64 * 1024;

std::string lower_trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  std::string r(s);
  std::transform(r.begin(), r.end(), r.begin(), [](unsigned char c) { return std::tolower(c); });
  return r;
}

Decoded fail(DecodeError e, std::string message) { return Decoded{e, std::move(message)}; }

Decoded too_large(std::string_view enc, size_t max) {
  return fail(DecodeError::kTooLarge, "Content-Encoding " + std::string(enc) + ": decoded body exceeds " +
                                          std::to_string(max) + " bytes (--max-decoded-bytes)");
}

// gzip (windowBits 16+15) or zlib deflate (15; also raw deflate, which some clients send
// for "deflate", when the zlib header is absent).
Decoded inflate_into(std::string_view enc, std::string_view in, size_t max, std::string& out) {
  bool gzip = enc == "gzip" || enc == "x-gzip";
  int bits = gzip ? 16 + 15 : 15;
  if (!gzip && !in.empty() && (static_cast<unsigned char>(in[0]) & 0x0f) != 8) bits = -15;
  z_stream z{};
  if (inflateInit2(&z, bits) != Z_OK) return fail(DecodeError::kCorrupt, "zlib: out of memory");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, inflateEnd);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  out.clear();
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (out.size() > max) return too_large(enc, max);
    size_t at = out.size();
    size_t room = std::min(kChunk, max - at + 1);
    out.resize(at + room);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + at);
    z.avail_out = static_cast<uInt>(room);
    rc = inflate(&z, Z_NO_FLUSH);
    out.resize(at + room - z.avail_out);
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && !(rc == Z_BUF_ERROR && z.avail_in > 0))
      return fail(DecodeError::kCorrupt, "Content-Encoding " + std::string(enc) + ": " +
                                             (z.msg ? z.msg : (z.avail_in == 0 ? "truncated stream" : "corrupt stream")));
  }
  if (out.size() > max) return too_large(enc, max);
  if (z.avail_in != 0) return fail(DecodeError::kCorrupt, "Content-Encoding " + std::string(enc) + ": data after the end of the stream");
  return {};
}

Decoded unzstd_into(std::string_view in, size_t max, std::string& out) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> d(ZSTD_createDCtx(), ZSTD_freeDCtx);
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  out.clear();
  size_t rc = 1;
  while (ib.pos < ib.size || rc != 0) {
    if (out.size() > max) return too_large("zstd", max);
    size_t at = out.size();
    size_t room = std::min(kChunk, max - at + 1);
    out.resize(at + room);
    ZSTD_outBuffer ob{out.data() + at, room, 0};
    rc = ZSTD_decompressStream(d.get(), &ob, &ib);
    out.resize(at + ob.pos);
    if (ZSTD_isError(rc)) return fail(DecodeError::kCorrupt, std::string("Content-Encoding zstd: ") + ZSTD_getErrorName(rc));
    if (ib.pos == ib.size && ob.pos < room && rc != 0) return fail(DecodeError::kCorrupt, "Content-Encoding zstd: truncated frame");
  }
  if (out.size() > max) return too_large("zstd", max);
  return {};
}

Decoded unsnappy_into(std::string_view in, size_t max, std::string& out) {
  size_t n = 0;
  if (!snappy::GetUncompressedLength(in.data(), in.size(), &n))
    return fail(DecodeError::kCorrupt, "Content-Encoding snappy: not a snappy block (bad length header)");
  if (n > max) return too_large("snappy", max);
  if (!snappy::Uncompress(in.data(), in.size(), &out))
    return fail(DecodeError::kCorrupt, "Content-Encoding snappy: corrupt or truncated block");
  return {};
}

Decoded decode_one(std::string_view enc, std::string_view in, size_t max, std::string& out) {
  if (enc == "gzip" || enc == "x-gzip" || enc == "deflate") return inflate_into(enc, in, max, out);
  if (enc == "zstd") return unzstd_into(in, max, out);
  if (enc == "snappy") return unsnappy_into(in, max, out);
  return fail(DecodeError::kUnsupported, "Content-Encoding: '" + std::string(enc) +
                                             "' is not supported (gzip, deflate, zstd, snappy, identity)");
}

}  // namespace

Decoded decode_body(std::string_view content_encoding, std::string_view body, size_t max_bytes,
                    std::string& out, std::string_view* view) {
  *view = body;
  std::vector<std::string> codings;
  for (std::string_view rest = content_encoding; !rest.empty();) {
    size_t comma = rest.find(',');
    std::string c = lower_trimmed(rest.substr(0, comma));
    if (!c.empty() && c != "identity") codings.push_back(std::move(c));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  if (codings.empty()) return {};
  std::string tmp;
  for (auto it = codings.rbegin(); it != codings.rend(); ++it) {
    Decoded d = decode_one(*it, *view, max_bytes, tmp);
    if (d.error != DecodeError::kNone) return d;
    out.swap(tmp);
    *view = out;
  }
  return {};
}

}  // namespace ep::ingest
