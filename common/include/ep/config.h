#pragma once
// Configuration file (TOML via toml++). Precedence for every option, applied by ep::Cli:
// command-line flag > environment variable > TOML file > built-in default.
//
// File layout: top-level keys apply to every tool; a table named after the tool without
// its "ep-" prefix applies to that tool only and wins over top-level keys. Keys are long
// option names with '-' or '_':
//
//   db = "postgresql://edgepulse@/edgepulse"
//   [ingest]
//   listen = "127.0.0.1:8787"
//   archive = "file:///var/lib/edgepulse/archive"
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ep/status.h"

namespace toml {
inline namespace v3 {
class table;
}
}  // namespace toml

namespace ep {

inline constexpr const char* kDefaultConfigPath = "/etc/edgepulse/edgepulse.toml";

class Config {
 public:
  Config();
  ~Config();
  Config(Config&&) noexcept;
  Config& operator=(Config&&) noexcept;

  // explicit_path: from --config ("" if not given); then $EDGEPULSE_CONFIG; then the
  // default path if it exists. A missing explicit file is an error; a missing default
  // is not.
  static Result<Config> load(const std::string& explicit_path);
  static Result<Config> parse(std::string_view toml_text, std::string source_name);

  // Values for option `name` in section `section` (or top level), as strings the CLI
  // parser can convert: arrays give several values. Empty when absent.
  std::vector<std::string> lookup(std::string_view section, std::string_view name) const;
  std::optional<std::string> get(std::string_view section, std::string_view name) const;

  const std::string& source() const { return source_; }
  const toml::table* table() const { return table_.get(); }

 private:
  std::unique_ptr<toml::table> table_;
  std::string source_;
};

}  // namespace ep
