#pragma once
// Versioned SQL migrations from common/sql/, embedded at build time.
#include <string_view>
#include <vector>

namespace ep {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

// In ascending version order.
const std::vector<Migration>& migrations();

}  // namespace ep
