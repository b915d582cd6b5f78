#pragma once
// Small helpers for the route files.
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "ep/pg.h"

// Unwraps a Result into `var` or returns its Status from the enclosing function.
#define EP_TRY(var, expr)                                  \
  auto var##_result_ = (expr);                             \
  if (!var##_result_.is_ok()) return var##_result_.status(); \
  auto& var = *var##_result_

namespace ep::api {

inline pg::Param ts_opt(const std::optional<TimeNs>& t) {
  if (!t) return nullptr;
  return pg::ts_param(*t);
}

inline bool is_int(std::string_view s) {
  if (s.empty() || s.size() > 19) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

inline bool is_label(std::string_view s) {
  return s == "normal" || s == "spike" || s == "drop" || s == "drift" || s == "missingness" ||
         s == "stuck";
}
inline std::string labels_list() { return "normal, spike, drop, drift, missingness, stuck"; }

}  // namespace ep::api
