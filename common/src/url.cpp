#include "ep/url.h"

namespace ep {

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view s, bool* ok) {
  std::string out;
  out.reserve(s.size());
  *ok = true;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      int hi = i + 2 < s.size() ? hexval(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        *ok = false;
        return out;
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

Result<std::map<std::string, std::string>> parse_query(std::string_view target) {
  std::map<std::string, std::string> out;
  auto q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view part = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    bool ok1 = true, ok2 = true;
    std::string key = url_decode(part.substr(0, eq), &ok1);
    std::string val =
        eq == std::string_view::npos ? std::string() : url_decode(part.substr(eq + 1), &ok2);
    if (!ok1 || !ok2) return Status::usage(key + ": malformed percent-encoding");
    out[key] = std::move(val);
  }
  return out;
}

}  // namespace ep
