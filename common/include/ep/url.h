#pragma once
// Query strings of request targets, shared by the HTTP tools.
#include <map>
#include <string>
#include <string_view>

#include "ep/status.h"

namespace ep {

// Query string: "a=1&b=x%20y" → {a:"1", b:"x y"}. Repeated keys: the last wins.
// Malformed percent escapes are an error naming the parameter.
Result<std::map<std::string, std::string>> parse_query(std::string_view target);
// Percent-decoding ('+' is a space); *ok = false on a malformed escape.
std::string url_decode(std::string_view s, bool* ok);

}  // namespace ep
