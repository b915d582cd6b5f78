#pragma once
// JSON nested past ep::kMaxJsonDepth, in the shapes that crashed recursive parsers: a
// well-formed record with one field 100 levels deep, an object holding unterminated `[`
// runs of 20,000 and 200,000 levels, `{"a":` repeated 50,000 times, and a bare run of
// 200,000 `[` (a tool that wants an object may refuse that one at its first byte).
#include <ostream>
#include <string>
#include <vector>

namespace eptest::hostile {

struct HostileLine {
  std::string name, text;
  bool root_is_object = true;
};
// GoogleTest names a parameter by this instead of dumping its bytes.
inline void PrintTo(const HostileLine& l, std::ostream* os) { *os << l.name; }

// `levels` nested arrays, closed: [[[]]] is 3 levels.
inline std::string closed_arrays(int levels) {
  return std::string(static_cast<std::size_t>(levels), '[') + std::string(static_cast<std::size_t>(levels), ']');
}

inline std::string repeated(const std::string& s, int times) {
  std::string out;
  out.reserve(s.size() * static_cast<std::size_t>(times));
  for (int i = 0; i < times; ++i) out += s;
  return out;
}

inline std::vector<HostileLine> hostile_lines() {
  return {
      {"WellFormedDepth100", R"({"kind":"point","x":)" + closed_arrays(99) + "}"},
      {"OpenArrays20000", R"({"x":)" + std::string(20'000, '[')},
      {"OpenArrays200000", R"({"x":)" + std::string(200'000, '[')},
      {"ObjectKeys50000", repeated(R"({"a":)", 50'000)},
      {"BareArrays200000", std::string(200'000, '['), false},
  };
}

}  // namespace eptest::hostile
