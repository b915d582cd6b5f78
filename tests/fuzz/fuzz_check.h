#pragma once
// Property checks for the fuzz targets: a failed property names itself on stderr and
// aborts, so libFuzzer saves the input as a crash.
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "ep/status.h"

namespace ep::fuzz {

[[noreturn]] inline void fail(std::string_view what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz property failed: %.*s\n", static_cast<int>(what.size()), what.data());
  if (!detail.empty())
    std::fprintf(stderr, "  %.*s\n", static_cast<int>(detail.size()), detail.data());
  std::abort();
}

inline void check(bool ok, std::string_view what, std::string_view detail = {}) {
  if (!ok) fail(what, detail);
}

// A rejection must say why.
inline void check_reason(const Status& s, std::string_view what) {
  if (!s.is_ok()) check(!s.message().empty(), what, "rejected with an empty message");
}

}  // namespace ep::fuzz
