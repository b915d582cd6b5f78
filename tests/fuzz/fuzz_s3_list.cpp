// libFuzzer target: the archive's minimal S3 XML reader (ListObjectsV2 pages, entity
// unescaping) and its object-key parser — hand-written, so fuzzed.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "../../common/src/archive_internal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  auto page = ep::archive_detail::parse_list_page(s);
  if (page && page->truncated && page->next_token.empty()) std::abort();
  std::string u = ep::archive_detail::xml_unescape(s);
  if (u.size() > s.size()) std::abort();  // unescaping never grows the text
  if (auto k = ep::archive_detail::parse_key(s)) {
    // A parsed key renders back to itself.
    std::string again = ep::archive_detail::object_key(k->tenant, ep::archive_detail::day_start(k->day), k->batch_id);
    if (again != s) std::abort();
  }
  return 0;
}
