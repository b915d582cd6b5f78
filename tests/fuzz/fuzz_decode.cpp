// libFuzzer target: Content-Encoding decoding (gzip, deflate, zstd, snappy) with its limit.
// The first byte picks the encoding; the decoded size may never pass the limit.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* kEncodings[] = {"gzip", "deflate", "zstd", "snappy", "gzip, zstd", "identity", "br"};
  std::string_view enc = kEncodings[data[0] % (sizeof kEncodings / sizeof *kEncodings)];
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  constexpr size_t kMax = 1 << 16;
  std::string out;
  std::string_view view;
  ep::ingest::Decoded d = ep::ingest::decode_body(enc, body, kMax, out, &view);
  if (d.error == ep::ingest::DecodeError::kNone) {
    if (enc != "identity" && view.size() > kMax) std::abort();
  } else if (d.message.empty()) {
    std::abort();
  }
  return 0;
}
