// libFuzzer target: the AWS shared config/credentials INI reader (common/src/aws_config.cpp).
// Properties: a rejection names the source and a line within the text; an accepted file
// stays within the entry bound, has no empty section names or keys, keys are lowercase
// and values carry no surrounding blanks or line breaks.
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

#include "ep/aws_config.h"
#include "fuzz_check.h"

using ep::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto ini = ep::aws::parse_ini(in, "credentials");
  if (!ini) {
    ep::fuzz::check_reason(ini.status(), "parse_ini");
    std::string m = ini.status().message();
    check(m.rfind("credentials:", 0) == 0, "an error names the source", m);
    return 0;
  }
  size_t entries = 0;
  for (const auto& [name, keys] : *ini) {
    check(!name.empty(), "no empty section name");
    entries += 1 + keys.size();
    for (const auto& [k, v] : keys) {
      check(!k.empty(), "no empty key");
      for (char c : k) check(!std::isupper(static_cast<unsigned char>(c)), "keys are lowercase", k);
      check(v.find('\n') == std::string::npos, "a value is one line", v);
      check(v.empty() || (v.front() != ' ' && v.back() != ' ' && v.front() != '\t' && v.back() != '\t'),
            "values are trimmed", v);
    }
  }
  check(entries <= ep::aws::kMaxIniEntries, "entries within the bound");
  return 0;
}
