#pragma once
// Small helpers for the route files.
#include <cstdlib>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ep/json.h"
#include "ep/pg.h"

// Unwraps a Result into `var` or returns its Status from the enclosing function.
#define EP_TRY(var, expr)                                    \
  auto var##_result_ = (expr);                               \
  if (!var##_result_.is_ok()) return var##_result_.status(); \
  auto& var = *var##_result_

namespace ep::api {

inline pg::Param ts_opt(const std::optional<TimeNs>& t) {
  if (!t) return nullptr;
  return pg::ts_param(*t);
}

// "key": value, or null when the column is NULL.
inline void kv_nullable_str(JsonWriter& w, std::string_view k, const pg::Rows& r, int i, int col) {
  w.key(k);
  if (r.is_null(i, col))
    w.null();
  else
    w.str(r.get(i, col));
}
inline void kv_nullable_time(JsonWriter& w, std::string_view k, const pg::Rows& r, int i, int col) {
  w.key(k);
  if (r.is_null(i, col))
    w.null();
  else
    w.time(r.get_ts(i, col));
}
inline void kv_nullable_num(JsonWriter& w, std::string_view k, const pg::Rows& r, int i, int col) {
  w.key(k);
  if (r.is_null(i, col))
    w.null();
  else
    w.num(r.get_double(i, col));
}
inline void kv_nullable_int(JsonWriter& w, std::string_view k, const pg::Rows& r, int i, int col) {
  w.key(k);
  if (r.is_null(i, col))
    w.null();
  else
    w.num(r.get_int(i, col));
}

// A cursor's integer field: the whole string, within int64 (a 19-digit value beyond
// INT64_MAX is malformed, not an exception).
inline std::optional<std::int64_t> parse_int(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

inline bool is_label(std::string_view s) {
  return s == "normal" || s == "spike" || s == "drop" || s == "drift" || s == "missingness" ||
         s == "stuck";
}
inline std::string labels_list() { return "normal, spike, drop, drift, missingness, stuck"; }

}  // namespace ep::api
