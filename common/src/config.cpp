#include "ep/config.h"

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "ep/toml.h"

namespace ep {
namespace {

std::optional<std::string> scalar_to_string(const toml::node& n) {
  if (auto s = n.value<std::string>()) return *s;
  if (n.is_boolean()) return *n.value<bool>() ? "true" : "false";
  if (n.is_integer()) return std::to_string(*n.value<std::int64_t>());
  if (n.is_floating_point()) {
    std::ostringstream os;
    os.precision(17);
    os << *n.value<double>();
    return os.str();
  }
  return std::nullopt;
}

const toml::node* find_key(const toml::table& t, std::string_view name) {
  if (auto* n = t.get(name)) return n;
  std::string alt(name);
  for (char& c : alt) c = c == '-' ? '_' : c == '_' ? '-' : c;
  return t.get(alt);
}

}  // namespace

Config::Config() : table_(std::make_unique<toml::table>()) {}
Config::~Config() = default;
Config::Config(Config&&) noexcept = default;
Config& Config::operator=(Config&&) noexcept = default;

Result<Config> Config::parse(std::string_view text, std::string source_name) {
  try {
    Config c;
    *c.table_ = toml::parse(text, source_name);
    c.source_ = std::move(source_name);
    return c;
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return Status::usage(source_name + ":" + std::to_string(b.line) + ":" +
                         std::to_string(b.column) + ": " + std::string(e.description()));
  }
}

Result<Config> Config::load(const std::string& explicit_path) {
  std::string path = explicit_path;
  bool required = !path.empty();
  if (path.empty()) {
    if (const char* env = std::getenv("EDGEPULSE_CONFIG"); env && *env) {
      path = env;
      required = true;
    }
  }
  if (path.empty()) {
    std::error_code ec;
    if (!std::filesystem::exists(kDefaultConfigPath, ec)) return Config();
    path = kDefaultConfigPath;
  }
  try {
    Config c;
    *c.table_ = toml::parse_file(path);
    c.source_ = path;
    return c;
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    std::string desc(e.description());
    if (!required || b.line != 0)
      return Status::usage(path + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) +
                           ": " + desc);
    return Status::usage(path + ": " + desc);
  }
}

std::vector<std::string> Config::lookup(std::string_view section, std::string_view name) const {
  std::vector<std::string> out;
  const toml::node* n = nullptr;
  if (!section.empty()) {
    if (auto* sec = table_->get_as<toml::table>(section)) n = find_key(*sec, name);
  }
  if (!n) n = find_key(*table_, name);
  if (!n || n->is_table()) return out;
  if (auto* arr = n->as_array()) {
    for (const auto& e : *arr)
      if (auto s = scalar_to_string(e)) out.push_back(*s);
    return out;
  }
  if (auto s = scalar_to_string(*n)) out.push_back(*s);
  return out;
}

std::optional<std::string> Config::get(std::string_view section, std::string_view name) const {
  auto v = lookup(section, name);
  if (v.empty()) return std::nullopt;
  return v.front();
}

}  // namespace ep
