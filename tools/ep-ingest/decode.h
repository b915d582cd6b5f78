#pragma once
// Request bodies as the clients compress them: Content-Encoding identity, gzip, deflate,
// zstd and snappy (the block format Prometheus remote write sends), decoded with a limit
// on the decoded size so a small compressed body cannot expand without bound.
#include <string>
#include <string_view>

#include "ep/status.h"

namespace ep::ingest {

enum class DecodeError { kNone, kUnsupported, kTooLarge, kCorrupt };

struct Decoded {
  DecodeError error = DecodeError::kNone;
  std::string message;  // names the encoding and what was wrong
};

// Decodes body as content_encoding says ("" or "identity": no change; a list such as
// "gzip, identity" is applied right to left). With no encoding, out is not touched and
// *view points at body; else out holds the decoded bytes and *view points at out.
// The decoded size may not exceed max_bytes (kTooLarge, checked while decoding).
Decoded decode_body(std::string_view content_encoding, std::string_view body, size_t max_bytes,
                    std::string& out, std::string_view* view);

}  // namespace ep::ingest
